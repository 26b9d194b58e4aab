"""Monte-Carlo reference: exact cases where the sampled sets are forced (whole pool) compared
with ``multilevel.chained_regression``; statistical agreement with a plain loop over draws."""

import numpy as np

from ntk_mlft.estimators.montecarlo import montecarlo_error
from ntk_mlft.multilevel import chained_regression


def _setup(rng, n=40):
    x = rng.uniform(-1, 1, size=(n, 2))
    k = np.exp(-2.0 * ((x[:, None] - x[None]) ** 2).sum(-1))
    u1 = np.sin(3 * x[:, :1])
    return k, np.stack([u1 + 0.2 * x[:, 1:], u1])


def test_whole_pool_levels_match_chained_regression(rng):
    k, u = _setup(rng)
    n = k.shape[0]
    all_idx = np.arange(n)
    for ridge in (0.05, [0.3, 0.01]):
        res = montecarlo_error(k, u, [n, n], ridge=ridge, n_trials=3)
        f = chained_regression(k, [all_idx, all_idx], [u[0], u[1]], ridge=ridge)
        ref = np.sum((f - u[1]) ** 2) / np.sum(u[1] ** 2)
        np.testing.assert_allclose(res.per_trial, ref, rtol=1e-9)
        assert res.stderr[0] < 1e-9 * max(ref, 1e-300) + 1e-14


def test_mean_agrees_with_plain_loop(rng):
    k, u = _setup(rng)
    res = montecarlo_error(k, u, [[12, 6], [0, 8]], ridge=1e-3, n_trials=200, seed=5)
    draw = np.random.default_rng(11)
    for row, alloc in enumerate([[12, 6], [0, 8]]):
        errs = []
        for _ in range(200):
            sets = [draw.choice(40, a, replace=False) for a in alloc]
            f = chained_regression(k, sets, [u[i][s] for i, s in enumerate(sets)], ridge=1e-3)
            errs.append(np.sum((f - u[1]) ** 2) / np.sum(u[1] ** 2))
        se = np.hypot(np.std(errs) / np.sqrt(200), res.stderr[row])
        assert abs(np.mean(errs) - res.mean[row]) < 4 * se
