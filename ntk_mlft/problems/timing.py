"""Measured cost tables: wall-clock seconds per sample of each level's solver."""

from __future__ import annotations

import time

import numpy as np

from ntk_mlft._validation import check_positive_int
from ntk_mlft.costs import CostTable
from ntk_mlft.problems._base import Problem

__all__ = ["measure_costs"]


def measure_costs(problem: Problem, repeats: int = 3, n_samples: int = 4, seed: int = 0) -> CostTable:
    """Median over ``repeats`` of the per-sample solve time at each level (after one warm-up solve).

    Each repeat times ``problem.solve`` on the same ``n_samples`` inputs and divides by
    ``n_samples``. Measured costs must be strictly increasing with the level; if they are not
    (the solver is overhead-dominated at these grids, or the machine is busy), a ValueError says
    so and what to change, rather than returning a table that misleads the allocation.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem (see get_problem); got {type(problem).__name__}")
    repeats = check_positive_int("repeats", repeats)
    n_samples = check_positive_int("n_samples", n_samples)
    x = problem.sample_inputs(np.random.default_rng(seed), n_samples)
    costs = []
    for level in range(1, problem.n_levels + 1):
        problem.solve(x[:1], level)  # warm-up: imports, caches, first-call overheads
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            problem.solve(x, level)
            times.append((time.perf_counter() - t0) / n_samples)
        costs.append(float(np.median(times)))
    grids = [problem.grid(level) for level in range(1, problem.n_levels + 1)]
    if np.any(np.diff(costs) <= 0):
        shown = ", ".join(f"level {lv} (grid {g}): {c:.3g} s" for lv, (g, c) in enumerate(zip(grids, costs), 1))
        raise ValueError(f"measured costs of {problem.name!r} are not strictly increasing with the level "
                         f"({shown}); the solver is overhead-dominated at these grids or the machine is busy. "
                         f"Use larger grids (n_coarse, refinement), more repeats/n_samples, or supply a "
                         f"cost table CSV (level,grid,cost_seconds)")
    return CostTable(level=np.arange(1, problem.n_levels + 1), grid=np.array(grids), cost_seconds=np.array(costs))
