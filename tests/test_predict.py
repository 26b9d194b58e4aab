"""predict: gradient-flow predictions vs an independent ODE integration (scipy solve_ivp) and
the matrix exponential; ensemble mean/covariance vs Monte-Carlo over sampled initialisations."""

from collections import namedtuple

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from ntk_mlft.predict import gradient_descent_mse, gradient_descent_mse_ensemble


def _rbf(a, b, ell=0.7):
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return np.exp(-0.5 * d / ell**2)


def _arccos(a, b):
    """Degree-1 arc-cosine kernel (ReLU NNGP of one hidden layer), plus bias."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    c = np.clip(a @ b.T / np.outer(na, nb), -1, 1)
    th = np.arccos(c)
    return np.outer(na, nb) * (np.sin(th) + (np.pi - th) * c) / np.pi + 0.1


@pytest.fixture
def data(rng):
    x = rng.normal(size=(12, 3))
    xt = rng.normal(size=(5, 3))
    y = np.sin(x @ np.array([1.0, -0.5, 0.3]))[:, None] * np.array([1.0, 2.0])
    return x, xt, y


@pytest.mark.parametrize("diag_reg", [0.0, 0.1])
def test_finite_time_matches_ode(data, diag_reg):
    x, xt, y = data
    k, kt = _arccos(x, x), _arccos(xt, x)
    lr = 0.7
    n = k.shape[0]
    lam = diag_reg * np.trace(k) / n
    f0, ft0 = 0.3 * np.ones_like(y), -0.2 * np.ones((5, 2))

    def rhs(_, z):
        f = z[: y.size].reshape(y.shape)
        g = -(lr / y.size) * ((k + lam * np.eye(n)) @ (f - y))
        gt = -(lr / y.size) * (kt @ (f - y))
        return np.concatenate([g.ravel(), gt.ravel()])

    times = np.array([0.5, 7.0, 40.0])
    sol = solve_ivp(rhs, (0, times[-1]), np.concatenate([f0.ravel(), ft0.ravel()]),
                    t_eval=times, rtol=1e-11, atol=1e-12, method="DOP853")
    pred = gradient_descent_mse(k, y, lr, diag_reg=diag_reg)
    tr, te = pred(times, f0, ft0, kt)
    assert tr.shape == (3, 12, 2) and te.shape == (3, 5, 2)
    for i in range(3):
        np.testing.assert_allclose(tr[i].ravel(), sol.y[: y.size, i], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(te[i].ravel(), sol.y[y.size:, i], rtol=1e-7, atol=1e-9)


def test_infinite_time_is_kernel_ridge_and_expm_limit(data):
    x, xt, y = data
    k, kt = _rbf(x, x), _rbf(xt, x)
    pred = gradient_descent_mse(k, y, diag_reg=1e-3, diag_reg_absolute_scale=True)
    te = pred(None, None, np.zeros((5, 2)), kt)
    direct = kt @ np.linalg.solve(k + 1e-3 * np.eye(12), y)
    np.testing.assert_allclose(te, direct, rtol=1e-9, atol=1e-10)
    # matrix-exponential formula at finite t (independent of the eigenbasis code)
    t = 3.0
    kr = k + 1e-3 * np.eye(12)
    m = np.linalg.solve(kr, np.eye(12) - expm(-t * kr / y.size))
    te_t = pred(t, None, np.zeros((5, 2)), kt)
    np.testing.assert_allclose(te_t, kt @ m @ y, rtol=1e-8, atol=1e-10)
    assert np.allclose(pred(None), y)


def test_duplicated_inputs_ridgeless_give_min_norm_interpolant(data):
    x, xt, y = data
    x2 = np.concatenate([x, x[:3]])
    y2 = np.concatenate([y, y[:3]])
    k, kt = _rbf(x2, x2), _rbf(xt, x2)
    te = gradient_descent_mse(k, y2)(None, None, np.zeros((5, 2)), kt)
    ref = _rbf(xt, x) @ np.linalg.solve(_rbf(x, x), y)
    np.testing.assert_allclose(te, ref, rtol=1e-5, atol=1e-6)


def test_infinite_time_on_a_singular_kernel(data):
    """t = inf (as a number) on a singular kernel (duplicated inputs): no inf * 0, same answer as
    t = None and as a very long finite time (null modes neither move nor contribute)."""
    x, xt, y = data
    x2, y2 = np.concatenate([x, x[:3]]), np.concatenate([y, y[:3]])
    k, kt = _rbf(x2, x2), _rbf(xt, x2)
    assert np.linalg.eigvalsh(k).min() < 1e-12 * np.linalg.eigvalsh(k).max()
    pred = gradient_descent_mse(k, y2)
    tr_inf, te_inf = pred(np.inf, 0.0, np.zeros((5, 2)), kt)
    assert np.all(np.isfinite(tr_inf)) and np.all(np.isfinite(te_inf))
    np.testing.assert_allclose(te_inf, pred(None, None, np.zeros((5, 2)), kt), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(tr_inf, y2, rtol=1e-8, atol=1e-10)
    _, te_long = pred(1e15, 0.0, np.zeros((5, 2)), kt)
    np.testing.assert_allclose(te_inf, te_long, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="t must be >= 0"):
        pred(np.nan, 0.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        pred(-np.inf, 0.0)


def test_bad_inputs(data):
    x, _, y = data
    k = _rbf(x, x)
    with pytest.raises(ValueError, match="smallest eigenvalue"):
        gradient_descent_mse(k - 2 * np.eye(12), y)
    with pytest.raises(ValueError, match="k_train_train"):
        gradient_descent_mse(k[:5, :5], y)
    bad = y.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="y_train"):
        gradient_descent_mse(k, bad)
    with pytest.raises(ValueError, match="k_test_train"):
        gradient_descent_mse(k, y)(None, 0.0, np.zeros((5, 2)))


Kern = namedtuple("Kern", ["nngp", "ntk"])


def _kernel_fn(x1, x2=None, get=None):
    x2 = x1 if x2 is None else x2
    nngp = _arccos(x1, x2)
    ntk = nngp + 0.5 * _rbf(x1, x2)
    if isinstance(get, str):
        return {"nngp": nngp, "ntk": ntk}[get]
    return Kern(nngp, ntk)


@pytest.mark.parametrize("t", [None, 2.0])
def test_ensemble_matches_sampling_initialisations(data, t):
    """Sample f_0 ~ GP(0, K_nngp) jointly on train+test, run the linearised flow, compare."""
    x, xt, y = data
    ens = gradient_descent_mse_ensemble(_kernel_fn, x, y[:, :1], learning_rate=1.0)
    z = np.concatenate([x, xt])
    kz = _kernel_fn(z, z)
    rng = np.random.default_rng(1)
    chol = np.linalg.cholesky(kz.nngp + 1e-10 * np.eye(len(z)))
    f0 = chol @ rng.normal(size=(len(z), 4000))                     # 4000 initialisations
    for get in ("ntk", "nngp"):
        theta = getattr(kz, get)
        k, kt = theta[:12, :12], theta[12:, :12]
        pred = gradient_descent_mse(k, y[:, 0], 1.0)
        outs = np.stack([pred(t, f0[:12, i], f0[12:, i], kt)[1] for i in range(4000)])
        g = ens(t, xt, get=get, compute_cov=True)
        # mean: exact (f0 mean zero enters linearly) -> compare with the zero-init prediction
        np.testing.assert_allclose(g.mean[:, 0], pred(t, 0.0, np.zeros(5), kt)[1], rtol=1e-9)
        cov_mc = np.cov((outs - outs.mean(0)).T)
        np.testing.assert_allclose(g.covariance, cov_mc, atol=0.08 * np.abs(g.covariance).max())
