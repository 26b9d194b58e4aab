"""Measured cost tables: wall-clock seconds per sample of each level's solver."""

from __future__ import annotations

from time import perf_counter

import numpy as np

from ntk_mlft._checks import check_positive_int, check_positive_scalar
from ntk_mlft._progress import progress
from ntk_mlft.allocation.costs import CostTable
from ntk_mlft.problems._base import Problem

__all__ = ["measure_costs"]


def _per_sample(problem: Problem, x: np.ndarray, level: int, min_time: float) -> float:
    """Seconds per sample of ``problem.solve(x, level)``, repeated for at least ``min_time`` seconds."""
    solved, t0 = 0, perf_counter()
    while True:
        problem.solve(x, level)
        solved += len(x)
        elapsed = perf_counter() - t0
        if elapsed >= min_time:
            return elapsed / solved


def measure_costs(problem: Problem, repeats: int = 5, n_samples: int = 32, seed: int = 0,
                  min_time: float = 0.05, max_batch_time: float = 1.0) -> CostTable:
    """Seconds per sample at each level, timed on batches the way :func:`generate` solves them.

    Cost of level l: ``c_l = min over repeats of T_l / (k b_l)``, where one repeat calls
    ``problem.solve`` k times on the same batch of ``b_l`` inputs until at least ``min_time``
    seconds have passed (like ``timeit``'s autorange, so cheap levels are not lost in timer
    noise) and ``T_l`` is the elapsed wall clock.

    - Batch: ``b_l = n_samples`` (default 32, ``generate``'s default ``chunk_size``: solvers that
      step a batch together amortise their per-call overhead over it, and this is the cost that
      data generation pays), reduced to ``max(1, floor(max_batch_time / t_1))`` samples for a
      level whose single-sample solve takes ``t_1 > max_batch_time / n_samples`` -- such a level
      is dominated by its own work, so its per-sample cost does not depend on the batch size.
    - Warm-up: one untimed solve of each level's batch first (imports, caches, first-call costs).
    - Minimum, not mean: machine load only ever adds time, so the least-disturbed repeat is the
      best estimate of the cost; repeats are interleaved across levels (repeat 1 of every level,
      then repeat 2, ...), so a change in load affects all levels alike.

    Measured costs must be strictly increasing with the level; if they are not (the solver is
    overhead-dominated at these grids, or the machine is very busy), a ValueError says so and
    what to change, rather than returning a table that misleads the allocation.
    Returns a :class:`~ntk_mlft.allocation.costs.CostTable` (level, grid, cost_seconds).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem (see get_problem); got {type(problem).__name__}")
    repeats = check_positive_int("repeats", repeats)
    n_samples = check_positive_int("n_samples", n_samples)
    min_time = check_positive_scalar("min_time", min_time, allow_zero=True)
    max_batch_time = check_positive_scalar("max_batch_time", max_batch_time)
    x = problem.sample_inputs(np.random.default_rng(seed), n_samples)
    levels = range(1, problem.n_levels + 1)
    batches = {}
    for level in progress(levels, total=len(levels), desc=f"cost timing {problem.name}: warm-up", unit="level"):
        t0 = perf_counter()
        problem.solve(x[:1], level)
        t_one = perf_counter() - t0
        batches[level] = x[:max(1, min(n_samples, int(max_batch_time / max(t_one, 1e-12))))]
        problem.solve(batches[level], level)  # warm-up on the timed batch
    times: dict[int, list[float]] = {level: [] for level in levels}
    for _ in progress(range(repeats), total=repeats, desc=f"cost timing {problem.name}: repeats", unit="repeat"):
        for level in levels:
            times[level].append(_per_sample(problem, batches[level], level, min_time))
    costs = [float(np.min(times[level])) for level in levels]
    grids = [problem.grid(level) for level in levels]
    if np.any(np.diff(costs) <= 0):
        shown = ", ".join(f"level {lv} (grid {g}): {c:.3g} s" for lv, (g, c) in enumerate(zip(grids, costs), 1))
        raise ValueError(f"measured costs of {problem.name!r} are not strictly increasing with the level "
                         f"({shown}); the solver is overhead-dominated at these grids or the machine is busy. "
                         f"Use larger grids (n_coarse, refinement), more repeats/n_samples, or supply a "
                         f"cost table CSV (level,grid,cost_seconds)")
    return CostTable(level=np.arange(1, problem.n_levels + 1), grid=np.array(grids), cost_seconds=np.array(costs))
