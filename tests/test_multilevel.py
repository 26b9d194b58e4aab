"""multilevel: chained residual regression vs the closed-form operator product of docs/design.md,
e_L = -sum_l (I - P_L)...(I - P_l) d_l, built independently from dense regression matrices."""

import numpy as np
import pytest

from ntk_mlft.predict.multilevel import chained_regression, mlft_predict


def _rbf(a, b, ell=0.5):
    return np.exp(-0.5 * ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / ell**2)


def _kernel_fn(x1, x2=None, get="ntk"):
    return _rbf(x1, x1 if x2 is None else x2)


@pytest.mark.parametrize("ridge", [1e-3, [1e-2, 1e-3, 0.0]])
def test_chained_equals_operator_product(rng, ridge):
    n = 60
    x = rng.uniform(-1, 1, size=(n, 2))
    k = _rbf(x, x) + 1e-9 * np.eye(n)
    u = [np.sin(3 * x[:, 0]) + c * np.cos(5 * x @ np.ones(2)) for c in (0.3, 0.1, 0.0)]
    d = [u[0], u[1] - u[0], u[2] - u[1]]
    sets = [rng.choice(n, 25, replace=False), rng.choice(n, 12, replace=False),
            rng.choice(n, 6, replace=False)]
    lams = ridge if isinstance(ridge, list) else [ridge] * 3
    f = chained_regression(k, sets, [u[i][s] for i, s in enumerate(sets)], ridge=ridge)
    # P_l g = K[:, S] (K[S, S] + lam I)^-1 g[S]: an (n, n) matrix acting on functions on the pool
    ps = []
    for s, lam in zip(sets, lams):
        p = np.zeros((n, n))
        p[:, s] = k[:, s] @ np.linalg.inv(k[np.ix_(s, s)] + lam * np.eye(len(s)))
        ps.append(p)
    e = np.zeros(n)
    for lvl in range(3):
        op = np.eye(n)
        for m in range(lvl, 3):
            op = (np.eye(n) - ps[m]) @ op
        e -= op @ d[lvl]
    np.testing.assert_allclose(f - u[2], e, atol=1e-7)


def test_finite_time_and_skipped_level(rng):
    x = rng.uniform(-1, 1, size=(30, 2))
    k = _rbf(x, x)
    y = np.stack([x[:, 0], x[:, 1] ** 2], axis=1)
    s1, s3 = np.arange(10), np.arange(10, 20)
    empty = np.arange(0)
    f_skip = chained_regression(k, [s1, empty, s3], [y[s1], y[empty], y[s3]], ridge=1e-2,
                                times=[5.0, None, 50.0])
    f_two = chained_regression(k, [s1, s3], [y[s1], y[s3]], ridge=1e-2, times=[5.0, 50.0])
    np.testing.assert_allclose(f_skip, f_two, rtol=1e-12)
    # a single level at t -> large equals t = None
    a = chained_regression(k, [s1], [y[s1]], ridge=1e-2, times=[1e7])
    b = chained_regression(k, [s1], [y[s1]], ridge=1e-2)
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_mlft_predict_from_kernel_fn(rng):
    xs = [rng.uniform(-1, 1, size=(n, 2)) for n in (20, 8)]
    g = [lambda z: np.sin(2 * z[:, 0]), lambda z: np.sin(2 * z[:, 0]) + 0.1 * z[:, 1]]
    ys = [g[0](xs[0]), g[1](xs[1])]
    xt = rng.uniform(-1, 1, size=(7, 2))
    f = mlft_predict(_kernel_fn, xs, ys, xt, ridge=1e-4)
    k1 = _rbf(xs[0], xs[0]) + 1e-4 * np.eye(20)
    f1 = lambda z: _rbf(z, xs[0]) @ np.linalg.solve(k1, ys[0])  # noqa: E731
    r = ys[1] - f1(xs[1])
    ref = f1(xt) + _rbf(xt, xs[1]) @ np.linalg.solve(_rbf(xs[1], xs[1]) + 1e-4 * np.eye(8), r)
    np.testing.assert_allclose(f, ref, rtol=1e-9, atol=1e-10)


def test_bad_inputs(rng):
    k = np.eye(5)
    with pytest.raises(ValueError, match="output shape"):
        chained_regression(k, [[0, 1], [2]], [np.zeros(2), np.zeros((1, 2))])
    with pytest.raises(ValueError, match="ridge"):
        chained_regression(k, [[0], [1]], [np.zeros(1), np.zeros(1)], ridge=[0.1])
    with pytest.raises(ValueError, match="index_sets"):
        chained_regression(k, [[0, 9]], [np.zeros(2)])
