"""Analytic kernels against closed forms written out independently here, and against 2-D
Gauss-Hermite quadrature of E[phi(u) phi(v)] and E[phi'(u) phi'(v)] for every activation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tol

from ntk_mlft import stax


def _pair(rng, d=5):
    x1 = rng.normal(size=(4, d))
    x2 = rng.normal(size=(3, d))
    return x1, x2


def _arccos1(x, y):
    """Cho & Saul (2009) order-1 arc-cosine kernel k1 = |x||y| J1(theta) / pi."""
    nx, ny = np.linalg.norm(x, axis=1)[:, None], np.linalg.norm(y, axis=1)[None, :]
    cos = np.clip(x @ y.T / (nx * ny), -1, 1)
    theta = np.arccos(cos)
    return nx * ny * (np.sin(theta) + (np.pi - theta) * cos) / np.pi, theta


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_relu_one_hidden_layer_is_arc_cosine(rng, parameterization):
    """f = Dense(1) o ReLU o Dense(n): NNGP = W2^2 * k1(W1 x / sqrt d)/2 (+ b^2), NTK adds the
    first layer's term x.y/d * (pi - theta)/(2 pi) (Jacot et al. 2018, arc-cosine form)."""
    x1, x2 = _pair(rng)
    d = x1.shape[1]
    w1, w2, n = 1.7, 0.8, 64
    _, _, kernel_fn = stax.serial(stax.Dense(n, W_std=w1, parameterization=parameterization),
                                  stax.Relu(),
                                  stax.Dense(1, W_std=w2, parameterization=parameterization))
    k = kernel_fn(x1, x2)
    s1, s2 = w1 / np.sqrt(d) * x1, w1 / np.sqrt(d) * x2
    k1, theta = _arccos1(s1, s2)
    nngp = w2 ** 2 * k1 / 2
    if parameterization == "ntk":
        ntk = nngp + w2 ** 2 * (s1 @ s2.T) * (np.pi - theta) / (2 * np.pi)
    else:  # standard: T1 = d K0 = x.y ; T2 = n K1 + w2^2 T1 relu'
        ntk = n * k1 / 2 + w2 ** 2 * (x1 @ x2.T) * (np.pi - theta) / (2 * np.pi)
    np.testing.assert_allclose(k.nngp, nngp, rtol=tol(np.float64))
    np.testing.assert_allclose(k.ntk, ntk, rtol=tol(np.float64))


def test_erf_is_williams_arcsin_kernel(rng):
    x1, x2 = _pair(rng)
    d = x1.shape[1]
    w, b = 1.3, 0.4
    k = stax.serial(stax.Dense(10, W_std=w, b_std=b), stax.Erf())[2](x1, x2)
    q12 = w ** 2 * x1 @ x2.T / d + b ** 2
    q11 = w ** 2 * np.sum(x1 ** 2, 1) / d + b ** 2
    q22 = w ** 2 * np.sum(x2 ** 2, 1) / d + b ** 2
    den = np.sqrt((1 + 2 * q11)[:, None] * (1 + 2 * q22)[None, :])
    np.testing.assert_allclose(k.nngp, 2 / np.pi * np.arcsin(2 * q12 / den), rtol=tol(np.float64))
    deriv = 4 / np.pi / np.sqrt(den ** 2 - 4 * q12 ** 2)
    np.testing.assert_allclose(k.ntk, q12 * deriv, rtol=tol(np.float64))
    np.testing.assert_allclose(k.cov1, 2 / np.pi * np.arcsin(2 * q11 / (1 + 2 * q11)),
                               rtol=tol(np.float64))


def test_relu_ntk_of_deep_mlp_matches_numpy_recursion(rng):
    """3 hidden ReLU layers with bias, against a numpy implementation of the arc-cosine form."""
    x1, x2 = _pair(rng, d=7)
    w, b, depth = 1.4, 0.3, 3
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(32, W_std=w, b_std=b), stax.Relu()]
    k = stax.serial(*layers, stax.Dense(1, W_std=w, b_std=b))[2](x1, x2)
    d = x1.shape[1]
    q12, q11, q22 = x1 @ x2.T / d, np.sum(x1 ** 2, 1) / d, np.sum(x2 ** 2, 1) / d
    t12 = np.zeros_like(q12)
    for _ in range(depth + 1):
        q12, q11, q22 = w ** 2 * q12 + b ** 2, w ** 2 * q11 + b ** 2, w ** 2 * q22 + b ** 2
        t12 = q12 + w ** 2 * t12
        if _ == depth:
            break
        norm = np.sqrt(q11[:, None] * q22[None, :])
        theta = np.arccos(np.clip(q12 / norm, -1, 1))
        t12 = t12 * (np.pi - theta) / (2 * np.pi)
        q12 = norm * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
        q11, q22 = q11 / 2, q22 / 2
    np.testing.assert_allclose(k.nngp, q12, rtol=1e-9)
    np.testing.assert_allclose(k.ntk, t12, rtol=1e-9)


