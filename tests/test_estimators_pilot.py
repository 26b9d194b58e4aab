"""Practical pilot estimator: exact identity when the pilot is the whole pool; accuracy and
interval coverage of the fresh-input prediction against the Monte-Carlo fresh-input error on an
independent labelled pool over pilot draws (each draw: its own 200 pilot pairs + 1,000
unlabeled inputs; counts up to the cap 0.2 x 1,200); strictly positive predictions; tail
diagnostics; pilot files; bad inputs."""

import numpy as np
import pytest

from ntk_mlft.architectures import get_architecture
from ntk_mlft.estimators._modes import hat_matrix, knot_grid, projected_gram
from ntk_mlft.estimators.montecarlo import montecarlo_error
from ntk_mlft.estimators.pilot import Pilot, PilotEstimator, load_pilot, save_pilot
from ntk_mlft.estimators.spectral import SpectralEstimator

COUNTS = np.array([[0, 0, 20], [0, 0, 100], [200, 60, 20], [240, 240, 40]])
N_PILOT, N_UNLABELED = 200, 1000


def _target(x):
    z = x[:, :, 0]
    base = np.sin(4 * z[:, 0]) * np.cos(2 * z[:, 4]) + np.sin(1.5 * z.mean(1) + z[:, 0])
    return np.stack([base + 0.3 * np.cos(2 * z[:, 1]), base + 0.1 * np.sin(3 * z[:, 5]),
                     base])[:, :, None]


@pytest.fixture(scope="module")
def reference():
    """Independent labelled pool of the same size as the estimator's (pilot + unlabeled), MC on it."""
    arch = get_architecture("mlp-relu-3", output_dim=1)
    x = np.random.default_rng(0).normal(size=(N_PILOT + N_UNLABELED, 16, 1))
    k = np.asarray(arch.kernel_fn(x, None, get="ntk"))
    ridge = 1e-3 * np.mean(np.diag(k))
    mc = montecarlo_error(k, _target(x), COUNTS, ridge=ridge, n_trials=40, seed=3, sets="disjoint")
    return arch, ridge, mc.fresh_mean


def _draw(arch, ridge, draw, n_boot=30):
    """Pilot draw ``draw``: fresh inputs (pilot and unlabeled), only the pilot labelled."""
    x = np.random.default_rng(1000 + draw).normal(size=(N_PILOT + N_UNLABELED, 16, 1))
    k = np.asarray(arch.kernel_fn(x, None, get="ntk"))
    p, un = np.arange(N_PILOT), np.arange(N_PILOT, N_PILOT + N_UNLABELED)
    est = PilotEstimator.from_kernels(k[np.ix_(un, un)], k[np.ix_(p, un)], _target(x)[:, p],
                                      k_pp=k[np.ix_(p, p)], ridge=ridge, n_boot=n_boot, seed=1)
    return est, est.error_with_uncertainty(COUNTS, level=0.9)


def test_pilot_within_25_percent_and_interval_covers(reference):
    """One draw (measured deviations from the reference MC fresh-input error: [-1.8 +0.0 -0.2 -2.2]%)."""
    arch, ridge, mc = reference
    est, r = _draw(arch, ridge, 3, n_boot=20)
    assert np.all(np.abs(r["error"] / mc - 1) < 0.25), r["error"] / mc - 1
    assert np.all((r["lower"] <= mc) & (mc <= r["upper"])), (r, mc)
    assert np.all(r["std"] > 0) and np.all(r["lower"] >= 0)
    assert est.pool_size == N_PILOT + N_UNLABELED
    assert est.error(COUNTS[2]) == pytest.approx(r["error"][2])


@pytest.mark.slow
def test_pilot_bias_spread_and_coverage_over_draws(reference):
    """Eight draws. Claim: within 25% of MC in every draw for allocations with all N_l <= n_p / 2;
    median |deviation| below 15% for every allocation up to N_1 = 1.2 n_p (the cap; measured
    medians 2.6, 5.2, 6.9, 7.2%; single draws reach +22.5% at N_1 = n_p and +24.8% at 1.2 n_p: the
    spread grows with N / n_p); the 90% bootstrap interval covers MC in at least 7 of 8 draws per
    allocation (measured: 8 of 8 everywhere)."""
    arch, ridge, mc = reference
    rel, cover = [], []
    for draw in range(8):
        _, r = _draw(arch, ridge, draw)
        rel.append(r["error"] / mc - 1)
        cover.append((r["lower"] <= mc) & (mc <= r["upper"]))
    rel, cover = np.array(rel), np.array(cover)
    assert np.all(np.abs(rel[:, :2]) < 0.25), np.round(rel, 3)
    assert np.all(np.median(np.abs(rel), axis=0) < 0.15), np.round(rel, 3)
    assert np.all(cover.sum(0) >= 7), (cover, np.round(rel, 3))


