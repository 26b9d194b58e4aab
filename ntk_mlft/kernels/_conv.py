"""``Conv``: 1-D/2-D (any-D) convolution with VALID, SAME or CIRCULAR padding and strides.

Finite network (channels last, ``x`` of shape ``(N, *S, C)``, filter ``W`` of shape
``(*filter_shape, C, out_chan)``), fan-in ``n = C * prod(filter_shape)``:

* ``'ntk'``: ``W, b ~ N(0, 1)``, ``z = W_std / sqrt(n) * conv(x, W) + b_std * b``;
* ``'standard'``: ``W ~ N(0, W_std^2 s0 / n)``, ``b ~ N(0, b_std^2)``,
  ``z = conv(x, W) / sqrt(s0) + b``.

Infinite channels (Novak et al. 2019; Garriga-Alonso et al. 2019): the same filter tap ``f``
multiplies both positions, so with ``A`` the window average
``A[K](p, p') = (1/|F|) sum_f K(s p + f, s p' + f)`` (on the padded input covariance; circular
padding wraps, SAME pads with zeros):

* NNGP: ``K' = W_std^2 A[K] + b_std^2``;
* NTK, ntk: ``T' = K' + W_std^2 A[T]``; standard: ``T' = (n/s0) A[K] + W_std^2 A[T] + [1 if bias]``.

``A`` maps same-position entries to same-position entries, so when the network only needs the
spatial diagonal (a ``Flatten`` readout) it is applied to the diagonal alone.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._dense import _check_parameterization, affine_kernel
from ._layer import check_std, make_layer

__all__ = ["Conv"]

_PADDINGS = ("VALID", "SAME", "CIRCULAR")


def _default_dimension_numbers(n: int) -> tuple[str, str, str]:
    spatial = "".join(c for c in string.ascii_uppercase if c not in "NCIO")[:n]
    lhs = "N" + spatial + "C"
    return lhs, spatial + "IO", lhs


def _pads(size: int, k: int, s: int, padding: str) -> tuple[int, int]:
    if padding == "VALID":
        return 0, 0
    return tuple(jax.lax.padtype_to_pads((size,), (k,), (s,), "SAME")[0])


def _window_average(x: jax.Array, axes: Sequence[int], k: int, s: int, padding: str) -> jax.Array:
    """``(1/k) sum_f x[..., s p + f, ...]`` over the same shift ``f`` on every axis in ``axes``."""
    size = x.shape[axes[0]]
    lo, hi = _pads(size, k, s, padding)
    if lo or hi:
        widths = [(0, 0)] * x.ndim
        for a in axes:
            widths[a] = (lo, hi)
        x = jnp.pad(x, widths, mode="wrap" if padding == "CIRCULAR" else "constant")
    n_out = (size + lo + hi - k) // s + 1
    total = None
    for f in range(k):
        part = x
        for a in axes:
            part = jax.lax.slice_in_dim(part, f, f + s * (n_out - 1) + 1, s, axis=a)
        total = part if total is None else total + part
    return total / k


def Conv(out_chan: int, filter_shape: Sequence[int], strides: Sequence[int] | None = None,
         padding: str = "VALID", W_std: float = 1.0, b_std: float | None = None,
         dimension_numbers: tuple[str, str, str] | None = None, parameterization: str = "ntk",
         s: tuple[int, int] = (1, 1)):
    """Convolution layer; returns ``(init_fn, apply_fn, kernel_fn)`` (module docstring).

    Args:
      out_chan: output channels (ignored by ``kernel_fn`` under ``'ntk'``).
      filter_shape: spatial filter shape, e.g. ``(3,)`` or ``(3, 3)``.
      strides: spatial strides (default all 1).
      padding: ``'VALID'``, ``'SAME'`` or ``'CIRCULAR'``.
      W_std, b_std: weight / bias standard deviations (``b_std=None``: no bias).
      dimension_numbers: ``(lhs, rhs, out)`` specs; only channels-last ``('N..C', '..IO',
        'N..C')`` layouts (the default) are supported.
      parameterization, s: as for ``Dense``.
    """
    filter_shape = tuple(int(f) for f in filter_shape)
    n_sp = len(filter_shape)
    name = f"Conv({out_chan}, {filter_shape}, padding={padding!r})"
    if n_sp < 1 or any(f < 1 for f in filter_shape):
        raise ValueError(f"{name}: filter_shape must be a non-empty tuple of positive ints")
    strides = (1,) * n_sp if strides is None else tuple(int(v) for v in strides)
    if len(strides) != n_sp or any(v < 1 for v in strides):
        raise ValueError(f"{name}: strides must be {n_sp} positive ints; got {strides}")
    padding = str(padding).upper()
    if padding not in _PADDINGS:
        raise ValueError(f"{name}: padding must be one of {list(_PADDINGS)}; got {padding!r}")
    W_std = check_std(name, "W_std", W_std, allow_none=False)
    b_std = check_std(name, "b_std", b_std, allow_none=True)
    parameterization = _check_parameterization(name, parameterization)
    default_dn = _default_dimension_numbers(n_sp)
    if dimension_numbers is None:
        dimension_numbers = default_dn
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    if (lhs_spec[0], lhs_spec[-1], rhs_spec[-2:]) != ("N", "C", "IO") or out_spec != lhs_spec \
            or rhs_spec[:-2] != lhs_spec[1:-1] or len(lhs_spec) != n_sp + 2:
        raise ValueError(f"{name}: dimension_numbers must be channels-last like {default_dn}; "
                         f"got {dimension_numbers}")
    width_out = out_chan * s[1] if parameterization == "standard" else out_chan
    fan_size = int(np.prod(filter_shape))

    def shape_fn(input_shape):
        if isinstance(input_shape, list) or len(input_shape) != n_sp + 2:
            raise ValueError(f"{name}: expects inputs of rank {n_sp + 2} (N, {n_sp} spatial "
                             f"axes, channels); got shape {input_shape}")
        spatial = []
        for size, k, st in zip(input_shape[1:-1], filter_shape, strides):
            if padding == "VALID":
                if size < k:
                    raise ValueError(f"{name}: spatial size {size} is smaller than the filter "
                                     f"{k} with VALID padding (input shape {tuple(input_shape)})")
                spatial.append((size - k) // st + 1)
            else:
                spatial.append(-(-size // st))
        return (input_shape[0], *spatial, width_out)

    def init_fn(key, input_shape):
        output_shape = shape_fn(input_shape)
        k_w, k_b = jax.random.split(key)
        W = jax.random.normal(k_w, filter_shape + (input_shape[-1], width_out))
        b = None if b_std is None else jax.random.normal(k_b, (1,) * (n_sp + 1) + (width_out,))
        if parameterization == "standard":
            W = W * (W_std / (input_shape[-1] * fan_size / s[0]) ** 0.5)
            b = None if b is None else b * b_std
        return output_shape, (W, b)

    def apply_fn(params, inputs, **kwargs):
        W, b = params
        x = inputs
        pad = padding
        if padding == "CIRCULAR":
            widths = [(0, 0)] + [_pads(x.shape[1 + i], filter_shape[i], strides[i], "SAME")
                                 for i in range(n_sp)] + [(0, 0)]
            x = jnp.pad(x, widths, mode="wrap")
            pad = "VALID"
        out = jax.lax.conv_general_dilated(x, W, strides, pad,
                                           dimension_numbers=dimension_numbers)
        if parameterization == "ntk":
            out = (W_std / (inputs.shape[-1] * fan_size) ** 0.5) * out
            return out if b is None else out + b_std * b
        out = out / s[0] ** 0.5
        return out if b is None else out + b

    def average(x, n_batch, diagonal):
        if x is None or x.ndim == 0:
            return x
        for i in range(n_sp):
            axes = (n_batch + i,) if diagonal else (n_batch + 2 * i, n_batch + 2 * i + 1)
            x = _window_average(x, axes, filter_shape[i], strides[i], padding)
        return x

    def kernel_map(k):
        shape_fn(k.shape1)
        d = k.diagonal_spatial
        avg = k.replace(nngp=average(k.nngp, 2, d), ntk=average(k.ntk, 2, d),
                        cov1=average(k.cov1, 1, d), cov2=average(k.cov2, 1, d))
        if parameterization == "ntk":
            return affine_kernel(avg, W_std, b_std, lambda old, new: new)
        n_in = k.shape1[-1] * fan_size / s[0]
        bias = 0.0 if b_std is None else 1.0
        return affine_kernel(avg, W_std, b_std, lambda old, new: n_in * old + bias)

    return make_layer(name, init_fn, apply_fn, shape_fn, kernel_map)
