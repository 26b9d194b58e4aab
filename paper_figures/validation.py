"""Regenerate the validation figures (trained MLFT networks vs NTK predictions) from scratch, seeded.

Runs exactly the experiment of ``analysis/validation.py`` (same defaults, listed in its docstring
and its ``FULL`` settings: the five built-in problems, allocations optimal / single / equal,
several widths and seeds, CurveBall with ridge 0.1 × mean NTK diagonal; ``--widths``, ``--seeds``
and ``--budget-samples`` are passed on) and writes into ``--out``: ``validation.{json,md,png,pdf}``
plus, per problem, ``<problem>-measured_vs_predicted`` and ``<problem>-error_vs_budget`` as PNG
and PDF. ``--from-json analysis/results/validation.json`` redraws the figures from the committed
numbers without training.

Usage: ``python paper_figures/validation.py [--out DIR] [--seed S] [--quick] [--problems ...]
[--cache-dir DIR] [--widths W,W,..] [--seeds N] [--budget-samples B,B,..] [--from-json PATH ...]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path


def _analysis_module():
    path = Path(__file__).resolve().parents[1] / "analysis" / "validation.py"
    spec = importlib.util.spec_from_file_location("ntk_mlft_analysis_validation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("results", "paper_figures", "validation"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny smoke settings")
    parser.add_argument("--problems", nargs="*", default=None, help="NAME or NAME:LEVELS")
    parser.add_argument("--cache-dir", default=None, help="dataset cache and checkpoints (analysis default if omitted)")
    parser.add_argument("--widths", default=None, help="comma-separated hidden widths")
    parser.add_argument("--seeds", default=None, help="seeds per setting")
    parser.add_argument("--budget-samples", default=None, help="budgets in finest samples' worth")
    parser.add_argument("--from-json", nargs="+", default=None, metavar="PATH",
                        help="redraw from validation.json files instead of training")
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    analysis = _analysis_module()
    forwarded = ["--out", args.out, "--seed", str(args.seed)]
    if args.quick:
        forwarded.append("--quick")
    if args.problems:
        forwarded += ["--problems", *args.problems]
    for flag in ("cache_dir", "widths", "seeds", "budget_samples"):
        if getattr(args, flag) is not None:
            forwarded += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.from_json:
        forwarded += ["--from-json", *args.from_json]
    analysis.main(forwarded)

    from ntk_mlft.reports.plotting import plot_measured_error_vs_budget, plot_measured_vs_predicted, save_figure

    results, _, _ = analysis.load_results([os.path.join(args.out, "validation.json")])
    for r in results:
        save_figure(plot_measured_vs_predicted(r), Path(args.out) / f"{r.problem}-measured_vs_predicted")
        save_figure(plot_measured_error_vs_budget(r), Path(args.out) / f"{r.problem}-error_vs_budget")
    print(f"wrote figures for {len(results)} problems to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
