"""Streamed fresh-draw Monte-Carlo: each trial equals the direct MLFT solve (predict.mlft_predict
on the same draws), trials reproduce, bad input is named."""

import jax
import numpy as np
import pytest

from ntk_mlft.architectures import get_architecture
from ntk_mlft.estimators.streamed_montecarlo import streamed_montecarlo
from ntk_mlft.predict.multilevel import mlft_predict


def _draw(rng, level, n):
    x = rng.normal(size=(n, 3))
    y = np.sin(2 * x[:, :1]) + (level - 1) * 0.3 * np.cos(3 * x[:, 1:2] * x[:, :1])
    return x, y


def test_trials_equal_direct_solve():
    net = get_architecture("mlp-relu-3", output_dim=1)
    counts = np.array([[0, 30], [50, 20]])
    lam = np.array([1e-3, 1e-2])
    res = streamed_montecarlo(net.kernel_fn, _draw, counts, ridge=lam, n_trials=2, n_test=40,
                              block=16, seed=5)
    for a, alloc in enumerate(counts):
        for t in range(2):                      # replay the trial's draws, solve directly
            rng = np.random.default_rng([5, t, a])
            xs, ys = [], []
            for lvl in range(2):
                if alloc[lvl]:
                    x, y = _draw(rng, lvl + 1, int(alloc[lvl]))
                    xs.append(x)
                    ys.append(y)
            x_test, u_test = _draw(rng, 2, 40)
            with jax.enable_x64(True):
                f = mlft_predict(net.kernel_fn, xs, ys, x_test,
                                 ridge=list(lam[counts[a] > 0]))
            direct = np.sum((f - u_test) ** 2) / np.sum(u_test ** 2)
            assert res.per_trial[a, t] == pytest.approx(direct, rel=1e-6)
    assert np.all(res.stderr > 0) and res.mean == pytest.approx(res.per_trial.mean(1))


def test_bad_input_named():
    net = get_architecture("mlp-relu-3", output_dim=1)
    with pytest.raises(ValueError, match="ridge must be > 0"):
        streamed_montecarlo(net.kernel_fn, _draw, [[0, 10]], ridge=0.0)
    with pytest.raises(ValueError, match=r"needs 3\.\d GB.*memory_limit"):
        streamed_montecarlo(net.kernel_fn, _draw, [[20000, 10]], ridge=1.0, memory_limit=1e9)
    with pytest.raises(ValueError, match="finest level"):
        streamed_montecarlo(net.kernel_fn, _draw, [[10, 0]], ridge=1.0)
