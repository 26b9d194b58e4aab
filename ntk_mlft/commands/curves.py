"""``ntk-mlft curves``: error vs budget for optimal MLFT and the baselines, figures + CSV.

Writes to ``--out`` (default ``results/curves``): ``error_vs_budget.{png,pdf}``,
``allocation.{png,pdf}`` (at the middle budget, or ``--at``), ``curves.csv`` and ``curves.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "error vs budget curves (optimal MLFT, single level, equal split): figures and CSV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.commands.allocate import add_model_arguments

    add_model_arguments(parser)
    parser.add_argument("--budgets", default="60:36000:20",
                        help="START:STOP:NUM log-spaced budgets in seconds, or a comma-separated list")
    parser.add_argument("--at", type=float, default=None, help="budget (s) for the allocation chart")
    parser.add_argument("--max-samples", type=int, default=None,
                        help="cap per level (estimator paths default to half the pilot size)")


def run(args: argparse.Namespace) -> int:
    from ntk_mlft._io import write_json_atomic
    from ntk_mlft.allocation import optimize_allocation
    from ntk_mlft.commands.allocate import model_and_costs, sample_cap
    from ntk_mlft.curves import budget_curves, parse_budgets
    from ntk_mlft.plotting import plot_allocation, plot_error_vs_budget, save_figure

    budgets = parse_budgets(args.budgets)
    model, costs, labels = model_and_costs(args)
    cap = sample_cap(args, labels)
    curves = budget_curves(model, costs, budgets, problem=labels["problem"], kernel=labels["kernel"],
                           max_samples=cap)
    out = Path(args.out or "results/curves")
    files = [*save_figure(plot_error_vs_budget(curves), out / "error_vs_budget")]
    at = float(args.at) if args.at is not None else float(budgets[len(budgets) // 2])
    alloc = optimize_allocation(model, costs, at, max_samples=cap)
    files += save_figure(plot_allocation(alloc, problem=labels["problem"], kernel=labels["kernel"],
                                         grid=getattr(costs, "grid", None)), out / "allocation")
    files.append(curves.to_csv(out / "curves.csv"))
    summary = {**curves.to_dict(), "allocation_at": alloc.to_dict(), "files": [str(f) for f in files]}
    files.append(write_json_atomic(out / "curves.json", summary))
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        for m in ("optimal", "single", "equal"):
            print(f"{m:>8}: error {curves.errors(m)[0]:.4g} -> {curves.errors(m)[-1]:.4g} "
                  f"over budgets {budgets[0]:.4g}-{budgets[-1]:.4g} s (slope {curves.slope(m):.2f})")
        print(f"wrote {len(files)} files to {out}")
    return 0
