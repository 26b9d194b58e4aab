"""Regenerate the error-vs-budget and allocation figures from scratch, seeded.

Costs are proportional to the grid size (``c_l = grid(l) · 1 µs``, the linear-cost model of a grid
solver; deterministic, unlike wall-clock timings). The error model is the practical estimator the
CLI uses (:func:`ntk_mlft.studies.error_model.build_error_model`: ``--pilot-size`` paired pilot
solves + ``--n-unlabeled`` unlabeled inputs, NTK of ``--arch``, fresh-input error, counts capped
at ``studies.error_model.sample_cap`` of its pool). :func:`ntk_mlft.reports.curves.budget_curves` sweeps budgets from
2 to ``--max-budget-samples`` finest-level samples' worth. At four of them the optimal allocation
is measured (square points, ± s.e.): kernel regression with the same NTK and ridge on random,
mutually disjoint training sets drawn from an INDEPENDENT labelled pool of ``--check-size`` paired
inputs (``studies.error_model.check_pool``), error on the pool points outside every training set
(the fresh-input error the model
predicts; :func:`ntk_mlft.estimators.montecarlo_error`). Writes ``error_vs_budget.{png,pdf}``,
``allocation.{png,pdf}``, ``curves.csv`` and ``error_vs_budget.json``; the committed copy lives in
``paper_figures/output/`` (the README shows it).

Usage: ``python paper_figures/error_vs_budget.py [--problem elliptic-rough] [--levels 4]
[--pilot-size 150] [--n-unlabeled 3000] [--check-size 3000] [--seed 0]
[--out paper_figures/output/error_vs_budget]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default=None, help="problem name (default: the built-in default)")
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--arch", default="mlp-relu-3")
    ap.add_argument("--pilot-size", type=int, default=150, help="paired pilot solves")
    ap.add_argument("--n-unlabeled", type=int, default=3000, help="unlabeled inputs for the spectrum")
    ap.add_argument("--check-size", type=int, default=3000, help="independent labelled inputs for the check")
    ap.add_argument("--max-budget-samples", type=float, default=400.0)
    ap.add_argument("--n-budgets", type=int, default=12)
    ap.add_argument("--trials", type=int, default=10, help="Monte-Carlo repetitions per measured point")
    ap.add_argument("--ridge", type=float, default=1e-4, help="relative to the mean kernel diagonal")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="paper_figures/output/error_vs_budget")
    args = ap.parse_args(argv)

    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from ntk_mlft._io import write_json_atomic
    from ntk_mlft._seeds import derived_seed
    from ntk_mlft.allocation import optimize_allocation
    from ntk_mlft.allocation.costs import CostTable
    from ntk_mlft.estimators import montecarlo_error
    from ntk_mlft.problems import DEFAULT_PROBLEM, get_problem
    from ntk_mlft.reports.curves import MeasuredPoints, budget_curves
    from ntk_mlft.reports.plotting import plot_allocation, plot_error_vs_budget, save_figure
    from ntk_mlft.studies.error_model import build_error_model, check_pool, pilot_from_problem

    problem = get_problem(args.problem or DEFAULT_PROBLEM, levels=args.levels)
    grid = np.array([problem.grid(l) for l in range(1, problem.n_levels + 1)])
    costs = CostTable.from_costs(grid * 1e-6, grid=grid)
    pilot = pilot_from_problem(problem, args.pilot_size, seed=args.seed, n_unlabeled=args.n_unlabeled)
    setup = build_error_model(pilot, args.arch, args.ridge, seed=args.seed)
    model, cap = setup.model, setup.max_samples
    c_fine = float(costs.cost_seconds[-1])
    budgets = np.geomspace(2 * c_fine, args.max_budget_samples * c_fine, args.n_budgets)
    measured_at = budgets[:: max(1, len(budgets) // 4)]
    counts = np.array([optimize_allocation(model, costs, b, max_samples=cap).counts for b in measured_at], float)
    k, targets = check_pool(problem, args.check_size, args.arch, seed=args.seed)
    mc = montecarlo_error(k, targets, counts, ridge=setup.ridge_absolute, n_trials=args.trials,
                          seed=derived_seed(args.seed, "monte carlo"), sets="disjoint")
    measured = MeasuredPoints(("optimal",) * len(measured_at), measured_at, mc.fresh_mean, mc.fresh_stderr)
    curves = budget_curves(model, costs, budgets, problem=problem.name, kernel=args.arch, max_samples=cap,
                           measured=measured)
    out = Path(args.out)
    files = [*save_figure(plot_error_vs_budget(curves), out / "error_vs_budget")]
    mid = optimize_allocation(model, costs, float(budgets[len(budgets) // 2]), max_samples=cap)
    files += save_figure(plot_allocation(mid, problem=problem.name, kernel=args.arch, grid=grid), out / "allocation")
    files.append(curves.to_csv(out / "curves.csv"))
    files.append(write_json_atomic(out / "error_vs_budget.json", {
        **curves.to_dict(), "seed": args.seed, "pilot_size": args.pilot_size, "n_unlabeled": args.n_unlabeled,
        "check_size": args.check_size, "max_samples_per_level": cap, "cost_model": "grid * 1e-6 s",
        "measured_counts": counts.tolist(), "measured_fresh_mean": mc.fresh_mean.tolist(),
        "measured_fresh_stderr": mc.fresh_stderr.tolist(),
        "predicted_at_measured": model.error_many(counts).tolist(), "allocation_mid": mid.to_dict()}))
    for f in files:
        print(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