def _gauss_hermite_expectation(f, g, q11, q22, q12, order=80):
    """E[f(u) g(v)] for centred Gaussian (u, v) with covariance [[q11, q12], [q12, q22]]."""
    z, wts = np.polynomial.hermite_e.hermegauss(order)
    wts = wts / wts.sum()
    a = np.sqrt(q11)
    rho = q12 / np.sqrt(q11 * q22)
    u = a * z[:, None]
    v = np.sqrt(q22) * (rho * z[:, None] + np.sqrt(1 - rho ** 2) * z[None, :])
    return float(np.sum(wts[:, None] * wts[None, :] * f(u) * g(v)))


def _np_fn(apply_fn):
    return lambda t: np.asarray(apply_fn((), jnp.asarray(t)))


def _np_grad(apply_fn):
    grad = jax.vmap(jax.grad(lambda s: apply_fn((), s)))
    return lambda t: np.asarray(grad(jnp.asarray(t).ravel())).reshape(np.shape(t))


SMOOTH = {
    "Erf(a=1.5,b=0.7,c=0.2)": lambda: stax.Erf(a=1.5, b=0.7, c=0.2),
    "Gelu": lambda: stax.Gelu(),
    "Sin(a=1.2,b=0.9,c=0.3)": lambda: stax.Sin(a=1.2, b=0.9, c=0.3),
}


@pytest.mark.parametrize("name", list(SMOOTH))
def test_activation_dual_matches_quadrature(name):
    """The dual kernel and its derivative kernel at one covariance, against quadrature
    (smooth activations; the piecewise-linear ones have exact closed forms below)."""
    make = SMOOTH[name]
    _, apply_fn, _ = make()
    x1 = np.array([[1.0, 0.3, -0.5]])
    x2 = np.array([[0.4, -1.1, 0.8]])
    w, b = 1.2, 0.5
    k = stax.serial(stax.Dense(3, W_std=w, b_std=b), make())[2](x1, x2)
    d = 3
    q11 = w ** 2 * float((x1 @ x1.T)[0, 0]) / d + b ** 2
    q22 = w ** 2 * float((x2 @ x2.T)[0, 0]) / d + b ** 2
    q12 = w ** 2 * float((x1 @ x2.T)[0, 0]) / d + b ** 2
    f, df = _np_fn(apply_fn), _np_grad(apply_fn)
    rtol = 1e-9
    nngp = _gauss_hermite_expectation(f, f, q11, q22, q12, order=120)
    deriv = _gauss_hermite_expectation(df, df, q11, q22, q12, order=120)
    np.testing.assert_allclose(float(k.nngp[0, 0]), nngp, rtol=rtol)
    np.testing.assert_allclose(float(k.ntk[0, 0]), q12 * deriv, rtol=rtol)
    var = _gauss_hermite_expectation(f, f, q11, q11, q11 * (1 - 1e-12), order=120)
    np.testing.assert_allclose(float(k.cov1[0]), var, rtol=1e-6)


