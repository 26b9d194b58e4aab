"""The ``Kernel`` pytree and the covariance of raw inputs (the start of every recursion).

Layout (the neural-tangents 0.6.5 convention, with the batch covariance always diagonal):

* ``nngp``, ``ntk``: ``(N1, N2, *spatial)`` where ``spatial`` is ``(H, H', W, W', ...)`` when
  ``diagonal_spatial`` is False (full position-position covariance, axes zipped pairwise) or
  ``(H, W, ...)`` when True (only same-position covariances), ``()`` for flat inputs.
* ``cov1``: ``(N1, *spatial)``, the variances ``k(x1_i, x1_i)``; ``cov2`` the same for ``x2``
  or ``None`` when ``x2`` is ``x1``.

Input covariance (Lee et al. 2018, eq. 4; Novak et al. 2019 for images):
``K0(x, x')[p, p'] = sum_c x[p, c] x'[p', c] / C``, and the input NTK is 0.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["Kernel", "input_kernel", "default_dtype", "zip_spatial_axes"]


@dataclasses.dataclass(frozen=True)
class Kernel:
    """Infinite-width covariances of one layer's outputs (a frozen pytree).

    Array fields are pytree leaves; shapes and flags are static metadata.

    Attributes:
      nngp: ``(N1, N2, *spatial)`` NNGP covariance ``E[f(x1) f(x2)]`` per output channel.
      ntk: same shape, the neural tangent kernel; ``None`` when not requested.
      cov1: ``(N1, *spatial)`` NNGP of each ``x1`` with itself.
      cov2: ``(N2, *spatial)`` NNGP of each ``x2`` with itself, ``None`` when ``x2`` is ``x1``.
      shape1, shape2: shapes of the finite network's output for ``x1``/``x2`` at this layer.
      diagonal_spatial: True when only same-position covariances are stored.
      is_gaussian: True when the layer output is a centred Gaussian process (after an affine
        layer) — elementwise nonlinearities require it.
    """

    nngp: jax.Array
    ntk: jax.Array | None
    cov1: jax.Array
    cov2: jax.Array | None
    shape1: tuple[int, ...]
    shape2: tuple[int, ...]
    diagonal_spatial: bool = False
    is_gaussian: bool = False

    def replace(self, **changes: Any) -> Kernel:
        """A copy with ``changes`` applied (dataclasses.replace)."""
        return dataclasses.replace(self, **changes)


jax.tree_util.register_dataclass(
    Kernel,
    data_fields=["nngp", "ntk", "cov1", "cov2"],
    meta_fields=["shape1", "shape2", "diagonal_spatial", "is_gaussian"],
)


def default_dtype():
    """float64 when ``jax_enable_x64`` is on, float32 otherwise."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def zip_spatial_axes(x: jax.Array, n_batch: int) -> jax.Array:
    """Reorder ``(*batch, H, W, ..., H', W', ...)`` into ``(*batch, H, H', W, W', ...)``."""
    n_spatial = (x.ndim - n_batch) // 2
    order = list(range(n_batch))
    for i in range(n_spatial):
        order += [n_batch + i, n_batch + n_spatial + i]
    return jnp.transpose(x, order)


def _cross_cov(x1: jax.Array, x2: jax.Array, diagonal_spatial: bool) -> jax.Array:
    """``sum_c x1[i, p, c] x2[j, p', c] / C`` laid out as described in the module docstring."""
    n_channels = x1.shape[-1]
    if x1.ndim == 2:
        return (x1 @ x2.T) / n_channels
    if diagonal_spatial:
        return jnp.einsum("i...c,j...c->ij...", x1, x2) / n_channels
    full = jnp.tensordot(x1, x2, axes=((-1,), (-1,)))  # (N1, *S, N2, *S)
    n_spatial = x1.ndim - 2
    full = jnp.moveaxis(full, 1 + n_spatial, 1)  # (N1, N2, *S, *S)
    return zip_spatial_axes(full, 2) / n_channels


def _self_cov(x: jax.Array, diagonal_spatial: bool) -> jax.Array:
    """``sum_c x[i, p, c] x[i, p', c] / C`` for each sample ``i``."""
    n_channels = x.shape[-1]
    if x.ndim == 2 or diagonal_spatial:
        return jnp.sum(x * x, axis=-1) / n_channels
    flat = x.reshape(x.shape[0], -1, n_channels)
    full = jnp.einsum("ipc,iqc->ipq", flat, flat).reshape(x.shape[:-1] + x.shape[1:-1])
    return zip_spatial_axes(full, 1) / n_channels


def input_kernel(x1: jax.Array, x2: jax.Array | None, *, diagonal_spatial: bool,
                 compute_ntk: bool) -> Kernel:
    """The covariance ``Kernel`` of raw inputs ``x1 (N1, *S, C)`` and ``x2 (N2, *S, C)``.

    The NTK of the inputs is the scalar 0 (no parameters yet); linear layers broadcast it.
    """
    diagonal_spatial = bool(diagonal_spatial) and x1.ndim > 2
    nngp = _cross_cov(x1, x1 if x2 is None else x2, diagonal_spatial)
    cov1 = _self_cov(x1, diagonal_spatial)
    cov2 = None if x2 is None else _self_cov(x2, diagonal_spatial)
    ntk = jnp.zeros((), nngp.dtype) if compute_ntk else None
    return Kernel(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, shape1=tuple(x1.shape),
                  shape2=tuple((x1 if x2 is None else x2).shape),
                  diagonal_spatial=diagonal_spatial, is_gaussian=False)