def test_pilot_equal_to_pool_is_exact(rng):
    """Pilot = the whole pool (no unlabeled inputs): pair statistics and the regression are
    exact, so with one mode per band the cross powers equal the pool's and the knot Gram equals
    H (W o t t^T) H^T built here from the pool; errors match ``from_kernel`` up to the knot
    interpolation."""
    x = rng.normal(size=(80, 3))
    k = np.exp(-0.5 * ((x[:, None] - x[None]) ** 2).sum(-1)) * np.outer(1 + x[:, 0] ** 2, 1 + x[:, 0] ** 2)
    u = np.stack([np.sin(x[:, 0]), np.sin(x[:, 0]) + 0.3 * np.cos(2 * x[:, 1])])[:, :, None]
    est = PilotEstimator.from_kernels(np.zeros((0, 0)), np.zeros((80, 0)), u, k_pp=k, ridge=1e-3,
                                      band_ratio=1.0001, n_boot=2).estimate
    omega = np.diag(k) / np.mean(np.diag(k))
    evals, vecs = np.linalg.eigh(k / np.sqrt(np.outer(omega, omega)))
    evals = np.where(evals > 1e-12 * evals.max(), evals, 0.0)          # _linalg.RCOND
    eta, vecs = evals[::-1] / 80, vecs[:, ::-1]
    d = np.concatenate([u[:1], np.diff(u, axis=0)]) / np.sqrt(omega)[None, :, None]
    t = np.einsum("xp,lxd->lpd", vecs, d) / np.sqrt(80)
    knots = knot_grid(eta, 2.0)
    gram = projected_gram((vecs * omega[:, None]).T @ vecs, t, hat_matrix(eta, knots))
    np.testing.assert_allclose(est.knots, knots, rtol=1e-10)
    np.testing.assert_allclose(est.gram, gram, rtol=1e-8, atol=1e-12 * np.abs(gram).max())
    np.testing.assert_allclose(est.cross.sum(-1), np.einsum("jpd,kpd->jk", t, t), rtol=1e-10)
    exact = SpectralEstimator.from_kernel(k, u, ridge=1e-3)
    counts = [[0, 10], [20, 10], [40, 20]]
    np.testing.assert_allclose(est.error_many(counts), exact.error_many(counts), rtol=0.02)


@pytest.mark.parametrize("seed", [0, 11, 17])
@pytest.mark.parametrize("normalize", ["diagonal", "none"])
def test_prediction_strictly_positive_with_noisy_mode_powers(seed, normalize):
    """20 pilot pairs, a tiny second level: single-mode power estimates are mostly noise (an
    old estimator predicted -2.0, -3.5, -5.5 here); the projections keep every replicate > 0 with
    PSD band powers and Gram. (Accuracy is not claimed at counts above n_p = 20.)"""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(90, 3))
    k = np.exp(-0.5 * ((x[:, None] - x[None]) ** 2).sum(-1))
    y = np.stack([np.sin(x[:, 0]), np.sin(x[:, 0]) + 0.05 * np.cos(3 * x[:, 1])])
    p, un = np.arange(20), np.arange(20, 90)
    counts = [[0, 30], [30, 30], [60, 30], [30, 10]]
    est = PilotEstimator.from_kernels(k[np.ix_(un, un)], k[np.ix_(p, un)], y[:, p], ridge=1e-6,
                                      k_pp=k[np.ix_(p, p)], n_boot=5, normalize=normalize)
    for model in (est.estimate, *est.replicates):
        assert np.all(model.error_many(counts) > 0)
        c = model.cross
        assert np.all(np.linalg.eigvalsh(np.moveaxis(0.5 * (c + c.transpose(1, 0, 2)), -1, 0))
                      >= -1e-12 * np.abs(c).max())
        if model.gram is not None:
            g = np.moveaxis(model.gram, 2, 1).reshape(2 * model.knots.size, -1)
            assert np.linalg.eigvalsh(g).min() >= -1e-10 * np.abs(g).max()


