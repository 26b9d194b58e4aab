"""``ntk-mlft allocate``: optimal samples per level for a cost table and a budget.

Synopsis: ``ntk-mlft allocate --costs costs.csv --budget 3600 [--problem NAME | --pilot pilot.npz |
--power-law ...] [--arch mlp-relu-3] [--json]``.

The error model comes from one of: ``--power-law coef=.. exponent=.. [floor=..]`` (user-supplied
separable model), ``--pilot pilot.npz`` (paired pilot data → NTK kernel of ``--arch`` on the
pilot inputs, or on the pilot + ``x_unlabeled`` inputs when the file has them), or ``--problem
NAME`` (``--pilot-size`` paired pilot solves with the built-in solver + ``--n-unlabeled`` cheap
unlabeled inputs for the kernel spectrum; ``--n-unlabeled 0``: the spectral estimator on the pilot
inputs alone). Every estimator comes from :func:`ntk_mlft.studies.error_model.build_error_model`
and the options are those of :mod:`ntk_mlft.cli._model_args`. With none of the three,
the built-in default problem (:data:`ntk_mlft.problems.DEFAULT_PROBLEM`) is used as
``--problem``, with as many levels as the cost table has rows (the report says so). Costs come
from ``--costs costs.csv`` (columns ``level,grid,cost_seconds``) or, with a problem, are measured.

Estimator paths cap every level at :func:`ntk_mlft.studies.error_model.sample_cap` of the estimator's pool
(``MAX_COVERAGE`` of it: the counts up to which the fresh-input predictions are documented
accurate; ``--max-samples`` overrides); every rule of :data:`ntk_mlft.allocation.RULES` gets the
same cap (:func:`ntk_mlft.allocation.compare_rules`), so the reported gain compares rules under
the same limits. Unspent budget (rounding, or a
binding cap) is reported for every rule. With an estimator, ``coverage_of_pool`` is
sum_l N_l / pool for the optimum; above :data:`ntk_mlft.studies.error_model.COVERAGE_WARNING` the table
says that the prediction tends to be optimistic there.

Before the optimum is reported the model checks itself on its pilot
(:func:`ntk_mlft.studies.self_check.check_setup`: closed form vs Monte-Carlo on the pilot pairs
at every rule's counts scaled to the pilot): the JSON carries it as ``self_check`` (``null``
with the reason in ``self_check_note`` where no pilot is behind the model), the table prints a
``WARNING self-check`` line with the numbers when it disagrees beyond its tolerance.
"""

from __future__ import annotations

import argparse
from typing import Any

from ntk_mlft._io import strict_json

HELP = "optimal number of training samples per level for a cost table and a budget (seconds)"
OUT_KIND = "file"  # --out is checked before any work (cli._errors.check_out_path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.cli._arg_types import positive_float, positive_int
    from ntk_mlft.cli._model_args import add_model_arguments

    add_model_arguments(parser)
    parser.add_argument("--budget", type=positive_float, required=True, help="budget in seconds of solver time")
    parser.add_argument("--min-samples", type=positive_int, default=1, help="least samples of every used level")
    parser.add_argument("--max-samples", type=positive_int, default=None,
                        help="cap per level for every rule; estimator paths default to MAX_COVERAGE of the "
                             "estimator's pool (studies.error_model.sample_cap): a pool-based estimate is only "
                             "accurate well below it")


def allocation_report(model: Any, costs: Any, budget: float, min_samples: int = 1,
                      max_samples: int | None = None) -> dict[str, Any]:
    """Every rule of :data:`ntk_mlft.allocation.RULES` (same ``max_samples`` cap; ``None`` where a
    rule is infeasible) and the gain over the single level, as a JSON-able dict."""
    from ntk_mlft.allocation import compare_rules

    cmp = compare_rules(model, costs, budget, min_samples=min_samples, max_samples=max_samples)
    grid = getattr(costs, "grid", None)
    return {**cmp.to_dict(), "gain_over_single_level": cmp.gain("single"),
            "grid": None if grid is None else [int(g) for g in grid]}


def _spent(a: dict[str, Any]) -> str:
    line = f"spends {a['cost_seconds']:.6g} of {a['budget_seconds']:.6g} s"
    if a["unspent_reason"] != "none":
        line += f"; {a['unspent_seconds']:.6g} s unspent ({a['unspent_reason']})"
    return line


