"""``batch``: compute big ``(N1, N2)`` kernel matrices block by block into host memory;
``kernel_blocks``: stream them row block by row block without ever holding the whole matrix.

The neural-tangents ``nt.batch(kernel_fn, batch_size, store_on_device)`` contract for the
outputs that matter here (``nngp``, ``ntk``, ``cov1``, ``cov2``). Each block
``kernel_fn(x1[I], x2[J])`` is one jitted call of fixed shape (the last, ragged block is padded
with copies of the first row, so nothing recompiles); blocks stream into a preallocated numpy
array, so peak device memory is one block and a 20,000 x 20,000 float64 NNGP+NTK needs
2 x 3.2 GB of host memory. With ``x2 = None`` only blocks with ``J >= I`` are computed and the
lower triangle is filled by symmetry; diagonal blocks are computed with ``x2 = None`` so their
diagonals are exact (see ``input_kernel``). When JAX sees several devices (GPUs, or CPU devices
from ``XLA_FLAGS=--xla_force_host_platform_device_count=2``), each block's rows are sharded over
all of them by ``kernel_fn`` itself (``_layout.py``: padding when the device count does not
divide the rows), and ``kernel_blocks`` streams such sharded row blocks.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._progress import progress
from ._kernel import Kernel, default_dtype
from ._layer import GET_NAMES, KernelFn

__all__ = ["batch", "kernel_blocks"]

_ARRAY_NAMES = ("nngp", "ntk")


def _pad_rows(x: np.ndarray, size: int) -> np.ndarray:
    if x.shape[0] == size:
        return x
    fill = np.broadcast_to(x[:1], (size - x.shape[0],) + x.shape[1:])
    return np.concatenate([x, fill], axis=0)


def batch(kernel_fn: Callable, batch_size: int, store_on_device: bool = False) -> Callable:
    """Return ``batched_fn(x1, x2=None, get=None)`` computing ``kernel_fn`` in blocks.

    Args:
      kernel_fn: an analytic ``kernel_fn`` from ``ntk_mlft.stax`` whose ``nngp``/``ntk`` are
        ``(N1, N2)`` (networks ending in ``Dense``/``Flatten``/``GlobalAvgPool``).
      batch_size: rows (and columns) per block, >= 1.
      store_on_device: return ``jax.Array`` instead of numpy arrays (assembled on the host).

    Returns ``Kernel`` for ``get=None``, an array for a name, an ``AnalyticKernel`` namedtuple
    for a tuple of names (``nngp``, ``ntk``, ``cov1``, ``cov2``).
    """
    if not isinstance(kernel_fn, KernelFn):
        raise TypeError(f"batch: kernel_fn must be a kernel_fn from ntk_mlft.stax; "
                        f"got {type(kernel_fn).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch: batch_size must be an integer >= 1; got {batch_size!r}")
    batch_size = int(batch_size)

    @functools.partial(jax.jit, static_argnums=2)
    def compute_block(a, b, names):  # b = None: a diagonal block of a symmetric kernel
        return kernel_fn(a, b, get=names)

    def batched_fn(x1: Any, x2: Any = None, get: str | Sequence[str] | None = None) -> Any:
        allowed = _ARRAY_NAMES + ("cov1", "cov2")
        sequence = isinstance(get, (tuple, list))
        if (get is not None and not sequence and not isinstance(get, str)) \
                or (sequence and not get):
            raise ValueError(f"batch: get must be None, a name or a non-empty tuple of names "
                             f"from {list(allowed)}; got {get!r}")
        names = (get,) if isinstance(get, str) else (None if get is None else tuple(get))
        for n in names or ():
            if n not in allowed:
                raise ValueError(f"batch: get must be None or names from {list(allowed)}; "
                                 f"got {n!r} (all kernel fields: {list(GET_NAMES)})")
        want_ntk = names is None or "ntk" in names
        symmetric = x2 is None
        x1 = np.asarray(x1, dtype=default_dtype())
        x2 = x1 if symmetric else np.asarray(x2, dtype=default_dtype())
        kernel_fn(x1[:1], x2[:1], get="nngp")  # validates shapes and the architecture
        n1, n2 = x1.shape[0], x2.shape[0]
        b1, b2 = min(batch_size, n1), min(batch_size, n2)
        rows = range(0, n1, b1)
        cols = range(0, n2, b2)
        out_dtype = np.dtype(default_dtype())
        nngp = np.empty((n1, n2), out_dtype)
        ntk = np.empty((n1, n2), out_dtype) if want_ntk else None
        cov1 = np.empty((n1,), out_dtype)
        cov2 = np.empty((n2,), out_dtype)
        blocks = [(i, j) for i in rows for j in cols if not symmetric or j >= i]
        fields = ("nngp", "ntk", "cov1", "cov2") if want_ntk else ("nngp", "cov1", "cov2")
        bar = progress(blocks, total=len(blocks), desc="kernel blocks",
                       enabled=None if len(blocks) > 4 else False)
        for i, j in bar:
            xi = jnp.asarray(_pad_rows(x1[i:i + b1], b1))
            if symmetric and i == j:
                res = compute_block(xi, None, fields)
            else:
                res = compute_block(xi, jnp.asarray(_pad_rows(x2[j:j + b2], b2)), fields)
            ni, nj = min(b1, n1 - i), min(b2, n2 - j)
            for name, target in (("nngp", nngp), ("ntk", ntk)):
                if target is None:
                    continue
                block = np.asarray(getattr(res, name))[:ni, :nj]
                target[i:i + ni, j:j + nj] = block
                if symmetric and j != i:
                    target[j:j + nj, i:i + ni] = block.T
            cov1[i:i + ni] = np.asarray(res.cov1)[:ni]
            cov2[j:j + nj] = np.asarray(res.cov1 if res.cov2 is None else res.cov2)[:nj]
        result = {"nngp": nngp, "ntk": ntk, "cov1": cov1, "cov2": None if symmetric else cov2}
        if store_on_device:
            result = {k: None if v is None else jnp.asarray(v) for k, v in result.items()}
        if names is None:
            return Kernel(nngp=result["nngp"], ntk=result["ntk"], cov1=result["cov1"],
                          cov2=result["cov2"], shape1=kernel_fn.layer.shape_fn(x1.shape),
                          shape2=kernel_fn.layer.shape_fn(x2.shape))
        if isinstance(get, str):
            return result[get]
        return collections.namedtuple("AnalyticKernel", names)(*(result[n] for n in names))

    return batched_fn


def kernel_blocks(kernel_fn: Callable, x1: Any, x2: Any = None, block: int = 1024,
                  get: str = "ntk") -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, K[start:start + b, :])`` row blocks of ``kernel_fn(x1, x2, get=get)``.

    ``x2 = None`` means ``x2 = x1``. Each block is one jitted call of fixed shape (the ragged
    last block is padded and trimmed, so nothing recompiles) and is returned as a float64 numpy
    array of shape ``(b, N2)``; only one block is held at a time, so a caller streaming an
    (N1, N2) kernel needs ``block * N2 * 8`` bytes, never ``N1 * N2``. ``get`` is ``"ntk"`` or
    ``"nngp"``. This is the unit of work the large-pool estimators stream and shard. With
    several devices each block's rows are sharded over all of them (``_layout.py``; any block
    size, padding when the device count does not divide it).
    """
    if not isinstance(kernel_fn, KernelFn):
        raise TypeError(f"kernel_blocks: kernel_fn must be a kernel_fn from ntk_mlft.stax; "
                        f"got {type(kernel_fn).__name__}")
    if get not in _ARRAY_NAMES:
        raise ValueError(f"kernel_blocks: get must be one of {list(_ARRAY_NAMES)}; got {get!r}")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"kernel_blocks: block must be an integer >= 1; got {block!r}")
    x1 = np.asarray(x1, dtype=default_dtype())
    x2 = x1 if x2 is None else np.asarray(x2, dtype=default_dtype())
    kernel_fn(x1[:1], x2[:1], get="nngp")  # validates shapes and the architecture
    b = min(int(block), x1.shape[0])
    compute = jax.jit(lambda a, c: kernel_fn(a, c, get=get))
    x2_dev = jnp.asarray(x2)
    for start in range(0, x1.shape[0], b):
        rows = min(b, x1.shape[0] - start)
        out = compute(jnp.asarray(_pad_rows(x1[start:start + rows], b)), x2_dev)
        yield start, np.asarray(out, dtype=np.float64)[:rows]
