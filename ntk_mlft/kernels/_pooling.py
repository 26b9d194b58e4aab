"""``Flatten`` and ``GlobalAvgPool``: from spatial kernels to ``(N1, N2)`` kernels.

For an infinitely wide channel axis, flattening ``(N, *S, C)`` into ``(N, |S| C)`` makes the next
layer's input covariance the *average of the same-position covariances*
``K(x, x') = mean_p K[p, p]`` (Novak et al. 2019, "Bayesian deep CNNs with many channels are
GPs"): only the spatial diagonal is needed. Global average pooling averages over *all* pairs of
positions, ``K(x, x') = mean_{p, p'} K[p, p']``, which needs the full covariance.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ._layer import UnsupportedStructure, make_layer

__all__ = ["Flatten", "GlobalAvgPool"]


def _diag_mean(x, n_batch: int, diagonal_spatial: bool):
    if x is None or x.ndim == 0:
        return x
    if diagonal_spatial:
        return jnp.mean(x, axis=tuple(range(n_batch, x.ndim)))
    while x.ndim > n_batch:
        x = jnp.trace(x, axis1=-2, axis2=-1) / x.shape[-1]
    return x


def Flatten(batch_axis: int = 0, batch_axis_out: int = 0):
    """Flatten all non-batch axes into one feature axis (``batch_axis=0`` only in ``kernel_fn``)."""
    name = "Flatten"
    if batch_axis_out not in (0, 1, -1, -2):
        raise ValueError(f"{name}: batch_axis_out must be 0 or 1; got {batch_axis_out}")
    out_first = batch_axis_out in (0, -2)

    def shape_fn(input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 1:
            raise ValueError(f"{name}: needs one input with a batch axis; got {input_shape}")
        ax = batch_axis % len(input_shape)
        rest = int(np.prod([d for i, d in enumerate(input_shape) if i != ax]))
        return (input_shape[ax], rest) if out_first else (rest, input_shape[ax])

    def init_fn(key, input_shape):
        return shape_fn(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        x = jnp.moveaxis(inputs, batch_axis, 0 if out_first else -1)
        return x.reshape(shape_fn(inputs.shape))

    def tapped_apply(params, inputs, tap, path, **kwargs):
        if batch_axis % inputs.ndim != 0 or not out_first:
            raise UnsupportedStructure(f"{name}: the structured-derivative NTK needs the batch on "
                                       f"axis 0 (batch_axis=0, batch_axis_out=0); got "
                                       f"{batch_axis}, {batch_axis_out}")
        return apply_fn(params, inputs)

    def kernel_map(k):
        if batch_axis % len(k.shape1) != 0 or not out_first:
            raise ValueError(f"{name}: kernel_fn supports batch_axis=0, batch_axis_out=0 only; "
                             f"got {batch_axis}, {batch_axis_out}")
        d = k.diagonal_spatial
        return k.replace(nngp=_diag_mean(k.nngp, 2, d), ntk=_diag_mean(k.ntk, 2, d),
                         cov1=_diag_mean(k.cov1, 1, d), cov2=_diag_mean(k.cov2, 1, d),
                         diagonal_spatial=False, is_gaussian=False)

    return make_layer(name, init_fn, apply_fn, shape_fn, kernel_map, diag_req=lambda ok: True,
                      tapped_apply=tapped_apply)


def GlobalAvgPool(batch_axis: int = 0, channel_axis: int = -1):
    """Average over all spatial axes, keeping batch and channel (``(N, *S, C) -> (N, C)``)."""
    name = "GlobalAvgPool"

    def shape_fn(input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{name}: needs (N, *spatial, C) input; got shape {input_shape}")
        keep = {batch_axis % len(input_shape), channel_axis % len(input_shape)}
        return tuple(d for i, d in enumerate(input_shape) if i in keep)

    def init_fn(key, input_shape):
        return shape_fn(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        keep = {batch_axis % inputs.ndim, channel_axis % inputs.ndim}
        return jnp.mean(inputs, axis=tuple(i for i in range(inputs.ndim) if i not in keep))

    def tapped_apply(params, inputs, tap, path, **kwargs):
        if batch_axis % inputs.ndim != 0:
            raise UnsupportedStructure(f"{name}: the structured-derivative NTK needs the batch on "
                                       f"axis 0; got batch_axis={batch_axis}")
        return apply_fn(params, inputs)

    def kernel_map(k):
        ndim = len(k.shape1)
        if batch_axis % ndim != 0 or channel_axis % ndim != ndim - 1:
            raise ValueError(f"{name}: kernel_fn supports batch_axis=0, channel_axis=-1 only; "
                             f"got {batch_axis}, {channel_axis} for shape {k.shape1}")

        def pool(x, n_batch):
            if x is None or x.ndim == 0:
                return x
            return jnp.mean(x, axis=tuple(range(n_batch, x.ndim)))  # full layout (diag_req)

        return k.replace(nngp=pool(k.nngp, 2), ntk=pool(k.ntk, 2), cov1=pool(k.cov1, 1),
                         cov2=pool(k.cov2, 1), diagonal_spatial=False)

    return make_layer(name, init_fn, apply_fn, shape_fn, kernel_map, diag_req=lambda ok: False,
                      tapped_apply=tapped_apply)