def test_abs_and_leaky_relu_closed_forms(rng):
    """|x|: E|u||v| = (2/pi)(r + q12 asin(q12/sqrt(q11 q22))); LeakyRelu and ABRelu are
    ``a x + (b - a) relu(x)``, so their duals are combinations of the ReLU arc-cosine kernel."""
    x1, x2 = _pair(rng)
    d = x1.shape[1]
    q12 = x1 @ x2.T / d
    q11, q22 = np.sum(x1 ** 2, 1) / d, np.sum(x2 ** 2, 1) / d
    prod = q11[:, None] * q22[None, :]
    r = np.sqrt(prod - q12 ** 2)
    k = stax.serial(stax.Dense(2), stax.Abs())[2](x1, x2)
    np.testing.assert_allclose(k.nngp, 2 / np.pi * (r + q12 * np.arcsin(q12 / np.sqrt(prod))),
                               rtol=tol(np.float64))
    np.testing.assert_allclose(k.ntk, q12 * 2 / np.pi * np.arcsin(q12 / np.sqrt(prod)),
                               rtol=tol(np.float64))
    k1, theta = _arccos1(x1 / np.sqrt(d), x2 / np.sqrt(d))
    # E[phi phi] = a^2 q + a(b-a) q + (b-a)^2 k1/2
    # E[phi' phi'] = a^2 + a(b-a) + (b-a)^2 (pi-theta)/2pi
    for a, b, layer in [(0.0, 1.0, stax.Relu()), (0.3, 1.0, stax.LeakyRelu(0.3)),
                        (-0.5, 1.5, stax.ABRelu(-0.5, 1.5))]:
        got = stax.serial(stax.Dense(2), layer)[2](x1, x2)
        nngp = a ** 2 * q12 + a * (b - a) * q12 + (b - a) ** 2 * k1 / 2
        dot = a ** 2 + a * (b - a) + (b - a) ** 2 * (np.pi - theta) / (2 * np.pi)
        np.testing.assert_allclose(got.nngp, nngp, rtol=tol(np.float64))
        np.testing.assert_allclose(got.ntk, q12 * dot, rtol=tol(np.float64))


def test_erf_at_large_scale_tends_to_sign_kernel(rng):
    """erf(b x) -> sign(x) as b -> inf: E[sign u sign v] = 1 - 2 theta/pi = (2/pi) asin(rho)."""
    x1, x2 = _pair(rng)
    k = stax.serial(stax.Dense(2), stax.Erf(b=1e6))[2](x1, x2, get="nngp")
    rho = (x1 @ x2.T) / np.outer(np.linalg.norm(x1, axis=1), np.linalg.norm(x2, axis=1))
    np.testing.assert_allclose(k, 2 / np.pi * np.arcsin(rho), atol=1e-5)


def test_float32_when_x64_disabled(rng):
    x1, x2 = _pair(rng)
    kernel_fn = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))[2]
    k64 = kernel_fn(x1, x2, get="ntk")
    jax.config.update("jax_enable_x64", False)
    try:
        k32 = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))[2](x1, x2, get="ntk")
    finally:
        jax.config.update("jax_enable_x64", True)
    assert k64.dtype == np.float64 and k32.dtype == np.float32
    np.testing.assert_allclose(k32, k64, rtol=tol(np.float32))


def test_get_forms_and_jit(rng):
    x1, x2 = _pair(rng)
    kernel_fn = stax.serial(stax.Dense(8, b_std=0.1), stax.Gelu(), stax.Dense(1))[2]
    full = kernel_fn(x1, x2)
    both = kernel_fn(x1, x2, get=("ntk", "nngp"))
    assert type(both).__name__ == "AnalyticKernel" and both._fields == ("ntk", "nngp")
    np.testing.assert_array_equal(both.ntk, full.ntk)
    jitted = jax.jit(kernel_fn, static_argnames="get")
    np.testing.assert_allclose(jitted(x1, x2, get="nngp"), full.nngp, rtol=tol(np.float64))
    same = kernel_fn(x1)
    assert same.cov2 is None and same.nngp.shape == (4, 4)
    np.testing.assert_allclose(np.diag(same.nngp), same.cov1, rtol=tol(np.float64))


# ----------------------------------------------------------------------------------------------
# Convolutions: brute force over explicit patch indices (im2col written with loops here)


def _patch_index(size, k, s, padding):
    """For each output position, the k input indices its window reads (-1: zero padding)."""
    if padding == "VALID":
        lo, n_out = 0, (size - k) // s + 1
    else:
        n_out = -(-size // s)
        total = max((n_out - 1) * s + k - size, 0)
        lo = total // 2
    idx = np.empty((n_out, k), int)
    for p in range(n_out):
        for f in range(k):
            j = s * p + f - lo
            if padding == "CIRCULAR":
                j %= size
            elif not 0 <= j < size:
                j = -1
            idx[p, f] = j
    return idx


def _np_conv_cov(K, k, s, padding, w, b):
    """W^2 mean_f K[idx(p, f), idx(p', f)] + b^2 for a (N1, N2, H, H) covariance."""
    idx = _patch_index(K.shape[-1], k, s, padding)
    n_out = idx.shape[0]
    out = np.zeros(K.shape[:2] + (n_out, n_out))
    for p in range(n_out):
        for q in range(n_out):
            for f in range(k):
                i, j = idx[p, f], idx[q, f]
                if i >= 0 and j >= 0:
                    out[:, :, p, q] += K[:, :, i, j] / k
    return w ** 2 * out + b ** 2


def _np_relu(K, v1, v2):
    norm = np.sqrt(v1 * v2)
    theta = np.arccos(np.clip(K / norm, -1, 1))
    return norm * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi), \
        (np.pi - theta) / (2 * np.pi)


