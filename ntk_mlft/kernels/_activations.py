"""Elementwise nonlinearities and their dual kernels (neural-tangents 0.6.5 API).

For a centred Gaussian pair ``(u, v)`` with ``E u^2 = q11``, ``E v^2 = q22``, ``E uv = q12``, an
activation ``phi`` maps the NNGP ``q12 -> E[phi(u) phi(v)]`` and the NTK
``T -> T * E[phi'(u) phi'(v)]`` (Jacot et al. 2018; Lee et al. 2019). Closed forms used:

* ``ABRelu(a, b)`` = ``a min(x,0) + b max(x,0)``; with ``r = sqrt(q11 q22 - q12^2)`` and
  ``theta = atan2(r, q12)``, ``D = (a^2+b^2)/2 - (a-b)^2 theta/(2 pi)``:
  ``E[phi phi] = (a-b)^2/(2 pi) r + D q12`` and ``E[phi' phi'] = D``. ReLU (a=0, b=1) is the order-1
  arc-cosine kernel of Cho & Saul (2009) divided by 2.
* ``Erf(a, b, c)`` = ``a erf(b x) + c`` (Williams 1997): with ``q <- b^2 q``,
  ``E[erf erf] = 2/pi asin(2 q12 / sqrt((1+2q11)(1+2q22)))`` and
  ``E[erf' erf'] = 4/pi / sqrt((1+2q11)(1+2q22) - 4 q12^2)``; then scaled by ``a^2`` (+ ``c^2``).
* ``Gelu`` (Tsuchida et al. 2020, arXiv:2002.08517).
* ``Sin(a, b, c)`` = ``a sin(b x + c)``, with ``s = q11 + q22``:
  ``a^2/2 [e^{b^2(q12 - s/2)} - cos(2c) e^{-b^2(q12 + s/2)}]``;
  derivative kernel ``a^2 b^2/2 [e^{b^2(q12 - s/2)} + cos(2c) e^{-b^2(q12 + s/2)}]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._atan import atan2
from ._layer import make_layer

__all__ = ["ABRelu", "Relu", "LeakyRelu", "Abs", "Erf", "Gelu", "Sin"]


def _variances(cov: jax.Array, diagonal_spatial: bool) -> jax.Array:
    """``(N, *spatial)`` per-position variances from a ``(N, *layout)`` self-covariance."""
    if diagonal_spatial:
        return cov
    out = cov
    while out.ndim > 1 + (cov.ndim - 1) // 2:
        out = jnp.diagonal(out, axis1=1, axis2=2)  # the diagonal goes last: order is kept
    return out


def _expand(v: jax.Array, lead: tuple[int, ...], full: bool, second: bool) -> jax.Array:
    """Reshape variances ``(N, s1, s2, ...)`` to broadcast against a covariance layout.

    ``lead`` are the batch dims (``(N, 1)``, ``(1, N)`` or ``(N,)``); for full spatial layouts
    each spatial axis ``s`` becomes ``(s, 1)`` (first copy) or ``(1, s)`` (second copy).
    """
    spatial = v.shape[1:]
    shape = list(lead)
    for s in spatial:
        shape += ([1, s] if second else [s, 1]) if full else [s]
    return v.reshape(shape)


def _elementwise(name: str, fn, dual, needs_gaussian: bool = True):
    """A parameter-free layer ``x -> fn(x)`` whose kernel map is ``dual(q12, q11, q22, ntk)``."""
    def shape_fn(input_shape):
        return tuple(input_shape) if not isinstance(input_shape, list) else \
            _raise_list(name, input_shape)

    def init_fn(key, input_shape):
        return shape_fn(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        return fn(inputs)

    def kernel_map(k):
        if needs_gaussian and not k.is_gaussian:
            raise ValueError(f"{name}: its input must be Gaussian, i.e. follow an affine layer "
                             f"(Dense/Conv/FanInSum of affine branches); got input of shape "
                             f"{k.shape1} that is not")
        full = not k.diagonal_spatial
        q12 = k.nngp
        if k.cov2 is None:
            # x2 = x1: make nngp[i, i] equal cov1[i] bit for bit. They are the same number
            # computed by different fused ops; an ulp apart, the ReLU-family sqrt(q11 q22 - q12^2)
            # at theta = 0 would turn the gap into ~1e-8 relative errors.
            idx = jnp.arange(q12.shape[0])
            q12 = q12.at[idx, idx].set(k.cov1)
        v1 = _variances(k.cov1, k.diagonal_spatial)
        v2 = v1 if k.cov2 is None else _variances(k.cov2, k.diagonal_spatial)
        n1, n2 = v1.shape[0], v2.shape[0]
        nngp, ntk = dual(q12, _expand(v1, (n1, 1), full, False),
                         _expand(v2, (1, n2), full, True), k.ntk)

        def self_map(cov, v):
            a = _expand(v, (v.shape[0],), full, False)
            b = _expand(v, (v.shape[0],), full, True)
            return dual(cov, a, b, None)[0]

        cov1 = self_map(k.cov1, v1)
        cov2 = None if k.cov2 is None else self_map(k.cov2, v2)
        return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, is_gaussian=False)

    return make_layer(name, init_fn, apply_fn, shape_fn, kernel_map)


def _raise_list(name, shape):
    raise ValueError(f"{name}: takes one input, got {len(shape)} branches with shapes {shape}; "
                     f"combine them first (FanInSum)")


def _sqrt(x):
    return jnp.sqrt(jnp.maximum(x, 0.0))


def _angle(r: jax.Array, q: jax.Array) -> jax.Array:
    """``atan2(r, q)`` for ``r >= 0`` (so in ``[0, pi]``), vectorised (``_atan.py``).
    ``(r, q) = (0, 0)`` (a zero input) gives ``pi/2`` as neural-tangents does."""
    return jnp.where((r == 0) & (q == 0), jnp.pi / 2, atan2(r, q))


def ABRelu(a: float, b: float, do_stabilize: bool = False):
    """``a * min(x, 0) + b * max(x, 0)``. ``do_stabilize`` rescales by ``max|nngp|`` first."""
    def fn(x):
        return a * jnp.minimum(x, 0) + b * jnp.maximum(x, 0)

    def dual(q12, q11, q22, ntk):
        scale = jnp.maximum(jnp.max(jnp.abs(q12)), 1e-12) if do_stabilize else 1.0
        q12, q11, q22 = q12 / scale, q11 / scale, q22 / scale
        # r^2 = (n - q12)(n + q12) with n = sqrt(q11 q22): exact 0 when q12 = q11 = q22 (the
        # diagonal), while XLA's FMA contraction of q11 q22 - q12^2 leaves a rounding residual
        # that the square root would blow up to ~1e-8 relative.
        norm = jnp.sqrt(q11 * q22)
        r = _sqrt((norm - q12) * (norm + q12))
        theta = _angle(r, q12)
        c = (a - b) ** 2 / (2 * jnp.pi)
        dot = (a ** 2 + b ** 2) / 2 - c * theta
        out = (c * r + dot * q12) * scale
        return out, None if ntk is None else ntk * dot

    return _elementwise(f"ABRelu({a}, {b})", fn, dual)


def Relu(do_stabilize: bool = False):
    """ReLU ``max(x, 0)``."""
    return ABRelu(0, 1, do_stabilize)


def LeakyRelu(alpha: float, do_stabilize: bool = False):
    """Leaky ReLU ``alpha * min(x, 0) + max(x, 0)``."""
    return ABRelu(alpha, 1, do_stabilize)


def Abs(do_stabilize: bool = False):
    """``|x|``."""
    return ABRelu(-1, 1, do_stabilize)


def Erf(a: float = 1., b: float = 1., c: float = 0.):
    """``a * erf(b * x) + c``."""
    def fn(x):
        return a * jax.scipy.special.erf(b * x) + c

    def dual(q12, q11, q22, ntk):
        q12, q11, q22 = b ** 2 * q12, b ** 2 * q11, b ** 2 * q22
        root = _sqrt((1 + 2 * q11) * (1 + 2 * q22) - 4 * q12 ** 2)
        out = a ** 2 * (2 / jnp.pi) * atan2(2 * q12, root) + c ** 2
        if ntk is not None:
            ntk = ntk * (a ** 2 * b ** 2 * 4 / jnp.pi) / root
        return out, ntk

    return _elementwise(f"Erf({a}, {b}, {c})", fn, dual)


def Gelu(approximate: bool = False):
    """``x * Phi(x)`` (``approximate`` only changes the finite network's ``apply_fn``)."""
    def fn(x):
        return jax.nn.gelu(x, approximate=approximate)

    def dual(q12, q11, q22, ntk):
        prod = q11 * q22
        prod1 = (q11 + 1) * (q22 + 1)
        delta2 = prod1 - q12 ** 2
        delta = _sqrt(delta2)
        angle = atan2(q12, delta)
        out = ((q12 ** 2 + prod * delta2) / (prod1 * delta) + q12 * angle) / (2 * jnp.pi)
        out = out + q12 / 4
        if ntk is not None:
            first = (1 / delta2 + (1 - prod) / prod1 + 1) * q12 / delta / (2 * jnp.pi)
            ntk = ntk * (first + 0.25 + angle / (2 * jnp.pi))
        return out, ntk

    return _elementwise("Gelu", fn, dual)


def Sin(a: float = 1., b: float = 1., c: float = 0.):
    """``a * sin(b * x + c)``."""
    def fn(x):
        return a * jnp.sin(b * x + c)

    def dual(q12, q11, q22, ntk):
        half = -0.5 * (q11 + q22)
        s1 = jnp.exp(b ** 2 * (half + q12))
        s2 = jnp.exp(b ** 2 * (half - q12)) * jnp.cos(2 * c)
        out = a ** 2 / 2 * (s1 - s2)
        if ntk is not None:
            ntk = ntk * (a ** 2 * b ** 2 / 2) * (s1 + s2)
        return out, ntk

    return _elementwise(f"Sin({a}, {b}, {c})", fn, dual)
