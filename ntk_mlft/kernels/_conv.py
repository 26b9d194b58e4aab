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

import itertools
import string
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._dense import _check_parameterization, affine_kernel, check_input_features, check_s
from ._layer import LinearTap, check_positive_int, check_single_input, check_std, make_layer

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


def _pad_spatial(x: jax.Array, filter_shape, strides, padding: str) -> jax.Array:
    """``x (N, *S, C)`` padded on its spatial axes as the convolution pads it."""
    widths = [(0, 0)] + [_pads(x.shape[1 + i], k, st, padding)
                         for i, (k, st) in enumerate(zip(filter_shape, strides))] + [(0, 0)]
    if all(w == (0, 0) for w in widths):
        return x
    return jnp.pad(x, widths, mode="wrap" if padding == "CIRCULAR" else "constant")


def patches(x: jax.Array, filter_shape, strides, padding: str) -> jax.Array:
    """``u[i, p, (f, c)] = x_pad[i, s p + f, c]``: the ``(N, P, C prod(filter_shape))`` windows.

    ``conv(x, W)[i, p, :] = u[i, p, :] @ W.reshape(-1, out)`` (taps in row-major order of the
    filter, channels fastest); exact (slices, no arithmetic), so float32 patches carry no
    rounding.
    """
    xp = _pad_spatial(x, filter_shape, strides, padding)
    sizes = [(xp.shape[1 + i] - k) // st + 1
             for i, (k, st) in enumerate(zip(filter_shape, strides))]
    parts = []
    for offsets in itertools.product(*(range(k) for k in filter_shape)):
        part = xp
        for i, (f, st, n) in enumerate(zip(offsets, strides, sizes)):
            part = jax.lax.slice_in_dim(part, f, f + st * (n - 1) + 1, st, axis=1 + i)
        parts.append(part)
    u = jnp.stack(parts, axis=-2)                       # (N, *S_out, F, C)
    return u.reshape(x.shape[0], int(np.prod(sizes)), -1)


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
    name = f"Conv({out_chan}, {filter_shape}, padding={padding!r})"
    out_chan = check_positive_int(name, "out_chan", out_chan)
    if isinstance(filter_shape, (int, np.integer)) or not isinstance(filter_shape, Sequence) \
            or not filter_shape or not all(isinstance(f, (int, np.integer))
                                           and not isinstance(f, bool) and f >= 1
                                           for f in filter_shape):
        raise ValueError(f"{name}: filter_shape must be a non-empty tuple of positive ints, "
                         f"e.g. (3,) or (3, 3); got {filter_shape!r}")
    filter_shape = tuple(int(f) for f in filter_shape)
    n_sp = len(filter_shape)
    name = f"Conv({out_chan}, {filter_shape}, padding={padding!r})"
    if strides is not None and (not isinstance(strides, Sequence) or len(strides) != n_sp
                                or not all(isinstance(v, (int, np.integer))
                                           and not isinstance(v, bool) and v >= 1
                                           for v in strides)):
        raise ValueError(f"{name}: strides must be {n_sp} positive ints; got {strides!r}")
    strides = (1,) * n_sp if strides is None else tuple(int(v) for v in strides)
    padding = str(padding).upper()
    if padding not in _PADDINGS:
        raise ValueError(f"{name}: padding must be one of {list(_PADDINGS)}; got {padding!r}")
    W_std = check_std(name, "W_std", W_std, allow_none=False)
    b_std = check_std(name, "b_std", b_std, allow_none=True)
    parameterization = _check_parameterization(name, parameterization)
    s = check_s(name, s)
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
        check_single_input(name, input_shape)
        if len(input_shape) != n_sp + 2:
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
        if isinstance(inputs, (list, tuple)):
            check_single_input(name, [jnp.shape(x) for x in inputs])
        shape_fn(tuple(jnp.shape(inputs)))
        check_input_features(name, inputs, -1, W)
        x = inputs
        pad = padding
        if padding == "CIRCULAR":
            x = _pad_spatial(x, filter_shape, strides, padding)
            pad = "VALID"
        out = jax.lax.conv_general_dilated(x, W, strides, pad,
                                           dimension_numbers=dimension_numbers)
        if parameterization == "ntk":
            out = (W_std / (inputs.shape[-1] * fan_size) ** 0.5) * out
            return out if b is None else out + b_std * b
        out = out / s[0] ** 0.5
        return out if b is None else out + b

    def tapped_apply(params, inputs, tap, path, **kwargs):
        out = apply_fn(params, inputs)
        u = patches(inputs, filter_shape, strides, padding)    # (N, P, C * |F|)
        ntk = parameterization == "ntk"
        w_scale = W_std / u.shape[-1] ** 0.5 if ntk else 1 / s[0] ** 0.5
        b_scale = None if params[1] is None else (b_std if ntk else 1.0)
        return tap(LinearTap(name, path, u, w_scale, b_scale, n_sp + 1), out)

    def average(x, n_batch, diagonal):
        if x is None or x.ndim == 0:
            return x
        # the taps read shifted copies of x: materialise x once, or XLA fuses the producer (the
        # previous nonlinearity's dual) into every tap and recomputes it |filter| times
        x = jax.lax.optimization_barrier(x)
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

    return make_layer(name, init_fn, apply_fn, shape_fn, kernel_map, tapped_apply=tapped_apply)