@pytest.mark.parametrize("padding", ["VALID", "SAME", "CIRCULAR"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv1d_relu_network_matches_brute_force(rng, padding, stride):
    x1, x2 = rng.normal(size=(3, 9, 2)), rng.normal(size=(2, 9, 2))
    w, b, k = 1.3, 0.2, 3
    layers = [stax.Conv(8, (k,), strides=(stride,), padding=padding, W_std=w, b_std=b),
              stax.Relu(), stax.Conv(8, (k,), padding=padding, W_std=w, b_std=b)]
    got = stax.serial(*layers)[2](x1, x2)  # full spatial layout (N1, N2, H, H)

    xs = np.concatenate([x1, x2])  # all pairs at once, then slice the cross block
    K0 = np.einsum("ipc,jqc->ijpq", xs, xs) / xs.shape[-1]
    K1 = _np_conv_cov(K0, k, stride, padding, w, b)
    T1 = K1.copy()
    var = np.einsum("iipp->ip", K1)
    v1, v2 = var[:, None, :, None], var[None, :, None, :]
    R, dot = _np_relu(K1, v1, v2)
    K2 = _np_conv_cov(R, k, 1, padding, w, b)
    T2 = K2 + _np_conv_cov(T1 * dot, k, 1, padding, w, 0.0)
    np.testing.assert_allclose(got.nngp, K2[:3, 3:], rtol=tol(np.float64))
    np.testing.assert_allclose(got.ntk, T2[:3, 3:], rtol=tol(np.float64))
    np.testing.assert_allclose(got.cov1, np.einsum("iipq->ipq", K2)[:3], rtol=tol(np.float64))

    # readouts: Flatten (computed on the spatial diagonal only) and GlobalAvgPool (full)
    flat = stax.serial(*layers, stax.Flatten())[2](x1, x2)
    pool = stax.serial(*layers, stax.GlobalAvgPool())[2](x1, x2)
    np.testing.assert_allclose(flat.ntk, np.einsum("ijpp->ij", T2[:3, 3:]) / T2.shape[-1],
                               rtol=tol(np.float64))
    np.testing.assert_allclose(pool.nngp, K2[:3, 3:].mean(axis=(2, 3)), rtol=tol(np.float64))


def test_conv2d_linear_kernel_is_patch_inner_product(rng):
    """One 2-D conv on inputs: NNGP(p, p') = W^2 <patch_p(x), patch_p'(x')> / (C |F|) + b^2."""
    x1, x2 = rng.normal(size=(2, 5, 4, 3)), rng.normal(size=(3, 5, 4, 3))
    w, b = 0.9, 0.3
    got = stax.Conv(4, (3, 2), padding="SAME", W_std=w, b_std=b)[2](x1, x2)
    ih, iw = _patch_index(5, 3, 1, "SAME"), _patch_index(4, 2, 1, "SAME")

    def patches(x):
        xp = np.concatenate([x, np.zeros_like(x[:, :1])], axis=1)  # index -1 -> zeros
        xp = np.concatenate([xp, np.zeros_like(xp[:, :, :1])], axis=2)
        return xp[:, ih[:, None, :, None], iw[None, :, None, :], :]  # (N, H, W, 3, 2, C)

    p1, p2 = patches(x1), patches(x2)
    expect = w ** 2 * np.einsum("iabfgc,jdefgc->ijadbe", p1, p2) / (3 * 3 * 2) + b ** 2
    assert got.nngp.shape == (2, 3, 5, 5, 4, 4)
    np.testing.assert_allclose(got.nngp, expect, rtol=tol(np.float64))


def test_self_kernel_diagonal_is_exact_at_theta_zero(rng):
    """x2=None: ReLU at theta=0 gives exactly q/2 and relu'(.)^2 = 1/2 (no sqrt(eps) noise)."""
    x = rng.normal(size=(50, 7)) * 3.0
    k = stax.serial(stax.Dense(4, W_std=1.1), stax.Relu())[2](x)
    q = 1.1 ** 2 * np.sum(x ** 2, axis=1) / 7
    np.testing.assert_allclose(np.diag(k.nngp), q / 2, rtol=1e-14)
    np.testing.assert_allclose(np.diag(k.ntk), q / 2, rtol=1e-14)