def format_table(report: dict[str, Any], check_lines: Any = ()) -> str:
    """Plain-text table of the report of :func:`run`: level, grid, cost/sample, N_l, spend, % of
    budget; unspent budget and why; warnings and ``check_lines`` (the self-check's
    ``SetupCheck.render``); then the prediction, the other rules (with their spend) and the gain."""
    from ntk_mlft.allocation import RULES
    from ntk_mlft.studies.error_model import coverage_note

    opt = report["optimal"]
    n = len(opt["counts"])
    grid = report["grid"] or ["-"] * n
    cap = report.get("max_samples")
    lines = [f"MLFT allocation — {report['problem']}, kernel {report['kernel']}, "
             f"budget {opt['budget_seconds']:.6g} s"]
    if report.get("model_source"):
        lines.append(f"error model: {report['model_source']}")
    lines.append(f"{'level':>5} {'grid':>7} {'cost/sample [s]':>16} {'N_l':>10} {'spend [s]':>12} "
                 f"{'% of budget':>11}")
    for l in range(n):
        count = opt["counts"][l]
        mark = "*" if (l + 1) in opt["capped_levels"] else " "
        lines.append(f"{l + 1:>5} {grid[l]!s:>7} {opt['cost_per_sample_seconds'][l]:>16.6g} "
                     f"{(str(count) if count else 'skip') + mark:>10} {opt['spend_seconds'][l]:>12.6g} "
                     f"{100 * opt['share_of_budget'][l]:>10.1f}%")
    lines.append(f"{'spent':>5} {'':>7} {'':>16} {sum(opt['counts']):>10} {opt['cost_seconds']:>12.6g} "
                 f"{100 * sum(opt['share_of_budget']):>10.1f}%")
    if opt["unspent_reason"] != "none":
        lines.append(f"unspent: {opt['unspent_seconds']:.6g} s "
                     f"({100 * opt['unspent_seconds'] / opt['budget_seconds']:.1f}% of budget) — "
                     f"{opt['unspent_reason']}")
    if cap is not None:
        lines.append(f"every rule is capped at {cap} samples per level (* = at the cap)")
    note = None if report.get("coverage_of_pool") is None else coverage_note(report["coverage_of_pool"],
                                                                            report["pool"])
    if note is not None:
        lines.append(f"note: {note} (--n-unlabeled)")
    lines += [f"warning: {w}" for w in report.get("warnings", [])]
    lines += list(check_lines)
    lines.append(f"predicted relative MSE: {opt['predicted_error']:.4g} ({RULES['optimal'].label}, "
                 f"integer {opt['integer_status']}, continuous {opt['status']})")
    for name, rule in RULES.items():
        a = report.get(name)
        if name == "optimal" or a is None:
            continue
        counts = f"N_L = {a['counts'][-1]}" if name == "single" else f"N = {tuple(a['counts'])}"
        line = f"{rule.label}, {counts}, {_spent(a)}: {a['predicted_error']:.4g}"
        if name == "single":
            line += f"  ->  gain x{report['gain_over_single_level']:.3g}"
        lines.append(line)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ntk_mlft.allocation import RULES
    from ntk_mlft.cli._model_args import cap_per_level, check_budgets, model_and_costs
    from ntk_mlft.studies.self_check import check_setup

    choice = model_and_costs(
        args, on_costs=lambda table: check_budgets([args.budget], table, args.min_samples, "--budget"))
    report = allocation_report(choice.model, choice.costs, args.budget, args.min_samples, cap_per_level(args, choice))
    report.update(choice.labels())
    if hasattr(choice.model, "diagnostics"):            # pilot diagnostics no check vouches for
        report["warnings"] = choice.model.diagnostics()["warnings"]
    if choice.setup is not None:
        report["coverage_of_pool"] = choice.setup.coverage(report["optimal"]["counts"])
    rules = [name for name in RULES if report.get(name) is not None]
    check = check_setup(choice.setup, [report[name]["counts"] for name in rules], args.seed, rules)
    report.update(check.as_dict())
    if args.out:
        from ntk_mlft._io import write_json_atomic

        write_json_atomic(args.out, report)
    if args.json:
        print(strict_json(report, indent=2))
    else:
        print(format_table(report, check.render()))
    return 0
