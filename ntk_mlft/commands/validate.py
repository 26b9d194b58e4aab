"""``ntk-mlft validate``: train finite-width networks with MLFT per allocation and compare the
measured test error with the NTK predictions (see :mod:`ntk_mlft.validation`).

Writes ``validation.json``, ``validation.md`` (table) and two figures into ``--out`` (default
``results/validate-<problem>``): measured vs NTK/predicted error per allocation and width, and
measured error vs budget over the predicted curve. The figure functions take a
``ValidationResult`` and return a matplotlib ``Figure``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HELP = "train finite-width nets with MLFT per allocation; compare measured error with NTK predictions"


def _csv(kind, name):
    def parse(text: str):
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{name} must be a comma-separated list of {kind.__name__}s; "
                                             f"got {text!r}") from err
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.problems.cli_support import add_problem_arguments

    add_problem_arguments(parser)
    parser.add_argument("--arch", default="mlp-relu-3", help="architecture name (ntk_mlft.architectures)")
    parser.add_argument("--budget", type=_csv(float, "--budget"), default=None,
                        help="budget(s) in seconds of solver time, comma-separated "
                             "(default: 32 finest-level samples' worth)")
    parser.add_argument("--allocations", type=_csv(str, "--allocations"), default=["optimal", "single", "equal"],
                        help="comma-separated subset of optimal,single,equal")
    parser.add_argument("--widths", type=_csv(int, "--widths"), default=[128, 512, 2048],
                        help="hidden widths to train, comma-separated")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (data draw + init) per setting")
    parser.add_argument("--optimizer", default="gd", help="gd, sgd, adam or curveball")
    parser.add_argument("--max-steps", type=int, default=2000, help="step limit per level")
    parser.add_argument("--n-test", type=int, default=200, help="held-out finest-level test samples")
    parser.add_argument("--n-pilot", type=int, default=64, help="paired pilot samples for the error model")
    parser.add_argument("--costs", default=None, help="cost table CSV (default: measure costs now)")


def plot_measured_vs_predicted(result: Any):
    """Measured error (mean ± std over seeds) per allocation against width, with the NTK error on
    the same data (dashed) and the error model's prediction (dotted)."""
    import matplotlib.pyplot as plt

    summ = result.summary()
    fig, axes = plt.subplots(1, len(result.budgets), figsize=(5.6 * len(result.budgets), 4.2), squeeze=False)
    for ax, b in zip(axes[0], result.budgets):
        for i, a in enumerate(sorted({d["allocation"] for d in summ}, key=str)):
            ds = [d for d in summ if d["budget"] == b and d["allocation"] == a]
            if not ds:
                continue
            w = [d["width"] for d in ds]
            ax.errorbar(w, [d["measured_mean"] for d in ds], yerr=[d["measured_std"] for d in ds], fmt="o-",
                        color=f"C{i}", label=f"{a} {ds[0]['counts']}: measured")
            ax.plot(w, [d["ntk_mean"] for d in ds], "--", color=f"C{i}", label=f"{a}: NTK, same data")
            ax.plot(w, [d["predicted"] for d in ds], ":", color=f"C{i}", label=f"{a}: error model")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("hidden width (units)")
        ax.set_ylabel("relative test MSE vs finest level (dimensionless)")
        ax.set_title(f"{result.problem}, {result.architecture}, budget {b:.3g} s", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_error_vs_budget(result: Any):
    """Measured error at the largest width vs budget, per allocation, over the predicted curve."""
    import matplotlib.pyplot as plt

    summ = result.summary()
    w = max(result.widths)
    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    for i, a in enumerate(sorted({d["allocation"] for d in summ}, key=str)):
        ds = sorted((d for d in summ if d["allocation"] == a and d["width"] == w), key=lambda d: d["budget"])
        b = [d["budget"] for d in ds]
        ax.errorbar(b, [d["measured_mean"] for d in ds], yerr=[d["measured_std"] for d in ds], fmt="o-",
                    color=f"C{i}", label=f"{a}: measured (width {w})")
        ax.plot(b, [d["ntk_mean"] for d in ds], "--", color=f"C{i}", label=f"{a}: NTK, same data")
        ax.plot(b, [d["predicted"] for d in ds], ":", color=f"C{i}", label=f"{a}: error model")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("budget (seconds of solver time)")
    ax.set_ylabel("relative test MSE vs finest level (dimensionless)")
    ax.set_title(f"Error vs budget — {result.problem}, {result.architecture}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def run(args: argparse.Namespace) -> int:
    from ntk_mlft._io import write_json_atomic, write_text_atomic
    from ntk_mlft._validation import check_positive_int
    from ntk_mlft.costs import CostTable
    from ntk_mlft.plotting import save_figure
    from ntk_mlft.problems import measure_costs
    from ntk_mlft.problems.cli_support import problem_from_args
    from ntk_mlft.validation import validate

    problem = problem_from_args(args)
    seeds = check_positive_int("--seeds", args.seeds)
    costs = CostTable.from_csv(args.costs) if args.costs else measure_costs(problem, seed=args.seed)
    budgets = args.budget or [32 * float(costs.cost_seconds[-1])]
    result = validate(problem, architecture=args.arch, budgets=budgets, allocations=args.allocations,
                      widths=args.widths, seeds=range(seeds), n_test=args.n_test,
                      optimizer=args.optimizer, max_steps=args.max_steps, costs=costs,
                      n_pilot=args.n_pilot, seed=args.seed)
    out = Path(args.out or f"results/validate-{problem.name}")
    write_json_atomic(out / "validation.json", result.to_dict())
    write_text_atomic(out / "validation.md", result.table() + "\n")
    figs = [save_figure(plot_measured_vs_predicted(result), out / "measured_vs_predicted")[0],
            save_figure(plot_error_vs_budget(result), out / "error_vs_budget")[0]]
    if args.json:
        print(json.dumps({"out": str(out), "summary": result.summary(), "gains": result.gains(),
                          "error_model": result.error_model, "figures": [str(f) for f in figs]}))
    elif not args.quiet:
        print(result.table())
        for g in result.gains():
            print(f"budget {g['budget']:.3g} s, width {g['width']}: single/optimal error ratio measured "
                  f"{g['measured_single_over_optimal']:.3g}, NTK {g['ntk_single_over_optimal']:.3g}, "
                  f"predicted {g['predicted_single_over_optimal']:.3g}")
        print(f"wrote {out}")
    return 0
