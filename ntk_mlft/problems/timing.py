"""Measured cost tables: wall-clock seconds per sample of each level's solver."""

from __future__ import annotations

import time

import numpy as np

from ntk_mlft._validation import check_positive_int, check_positive_scalar
from ntk_mlft.costs import CostTable
from ntk_mlft.problems._base import Problem

__all__ = ["measure_costs"]


def measure_costs(problem: Problem, repeats: int = 3, n_samples: int = 4, seed: int = 0,
                  min_time: float = 0.02) -> CostTable:
    """Median over ``repeats`` of the per-sample solve time at each level (after one warm-up solve).

    Each repeat solves the same ``n_samples`` inputs (``problem.solve``) as many times as needed
    for at least ``min_time`` seconds of wall clock (like ``timeit``'s autorange, so cheap levels
    are not lost in timer noise) and divides by the number of samples solved. Repeats are
    interleaved across levels (repeat 1 of every level, then repeat 2, ...), so a change in
    machine load affects all levels alike. Measured costs must be strictly increasing with the
    level; if they are not (the solver is overhead-dominated at these grids, or the machine is busy), a ValueError says
    so and what to change, rather than returning a table that misleads the allocation.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem (see get_problem); got {type(problem).__name__}")
    repeats = check_positive_int("repeats", repeats)
    n_samples = check_positive_int("n_samples", n_samples)
    min_time = check_positive_scalar("min_time", min_time, allow_zero=True)
    x = problem.sample_inputs(np.random.default_rng(seed), n_samples)
    levels = range(1, problem.n_levels + 1)
    for level in levels:
        problem.solve(x[:1], level)  # warm-up: imports, caches, first-call overheads
    times: dict[int, list[float]] = {level: [] for level in levels}
    for _ in range(repeats):
        for level in levels:
            solved, t0 = 0, time.perf_counter()
            while True:
                problem.solve(x, level)
                solved += n_samples
                elapsed = time.perf_counter() - t0
                if elapsed >= min_time:
                    break
            times[level].append(elapsed / solved)
    costs = [float(np.median(times[level])) for level in levels]
    grids = [problem.grid(level) for level in range(1, problem.n_levels + 1)]
    if np.any(np.diff(costs) <= 0):
        shown = ", ".join(f"level {lv} (grid {g}): {c:.3g} s" for lv, (g, c) in enumerate(zip(grids, costs), 1))
        raise ValueError(f"measured costs of {problem.name!r} are not strictly increasing with the level "
                         f"({shown}); the solver is overhead-dominated at these grids or the machine is busy. "
                         f"Use larger grids (n_coarse, refinement), more repeats/n_samples, or supply a "
                         f"cost table CSV (level,grid,cost_seconds)")
    return CostTable(level=np.arange(1, problem.n_levels + 1), grid=np.array(grids), cost_seconds=np.array(costs))
