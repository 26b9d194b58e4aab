"""Regenerate the error-vs-budget and allocation figures from scratch, seeded.

Costs are proportional to the grid size (``c_l = grid(l) · 1 µs``, the linear-cost model of a grid
solver; deterministic, unlike wall-clock timings). A paired pilot study of the problem gives the
NTK spectral estimator (``--arch``); :func:`ntk_mlft.curves.budget_curves` sweeps budgets from 2 to
``--max-budget-samples`` finest-level samples' worth; at a few budgets the optimal allocation is
measured by Monte-Carlo kernel regression on the pilot pool (square points, ± s.e.). Writes
``error_vs_budget.{png,pdf}``, ``allocation.{png,pdf}``, ``curves.csv`` and ``error_vs_budget.json``.

Usage: ``python paper_figures/error_vs_budget.py [--problem elliptic-rough] [--levels 4]
[--pilot-size 400] [--seed 0] [--out results/paper_figures/error_vs_budget]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default=None, help="problem name (default: the built-in default)")
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--arch", default="mlp-relu-3")
    ap.add_argument("--pilot-size", type=int, default=400)
    ap.add_argument("--max-budget-samples", type=float, default=150.0)
    ap.add_argument("--n-budgets", type=int, default=12)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--ridge", type=float, default=1e-6, help="relative to the mean kernel diagonal")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/paper_figures/error_vs_budget")
    args = ap.parse_args(argv)

    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from ntk_mlft._io import write_json_atomic
    from ntk_mlft.allocation import optimize_allocation
    from ntk_mlft.commands.allocate import pilot_kernel
    from ntk_mlft.costs import CostTable
    from ntk_mlft.curves import MeasuredPoints, budget_curves
    from ntk_mlft.estimators import SpectralEstimator, montecarlo_error
    from ntk_mlft.plotting import plot_allocation, plot_error_vs_budget, save_figure
    from ntk_mlft.problems import DEFAULT_PROBLEM, generate, get_problem

    problem = get_problem(args.problem or DEFAULT_PROBLEM, levels=args.levels)
    grid = np.array([problem.grid(l) for l in range(1, problem.n_levels + 1)])
    costs = CostTable.from_costs(grid * 1e-6, grid=grid)
    data = generate(problem, [args.pilot_size] * problem.n_levels, seed=args.seed, paired=True)
    k, targets = pilot_kernel(data.inputs[-1], list(data.outputs), args.arch)
    ridge = args.ridge * float(np.mean(np.diag(k)))
    model = SpectralEstimator.from_kernel(k, targets, ridge=ridge)
    cap = args.pilot_size // 2
    c_fine = float(costs.cost_seconds[-1])
    budgets = np.geomspace(2 * c_fine, args.max_budget_samples * c_fine, args.n_budgets)
    measured_at = budgets[:: max(1, len(budgets) // 4)]
    counts = np.array([optimize_allocation(model, costs, b, max_samples=cap).counts for b in measured_at], float)
    mc = montecarlo_error(k, targets, counts, ridge=ridge, n_trials=args.trials, seed=args.seed)
    measured = MeasuredPoints(("optimal",) * len(measured_at), measured_at, mc.mean, mc.stderr)
    curves = budget_curves(model, costs, budgets, problem=problem.name, kernel=args.arch, max_samples=cap,
                           measured=measured)
    out = Path(args.out)
    files = [*save_figure(plot_error_vs_budget(curves), out / "error_vs_budget")]
    mid = optimize_allocation(model, costs, float(budgets[len(budgets) // 2]), max_samples=cap)
    files += save_figure(plot_allocation(mid, problem=problem.name, kernel=args.arch, grid=grid), out / "allocation")
    files.append(curves.to_csv(out / "curves.csv"))
    files.append(write_json_atomic(out / "error_vs_budget.json", {
        **curves.to_dict(), "seed": args.seed, "pilot_size": args.pilot_size, "cost_model": "grid * 1e-6 s",
        "allocation_mid": mid.to_dict()}))
    for f in files:
        print(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