def test_tail_diagnostics(rng):
    """A smooth target's power is resolved by 150 pilot pairs; a discontinuous one leaves a tail,
    larger with 15 pairs than with 150."""
    x = rng.normal(size=(400, 2))
    k = np.exp(-0.5 * ((x[:, None] - x[None]) ** 2).sum(-1)) + 0.2 * np.exp(
        -np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)))
    un = np.arange(150, 400)
    smooth, rough = np.sin(x[:, 0])[None], np.sign(x[:, 0] * x[:, 1])[None]

    def est(y, n_p):
        p = np.arange(n_p)
        return PilotEstimator.from_kernels(k[np.ix_(un, un)], k[np.ix_(p, un)], y[:, p],
                                           k_pp=k[np.ix_(p, p)], n_boot=8)

    a, big, small = est(smooth, 150), est(rough, 150), est(rough, 15)
    assert a.tail_fraction[0] < 0.1 and a.resolved_rank[0] >= 1
    assert small.tail_fraction[0] > big.tail_fraction[0]
    info = a.diagnostics()
    assert info["pool_size"] == 400 and info["noise_summed_over_outputs"] == [0.0]


def test_pilot_file_round_trip_and_errors(tmp_path, rng):
    x = rng.normal(size=(30, 4, 1))
    ys = [np.sin(x[:, :, 0]), np.cos(x[:, :, 0])]
    xu = rng.normal(size=(50, 4, 1))
    path = save_pilot(tmp_path / "p.npz", x, ys, x_unlabeled=xu)
    p = load_pilot(path)
    assert p.n_levels == 2
    np.testing.assert_array_equal(p.ys[1], ys[1])
    np.testing.assert_array_equal(p.x_unlabeled, xu)
    with pytest.raises(ValueError, match="same shape"):
        save_pilot(tmp_path / "q.npz", x, [ys[0], ys[1][:10]])
    with pytest.raises(ValueError, match="n_p"):
        save_pilot(tmp_path / "q.npz", x[:5], ys)
    np.savez(tmp_path / "bad.npz", x=x)
    with pytest.raises(ValueError, match="y_level1"):
        load_pilot(tmp_path / "bad.npz")


def test_from_pilot_uses_kernel_fn_and_bad_inputs(rng):
    arch = get_architecture("mlp-relu-3", output_dim=1)
    x = rng.normal(size=(40, 6, 1))
    pilot = Pilot(x, np.stack([np.sin(x[:, 0]), np.sin(x[:, 0]) + 0.1 * x[:, 1]]),
                  rng.normal(size=(80, 6, 1)))
    est = PilotEstimator.from_pilot(arch.kernel_fn, pilot, ridge=0.1, n_boot=5)
    assert est.n_levels == 2 and np.isfinite(est.error([10, 5]))
    with pytest.raises(ValueError, match="pool size 120"):
        est.error([200, 5])
    with pytest.raises(ValueError, match="x_unlabeled"):
        PilotEstimator.from_pilot(arch.kernel_fn, Pilot(x, pilot.ys))
    with pytest.raises(ValueError, match="normalize"):
        PilotEstimator.from_pilot(arch.kernel_fn, pilot, normalize="bogus")
    xs = rng.normal(size=(60, 2))
    k = np.exp(-((xs[:, None] - xs[None]) ** 2).sum(-1))
    y = np.stack([np.cos(xs[:, 0]), np.cos(xs[:, 0]) + 0.5 * xs[:, 1]])
    p, un = np.arange(15), np.arange(15, 60)
    args = (k[np.ix_(un, un)], k[np.ix_(p, un)])
    kpp = k[np.ix_(p, p)]
    with pytest.raises(TypeError, match="k_pp"):
        PilotEstimator.from_kernels(*args, y[:, p])                       # k_pp is required
    for kw, msg in (({"band_ratio": 1.0}, "band_ratio"), ({"knot_ratio": 0.5}, "knot_ratio"),
                    ({"n_boot": 1}, "n_boot"), ({"n_regress": 8}, "n_regress"),
                    ({"ridge": np.nan}, "ridge"), ({"noise": -1.0}, "noise")):
        with pytest.raises(ValueError, match=msg):
            PilotEstimator.from_kernels(*args, y[:, p], k_pp=kpp, **kw)
    with pytest.raises(ValueError, match="k_pp"):
        PilotEstimator.from_kernels(*args, y[:, p], k_pp=k[:3, :3])
    with pytest.raises(ValueError, match="smallest eigenvalue"):
        PilotEstimator.from_kernels(*args, y[:, p], k_pp=kpp - 2 * np.eye(15))
    with pytest.raises(ValueError, match="identically zero"):
        PilotEstimator.from_kernels(*args, 0 * y[:, p], k_pp=kpp)
    with pytest.raises(ValueError, match="finite"):
        PilotEstimator.from_kernels(*args, y[:, p] * np.nan, k_pp=kpp)
    with pytest.raises(ValueError, match="k_pu"):
        PilotEstimator.from_kernels(k[np.ix_(un, un)], k[np.ix_(p, un)][:, :5], y[:, p], k_pp=kpp)
