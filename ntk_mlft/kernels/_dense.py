"""``Dense``: the fully-connected layer, finite and infinite width (neural-tangents 0.6.5 API).

Finite network, input ``x`` with ``n`` features on ``channel_axis``:

* ``parameterization='ntk'`` (Jacot et al. 2018): ``W ~ N(0, 1)``, ``b ~ N(0, 1)``,
  ``z = W_std / sqrt(n) * x W + b_std * b``.
* ``parameterization='standard'`` (Sohl-Dickstein et al. 2020, arXiv:2001.07301):
  ``W ~ N(0, W_std^2 s0 / n)`` of shape ``(n, s1 * out_dim)``, ``b ~ N(0, b_std^2)``,
  ``z = x W / sqrt(s0) + b``.

Infinite width (Lee et al. 2018; Jacot et al. 2018), with ``K`` the NNGP and ``T`` the NTK of
the layer input:

* NNGP (both): ``K' = W_std^2 K + b_std^2``.
* NTK, ntk: ``T' = K' + W_std^2 T``.
* NTK, standard: ``T' = (n / s0) K + W_std^2 T + [1 if bias]`` (``n`` the finite input width).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._layer import (
    LinearTap,
    UnsupportedStructure,
    check_positive_int,
    check_single_input,
    check_std,
    make_layer,
)

__all__ = ["Dense"]


def _check_parameterization(layer: str, parameterization: str) -> str:
    p = str(parameterization).lower()
    if p not in ("ntk", "standard"):
        raise ValueError(f"{layer}: parameterization must be 'ntk' or 'standard'; "
                         f"got {parameterization!r}")
    return p


def check_s(layer: str, s) -> tuple[int, int]:
    """The ``(s0, s1)`` width scalings of the standard parameterisation: two positive ints."""
    if not isinstance(s, (tuple, list)) or len(s) != 2:
        raise ValueError(f"{layer}: s must be a pair (s0, s1) of integers >= 1; got {s!r}")
    return check_positive_int(layer, "s[0]", s[0]), check_positive_int(layer, "s[1]", s[1])


def check_input_features(layer: str, inputs, axis: int, W) -> None:
    """Static check (shapes are known at trace time) that ``inputs`` match the weight ``W``."""
    if isinstance(inputs, (list, tuple)):
        check_single_input(layer, [getattr(x, "shape", x) for x in inputs])
    ndim = jnp.ndim(inputs)
    if ndim < 2 or not -ndim <= axis < ndim:
        raise ValueError(f"{layer}: inputs must have a batch axis and feature axis {axis}; "
                         f"got shape {jnp.shape(inputs)}")
    if jnp.shape(inputs)[axis] != W.shape[-2]:
        raise ValueError(f"{layer}: inputs of shape {jnp.shape(inputs)} have "
                         f"{jnp.shape(inputs)[axis]} features on axis {axis}, but the params "
                         f"(weights of shape {W.shape}) were initialised for {W.shape[-2]}")


def affine_kernel(k, W_std: float, b_std: float | None, ntk_extra):
    """Shared NNGP/NTK update of affine layers, given the already spatially-averaged ``k``.

    ``ntk_extra(k) -> (scale_of_nngp_in_ntk, bias_term)`` encodes the parameterisation.
    """
    b2 = 0.0 if b_std is None else b_std ** 2
    nngp = W_std ** 2 * k.nngp + b2
    cov1 = W_std ** 2 * k.cov1 + b2
    cov2 = None if k.cov2 is None else W_std ** 2 * k.cov2 + b2
    ntk = k.ntk
    if ntk is not None:
        ntk = ntk_extra(k.nngp, nngp) + W_std ** 2 * ntk
    return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, is_gaussian=True)


def Dense(out_dim: int, W_std: float = 1., b_std: float | None = None, batch_axis: int = 0,
          channel_axis: int = -1, parameterization: str = "ntk", s: tuple[int, int] = (1, 1)):
    """Dense layer; returns ``(init_fn, apply_fn, kernel_fn)`` (see the module docstring).

    Args:
      out_dim: output features (ignored by ``kernel_fn`` under ``'ntk'``).
      W_std: weight standard deviation ``sigma_w >= 0``.
      b_std: bias standard deviation, ``None`` for no bias.
      batch_axis, channel_axis: axes of the batch and the features.
      parameterization: ``'ntk'`` or ``'standard'``.
      s: ``(s0, s1)`` width scalings for ``'standard'`` (arXiv:2001.07301).
    """
    name = f"Dense({out_dim})"
    out_dim = check_positive_int(name, "out_dim", out_dim)
    W_std = check_std(name, "W_std", W_std, allow_none=False)
    b_std = check_std(name, "b_std", b_std, allow_none=True)
    parameterization = _check_parameterization(name, parameterization)
    s = check_s(name, s)
    width_out = out_dim * s[1] if parameterization == "standard" else out_dim

    def shape_fn(input_shape):
        check_single_input(name, input_shape)
        if len(input_shape) < 2:
            raise ValueError(f"{name}: input must have a batch and a feature axis; got shape "
                             f"{tuple(input_shape)}")
        ax = channel_axis % len(input_shape)
        return tuple(input_shape[:ax]) + (width_out,) + tuple(input_shape[ax + 1:])

    def init_fn(key, input_shape):
        output_shape = shape_fn(input_shape)
        n_in = input_shape[channel_axis]
        k_w, k_b = jax.random.split(key)
        W = jax.random.normal(k_w, (n_in, width_out))
        b = None
        if b_std is not None:
            b_shape = [1] * len(input_shape)
            b_shape[channel_axis] = width_out
            b = jax.random.normal(k_b, tuple(b_shape))
        if parameterization == "standard":
            W = W * (W_std / (n_in / s[0]) ** 0.5)
            b = None if b is None else b * b_std
        return output_shape, (W, b)

    def apply_fn(params, inputs, **kwargs):
        W, b = params
        check_input_features(name, inputs, channel_axis, W)
        prod = jnp.moveaxis(jnp.tensordot(inputs, W, axes=((channel_axis,), (0,))), -1,
                            channel_axis)
        if parameterization == "ntk":
            out = (W_std / inputs.shape[channel_axis] ** 0.5) * prod
            return out if b is None else out + b_std * b
        out = prod / s[0] ** 0.5
        return out if b is None else out + b

    def tapped_apply(params, inputs, tap, path, **kwargs):
        out = apply_fn(params, inputs)
        ax = channel_axis % inputs.ndim
        if ax == 0:
            raise UnsupportedStructure(f"{name}: the structured-derivative NTK treats axis 0 as "
                                       f"the batch; got channel_axis={channel_axis}")
        x = jnp.moveaxis(inputs, ax, -1)
        u = x.reshape(x.shape[0], -1, x.shape[-1])           # (N, P, n_in)
        ntk = parameterization == "ntk"
        w_scale = W_std / x.shape[-1] ** 0.5 if ntk else 1 / s[0] ** 0.5
        b_scale = None if params[1] is None else (b_std if ntk else 1.0)
        return tap(LinearTap(name, path, u, w_scale, b_scale, ax), out)

    def kernel_map(k):
        ndim = len(k.shape1)
        if batch_axis % ndim != 0 or channel_axis % ndim != ndim - 1:
            raise ValueError(f"{name}: kernel_fn supports batch_axis=0 and channel_axis=-1 "
                             f"only; got batch_axis={batch_axis}, channel_axis={channel_axis} "
                             f"for inputs of shape {k.shape1}")
        if parameterization == "ntk":
            return affine_kernel(k, W_std, b_std, lambda old, new: new)
        n_in = k.shape1[-1] / s[0]
        bias = 0.0 if b_std is None else 1.0
        return affine_kernel(k, W_std, b_std, lambda old, new: n_in * old + bias)

    return make_layer(name, init_fn, apply_fn, shape_fn, kernel_map, tapped_apply=tapped_apply)
