"""``ntk-mlft curves``: error vs budget for optimal MLFT and the baselines, figures + CSV.

Synopsis: ``ntk-mlft curves (--budgets 60:36000:20 | --budget-samples 1:1000:20) --out DIR
[--costs costs.csv] [--problem NAME | --pilot pilot.npz | --power-law ...] [--measured
measured.csv] [--at SECONDS]``; the error model and costs are chosen as for ``ntk-mlft
allocate`` (default: the built-in default problem). ``--budget-samples`` gives the budgets in
finest-level samples' worth (multiples of the finest cost per sample), so a range stays valid
whatever the measured costs; every budget is checked against one finest sample as soon as the
costs are known, before the pilot and the estimator are built.

Writes to ``--out`` (default ``results/curves``), every figure as PNG and PDF:
``error_vs_budget`` (all rules, fitted and theoretical slopes, measured points),
``allocation`` (optimal allocation at ``--at``, default the middle budget), ``learning_curves``
(predicted error vs each level's count around that allocation), ``predicted_vs_measured`` (with
``--measured``), plus ``curves.csv`` (one row per budget) and ``curves.json``.

The rules' allocations at ``--at`` are checked on the pilot before anything is reported
(:func:`ntk_mlft.studies.self_check.check_setup`, as ``allocate`` does): ``curves.json`` (and
``--json``) carries ``self_check`` (``null`` with the reason in ``self_check_note`` without a
pilot), the text output a ``WARNING self-check`` line with the numbers when it disagrees.

``--measured FILE.csv`` has columns ``allocation,budget,error[,stderr]``: allocation one of
``optimal``, ``single``, ``equal``; budget in seconds; error the measured relative MSE.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ntk_mlft._io import strict_json

DEFAULT_BUDGETS = "60:36000:20"
HELP = "error vs budget curves (optimal MLFT, single level, equal split): figures (PNG+PDF) and CSV"
OUT_KIND = "folder"  # --out is checked before any work (cli._errors.check_out_path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.cli._arg_types import positive_float, positive_int
    from ntk_mlft.cli._model_args import add_model_arguments

    add_model_arguments(parser)
    budgets = parser.add_mutually_exclusive_group()
    budgets.add_argument("--budgets", default=None,
                         help="START:STOP:NUM log-spaced budgets in seconds, or a comma-separated list "
                              f"(default {DEFAULT_BUDGETS} when --budget-samples is not given)")
    budgets.add_argument("--budget-samples", default=None, metavar="START:STOP:NUM",
                         help="budgets in finest-level samples' worth (x the finest cost per sample), "
                              "log-spaced or a comma-separated list: independent of timing noise, e.g. 1:1000:20")
    parser.add_argument("--at", type=positive_float, default=None,
                        help="budget (s) for the allocation and learning-curve charts (default: middle budget)")
    parser.add_argument("--max-samples", type=positive_int, default=None,
                        help="cap per level for every rule (estimator paths default to MAX_COVERAGE of the "
                             "estimator's pool, studies.error_model.sample_cap)")
    parser.add_argument("--measured", default=None, metavar="FILE.csv",
                        help="measured points to plot: CSV with columns allocation,budget,error[,stderr] "
                             "(allocation: optimal, single or equal; budget in s; error: relative MSE)")


def run(args: argparse.Namespace) -> int:
    from ntk_mlft._io import write_json_atomic
    from ntk_mlft.allocation import RULES, compare_rules
    from ntk_mlft.cli._model_args import cap_per_level, check_budgets, model_and_costs
    from ntk_mlft.reports.curves import (
        budget_curves,
        compare_measured,
        parse_budgets,
        predicted_learning_curves,
        read_measured_csv,
    )
    from ntk_mlft.reports.plotting import (
        plot_allocation,
        plot_error_vs_budget,
        plot_learning_curves,
        plot_predicted_vs_measured,
        save_figure,
    )
    from ntk_mlft.studies.self_check import check_setup

    measured = read_measured_csv(args.measured) if args.measured else None
    if args.budget_samples is not None:
        samples = parse_budgets(args.budget_samples, unit="finest samples' worth")
        option = "--budget-samples"
    else:
        seconds = parse_budgets(args.budgets or DEFAULT_BUDGETS)
        option = "--budgets"
    resolved = {}

    def on_costs(table) -> None:  # budgets in seconds, checked before the pilot and the estimator
        resolved["budgets"] = samples * table.cost_seconds[-1] if option == "--budget-samples" else seconds
        check_budgets(resolved["budgets"], table, 1, option)
        if args.at is not None:
            check_budgets([args.at], table, 1, "--at")

    choice = model_and_costs(args, on_costs=on_costs)
    model, costs = choice.model, choice.costs
    budgets = resolved["budgets"]
    cap = cap_per_level(args, choice)
    ctx = {"problem": choice.problem, "kernel": choice.kernel}
    curves = budget_curves(model, costs, budgets, max_samples=cap, measured=measured, **ctx)
    out = Path(args.out or "results/curves")
    files = [*save_figure(plot_error_vs_budget(curves), out / "error_vs_budget")]
    at = float(args.at) if args.at is not None else float(budgets[len(budgets) // 2])
    rules = compare_rules(model, costs, at, max_samples=cap).feasible()  # alloc_at and its baselines
    alloc = rules["optimal"]
    check = check_setup(choice.setup, [a.counts for a in rules.values()], args.seed, tuple(rules))
    files += save_figure(plot_allocation(alloc, grid=getattr(costs, "grid", None), **ctx), out / "allocation")
    top = cap if cap is not None else 4 * int(alloc.counts.max())
    ns = np.unique(np.geomspace(1, max(top, 2), 12).round())
    lc = predicted_learning_curves(model, alloc.counts, ns, budget=at, **ctx)
    files += save_figure(plot_learning_curves(lc), out / "learning_curves")
    summary = {**curves.to_dict(), **choice.labels(), "allocation_at": alloc.to_dict(), **check.as_dict()}
    if measured is not None:
        comp = compare_measured(model, costs, measured, max_samples=cap, **ctx)
        files += save_figure(plot_predicted_vs_measured(comp), out / "predicted_vs_measured")
        summary["predicted_vs_measured"] = {"labels": list(comp.labels), "predicted": comp.predicted.tolist(),
                                            "measured": comp.measured.tolist(),
                                            "rms_log_ratio": comp.log_ratio_rmse()}
    files.append(curves.to_csv(out / "curves.csv"))
    summary["files"] = [str(f) for f in files] + [str(out / "curves.json")]
    files.append(write_json_atomic(out / "curves.json", summary))
    if args.json:
        print(strict_json(summary, indent=2))
    elif not args.quiet:
        for m in RULES:
            e = curves.errors(m)
            print(f"{RULES[m].label:>21}: error {e[0]:.4g} -> {e[-1]:.4g} "
                  f"over budgets {budgets[0]:.4g}-{budgets[-1]:.4g} s "
                  f"(fitted slope {curves.slope(m):.2f}; {int(curves.cap_bound(m).sum())} budgets cap-bound)")
        print(f"theory: slope {curves.theory_slope:.2f} ({curves.theory_note})")
        print("\n".join(check.render()))
        print(f"wrote {len(files)} files to {out}")
    return 0
