"""Monte-Carlo reference: exact cases where the sampled sets are forced (whole pool) compared
with ``multilevel.chained_regression``; statistical agreement with a plain loop over draws (with
and without label noise, whole-pool and held-out test sets, independent and disjoint level
sets); bad inputs."""

import numpy as np
import pytest

from ntk_mlft.estimators.montecarlo import montecarlo_error
from ntk_mlft.predict.multilevel import chained_regression


def _setup(rng, n=40):
    x = rng.uniform(-1, 1, size=(n, 2))
    k = np.exp(-2.0 * ((x[:, None] - x[None]) ** 2).sum(-1))
    u1 = np.sin(3 * x[:, :1])
    return k, np.stack([u1 + 0.2 * x[:, 1:], u1])


def test_whole_pool_levels_match_chained_regression(rng):
    k, u = _setup(rng)
    n = k.shape[0]
    all_idx = np.arange(n)
    for ridge in (0.05, [0.3, 0.01], 0.0):
        res = montecarlo_error(k, u, [n, n], ridge=ridge, n_trials=3)
        f = chained_regression(k, [all_idx, all_idx], [u[0], u[1]], ridge=ridge)
        ref = np.sum((f - u[1]) ** 2) / np.sum(u[1] ** 2)
        np.testing.assert_allclose(res.per_trial, ref, rtol=1e-8, atol=1e-14)
        assert res.stderr[0] < 1e-8 * max(ref, 1e-300) + 1e-14


def _loop(k, u, alloc, ridge, noise, draws, held_out, seed, disjoint=False):
    """Plain reference: one chained regression per draw, errors measured the slow way."""
    rng = np.random.default_rng(seed)
    n = k.shape[0]
    errs = []
    for _ in range(draws):
        if disjoint:
            perm, ends = rng.permutation(n), np.cumsum(alloc)
            sets = [perm[e - a:e] for a, e in zip(alloc, ends)]
        else:
            sets = [rng.choice(n, a, replace=False) for a in alloc]
        ys = [u[i][s] + np.sqrt(noise) * rng.normal(size=u[i][s].shape) for i, s in enumerate(sets)]
        f = chained_regression(k, sets, ys, ridge=ridge)
        test = np.setdiff1d(np.arange(n), np.concatenate(sets)) if held_out else np.arange(n)
        errs.append(np.sum((f[test] - u[-1][test]) ** 2) / np.sum(u[-1][test] ** 2))
    return np.mean(errs), np.std(errs) / np.sqrt(draws)


@pytest.mark.parametrize("noise, held_out, sets", [(0.0, False, "independent"), (0.05, False, "independent"),
                                                   (0.0, True, "independent"), (0.0, True, "disjoint")])
def test_mean_agrees_with_plain_loop(rng, noise, held_out, sets):
    k, u = _setup(rng)
    allocs = [[12, 6], [0, 8]]
    res = montecarlo_error(k, u, allocs, ridge=1e-3, noise=noise, n_trials=300, seed=5, sets=sets)
    got, got_se = (res.fresh_mean, res.fresh_stderr) if held_out else (res.mean, res.stderr)
    for row, alloc in enumerate(allocs):
        mean, se = _loop(k, u, alloc, 1e-3, noise, 300, held_out, 11 + row, disjoint=sets == "disjoint")
        assert abs(mean - got[row]) < 4 * np.hypot(se, got_se[row]), (alloc, mean, got[row])
    if noise:
        clean = montecarlo_error(k, u, allocs, ridge=1e-3, n_trials=300, seed=5)
        assert np.all(res.mean > clean.mean)


def test_disjoint_sets_share_no_point(rng):
    """Two levels of 20 on a 40-point pool: disjoint sets cover it, so no point is left for the
    fresh-input error in any trial (NaN); independent sets overlap and leave points uncovered."""
    k, u = _setup(rng)
    res = montecarlo_error(k, u, [20, 20], n_trials=5, sets="disjoint")
    assert np.all(np.isnan(res.fresh_per_trial))
    ind = montecarlo_error(k, u, [20, 20], n_trials=5)
    assert np.all(np.isfinite(ind.fresh_per_trial))


def test_held_out_exceeds_pool_error_when_training_points_are_fitted(rng):
    """Ridge-less interpolation: training points carry no error, so the whole-pool error is the
    held-out error times the held-out fraction (finest level = all levels' union here)."""
    k, u = _setup(rng)
    res = montecarlo_error(k, u[1:], [[20]], n_trials=50, seed=1)
    ratio = res.per_trial[0] / res.fresh_per_trial[0]
    power = np.sum(u[1] ** 2, axis=1)
    assert np.all(ratio < 1)
    # per trial: pool error = sum over held-out errors / total power
    # = held-out error * (held-out power / total power), bounded by the extreme powers
    lo, hi = np.sort(power)[:20].sum() / power.sum(), np.sort(power)[-20:].sum() / power.sum()
    assert np.all((ratio >= lo - 1e-12) & (ratio <= hi + 1e-12))


def test_bad_inputs(rng):
    k, u = _setup(rng)
    with pytest.raises(ValueError, match="smallest eigenvalue"):
        montecarlo_error(k - 0.5 * np.eye(40), u, [5, 5])
    with pytest.raises(ValueError, match="symmetric"):
        montecarlo_error(k + np.triu(np.ones((40, 40)), 1), u, [5, 5])
    with pytest.raises(ValueError, match="pool size 40"):
        montecarlo_error(k, u, [41, 5])
    with pytest.raises(ValueError, match="finest level"):
        montecarlo_error(k, u, [5, 0])
    with pytest.raises(ValueError, match="non-negative integers"):
        montecarlo_error(k, u, [5.5, 3])
    with pytest.raises(ValueError, match="ridge"):
        montecarlo_error(k, u, [5, 5], ridge=np.nan)
    with pytest.raises(ValueError, match="noise"):
        montecarlo_error(k, u, [5, 5], noise=[0.1, -0.1])
    assert np.isnan(montecarlo_error(k, u, [40, 40], n_trials=2).fresh_mean[0])   # none left
    with pytest.raises(ValueError, match="identically zero"):
        montecarlo_error(k, 0 * u, [5, 5])
    with pytest.raises(ValueError, match="same shape"):
        montecarlo_error(k, [u[0], u[1][:5]], [5, 5])
    with pytest.raises(ValueError, match="sets"):
        montecarlo_error(k, u, [5, 5], sets="overlapping")
    with pytest.raises(ValueError, match="disjoint sets need sum_l N_l <= the pool size 40"):
        montecarlo_error(k, u, [30, 20], sets="disjoint")


def test_constant_target_is_allowed(rng):
    """Relative MSE divides by sum ||u_L||^2, so a constant non-zero target (zero variance) is a
    valid, easily learned target for both the reference and the closed form."""
    from ntk_mlft.estimators.spectral import SpectralEstimator

    k, _ = _setup(rng)
    u = np.full((1, 40, 1), 2.0)
    mc = montecarlo_error(k, u, [[5], [20]], ridge=1e-3, n_trials=20)
    sp = SpectralEstimator.from_kernel(k, u, ridge=1e-3).error_many([[5], [20]])
    assert np.all(np.isfinite(mc.mean)) and np.all(mc.mean < 0.5) and mc.mean[1] < mc.mean[0]
    assert np.all(np.isfinite(sp)) and np.all((sp > 0) & (sp < 0.5)) and sp[1] < sp[0]
