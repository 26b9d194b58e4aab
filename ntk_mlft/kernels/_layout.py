"""How ``kernel_fn`` lays out its work: symmetric block packing and rows sharded over devices.

``raw(x1, x2) -> Kernel`` is the layer recursion on one pair of input batches (``x2 = None``: the
symmetric kernel of ``x1`` with itself, exact diagonal). ``run(raw, x1, x2, plan)`` evaluates it
in the layout ``plan`` (made by ``make_plan`` from static sizes) and returns the same values:

* **Symmetric packing** (``x2 = None`` and an ``(N, N)`` output, i.e. a network ending in
  ``Dense``/``Flatten``/``GlobalAvgPool``): ``K(x_i, x_j) = K(x_j, x_i)``, so the rows are split
  into ``nb`` blocks of ``b`` (the last padded with copies of row 0), the ``nb`` diagonal blocks
  are computed as ``raw(x_I, None)`` (exact diagonals, as unpacked) and the ``nb (nb - 1) / 2``
  upper blocks as ``raw(x_I, x_J)``, each family in one ``vmap``; the lower blocks are their
  transposes. The per-entry work (covariance propagation through every layer, the hot part)
  drops from ``N^2`` to ``N^2 (1 + 1/nb) / 2`` entries; ``nb <= MAX_BLOCKS`` blocks of at least
  ``MIN_BLOCK`` rows, for ``N <= MAX_PACKED_ROWS`` (larger ``N`` measured slower packed).
  Diagonal-block entries are identical to the unpacked ones; off-diagonal
  blocks equal the ``x2``-given path (validated against neural-tangents in
  ``tests/test_stax_vs_nt.py``) and ``tests/test_kernels_layout.py`` checks both.
* **Several devices** (``len(jax.devices()) > 1``: GPUs, or CPU devices from
  ``XLA_FLAGS=--xla_force_host_platform_device_count=K``): the item axis — block pairs when
  packed, otherwise the rows of ``x1`` (``x2`` given: each device gets ``N1 / K`` rows and all of
  ``x2``) — is split over a 1-D ``jax.sharding.Mesh`` of all devices with ``jax.shard_map``.
  **An item count the device count does not divide is padded** (copies of item 0, or of row 0
  of ``x1``) and the padding is dropped from the result, so any ``N1`` works on any number of
  devices. Every device runs the one-device program on its items, so the values equal the
  one-device values (``tests/test_kernels_layout.py`` runs 2 CPU devices in a subprocess).
  ``x2 = None`` with a spatial or multi-branch output is not sharded (one device).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._kernel import Kernel

__all__ = ["Plan", "make_plan", "run", "MIN_BLOCK", "MAX_BLOCKS", "MAX_PACKED_ROWS"]

MIN_BLOCK = 32      # rows per block below which packing does not pay (the 1/nb waste, vmap cost)
MAX_BLOCKS = 8      # blocks per side: waste 1/(2 nb) of the full matrix, nb^2 pieces to assemble
# above this many rows packing measured slower than unpacked (3-hidden-layer MLP, calls
# interleaved in one process: N = 4000 5.8 s vs 4.8 s; N = 2000 0.96 s vs 1.15 s): batch() blocks
# of <= 2048 rows still get it
MAX_PACKED_ROWS = 2048
_AXIS = "rows"


@dataclasses.dataclass(frozen=True)
class Plan:
    """Static layout of one ``kernel_fn`` call (hashable: a ``jit`` static argument).

    Attributes:
      n_blocks: blocks per side for symmetric packing, 1 = unpacked.
      mesh: the 1-D device mesh to shard items over, ``None`` = one device.
    """

    n_blocks: int = 1
    mesh: jax.sharding.Mesh | None = None


def make_plan(n1: int, symmetric: bool, flat_output: bool,
              devices: list | None = None) -> Plan:
    """The layout for ``n1`` rows (``symmetric``: ``x2 is None``; ``flat_output``: the network's
    output kernel is ``(N1, N2)``) on ``devices`` (default ``jax.devices()``)."""
    devices = jax.devices() if devices is None else list(devices)
    n_blocks = 1
    if symmetric and flat_output and n1 <= MAX_PACKED_ROWS:
        n_blocks = min(MAX_BLOCKS, n1 // MIN_BLOCK)
        if len(devices) > 1:  # whole items per device: nb divisible by the device count
            n_blocks = max(n_blocks - n_blocks % len(devices), 1)
        n_blocks = max(n_blocks, 1)
    shardable = not symmetric or n_blocks > 1
    mesh = None
    if len(devices) > 1 and shardable:
        mesh = jax.sharding.Mesh(np.asarray(devices), (_AXIS,))
    return Plan(n_blocks=n_blocks, mesh=mesh)


def _pad_items(x: jax.Array, size: int) -> jax.Array:
    if x.shape[0] == size:
        return x
    fill = jnp.broadcast_to(x[:1], (size - x.shape[0],) + x.shape[1:])
    return jnp.concatenate([x, fill], axis=0)


def _over_items(fn: Callable, mesh: jax.sharding.Mesh | None, *items: jax.Array) -> Any:
    """``fn(*items)`` with the leading (item) axis of every array in ``items`` split over
    ``mesh`` (padded to a multiple of the device count); ``fn`` maps arrays of items to a pytree
    of arrays whose leading axes are concatenated over devices (trimming is the caller's)."""
    if mesh is None:
        return fn(*items)
    n = items[0].shape[0]
    padded = -(-n // mesh.devices.size) * mesh.devices.size
    spec = jax.sharding.PartitionSpec(_AXIS)
    return jax.shard_map(fn, mesh=mesh, in_specs=(spec,) * len(items), out_specs=spec)(
        *(_pad_items(x, padded) for x in items))


def _trim(out: Any, n1: int, n2: int | None = None) -> Any:
    """Leading axes cut to ``n1`` items (``cov2``: to ``n2``, the first device's copy)."""
    if isinstance(out, list):
        return [_trim(o, n1, n2) for o in out]
    return out.replace(nngp=out.nngp[:n1], ntk=None if out.ntk is None else out.ntk[:n1],
                       cov1=out.cov1[:n1],
                       cov2=None if out.cov2 is None else out.cov2[:n1 if n2 is None else n2])


def _rows(raw: Callable, x1: jax.Array, x2: jax.Array | None, mesh) -> Any:
    """Unpacked: ``raw(x1, x2)``, rows of ``x1`` sharded when ``mesh`` is given (x2 given)."""
    if mesh is None:
        return raw(x1, x2)

    def local(a):  # every device also returns cov2 (identical copies): keep the first
        return raw(a, x2)

    return _trim(_over_items(local, mesh, x1), x1.shape[0], x2.shape[0])


def _assemble(diag: jax.Array, off: jax.Array, pairs: list[tuple[int, int]], n: int) -> jax.Array:
    """The ``(n, n)`` matrix from diagonal blocks ``(nb, b, b)`` and upper blocks ``(T, b, b)``:
    ``nb^2`` in-place block updates of one buffer (a concatenate of the pieces took minutes to
    compile, a gather of them ran single-threaded)."""
    # materialised first: otherwise XLA fuses the last layers into each of the nb^2 pieces
    diag, off = jax.lax.optimization_barrier((diag, off))
    nb, b = diag.shape[0], diag.shape[1]
    full = jnp.zeros((nb * b, nb * b), diag.dtype)
    for i in range(nb):
        full = full.at[i * b:(i + 1) * b, i * b:(i + 1) * b].set(diag[i])
    for t, (i, j) in enumerate(pairs):
        full = full.at[i * b:(i + 1) * b, j * b:(j + 1) * b].set(off[t])
        full = full.at[j * b:(j + 1) * b, i * b:(i + 1) * b].set(off[t].T)
    return full[:n, :n]


def _packed(raw: Callable, x: jax.Array, n_blocks: int, mesh) -> Kernel:
    n = x.shape[0]
    b = -(-n // n_blocks)
    xb = _pad_items(x, n_blocks * b).reshape((n_blocks, b) + x.shape[1:])
    pairs = [(i, j) for i in range(n_blocks) for j in range(i + 1, n_blocks)]
    left = xb[np.asarray([i for i, _ in pairs])]
    right = xb[np.asarray([j for _, j in pairs])]
    diag = _trim(_over_items(jax.vmap(lambda a: raw(a, None)), mesh, xb), n_blocks)
    off = _trim(_over_items(jax.vmap(raw), mesh, left, right), len(pairs))
    ntk = None if diag.ntk is None else _assemble(diag.ntk, off.ntk, pairs, n)
    return diag.replace(nngp=_assemble(diag.nngp, off.nngp, pairs, n), ntk=ntk,
                        cov1=diag.cov1.reshape((n_blocks * b,) + diag.cov1.shape[2:])[:n],
                        cov2=None)


def run(raw: Callable, x1: jax.Array, x2: jax.Array | None, plan: Plan) -> Any:
    """``raw(x1, x2)`` computed in the layout ``plan`` (module docstring); same values."""
    if x2 is None and plan.n_blocks > 1:
        return _packed(raw, x1, plan.n_blocks, plan.mesh)
    return _rows(raw, x1, x2, plan.mesh)
