"""Level differences on the DEFAULT input distributions and hierarchies decay at the rates each
module docstring documents: RMS(u_l - u_{l-1}) ~ h_l^q, with q = ``difference_rate`` at the
finest levels and the documented pre-asymptotic rates at the coarse ones. Fixed seeds; the
tolerance (0.3 on each rate) separates, e.g., darcy's 1.15 from its smooth-data order 2 and
burgers' 0.6 from its smooth-data order 1."""

import numpy as np
import pytest

from ntk_mlft.problems import get_problem

TOL = 0.3

# name: (levels, samples, documented rate of each successive pair of differences), from the
# "Level differences" paragraph of each module docstring; the last entry is the asymptotic rate.
DOCUMENTED = {
    # 256..16384 cells at the defaults, plus a 5th level (65536) to reach the asymptotic h^2
    "elliptic-rough": (5, 16, [1.3, 2.8, 2.0]),
    "helmholtz-oscillatory": (4, 16, [2.0, 2.0]),
    "schrodinger-ground-state": (4, 16, [2.0, 2.0]),
    "darcy-2d": (4, 4, [2.0, 1.15]),
}


def _difference_norms(problem, n_samples, seed):
    x = problem.sample_inputs(np.random.default_rng(seed), n_samples)
    ys = [problem.solve(x, level) for level in range(1, problem.n_levels + 1)]
    return np.array([np.sqrt(np.mean((ys[k] - ys[k - 1]) ** 2)) for k in range(1, len(ys))])


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_level_difference_rates_match_documented(name):
    levels, n_samples, expected = DOCUMENTED[name]
    p = get_problem(name, levels=levels)
    assert abs(expected[-1] - p.difference_rate) <= 0.25 # the asymptotic rate is the stored one
    d = _difference_norms(p, n_samples, seed=20)
    rates = np.log(d[:-1] / d[1:]) / np.log(p.refinement)
    assert np.all(np.abs(rates - expected) <= TOL), f"difference norms {d}, rates {rates}, documented {expected}"


def test_burgers_level_differences_follow_the_shock_rate():
    """Burgers' RMS is dominated by the few points near shocks and is noisy pair by pair, so the
    least-squares slope over the default levels is tested (64 samples)."""
    p = get_problem("burgers-shock")
    d = _difference_norms(p, 64, seed=20)
    h = 1.0 / np.array([p.grid(level) for level in range(2, p.n_levels + 1)])
    slope = np.polyfit(np.log(h), np.log(d), 1)[0]
    assert np.all(np.diff(d) < 0), f"difference norms {d} must shrink"
    assert abs(slope - p.difference_rate) <= TOL, f"slope {slope}, documented {p.difference_rate}"
    assert p.difference_rate < p.order - TOL  # shocks: slower than the smooth-data order
