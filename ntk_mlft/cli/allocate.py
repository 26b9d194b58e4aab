"""``ntk-mlft allocate``: optimal samples per level for a cost table and a budget.

Synopsis: ``ntk-mlft allocate --costs costs.csv --budget 3600 [--problem NAME | --pilot pilot.npz |
--power-law ...] [--arch mlp-relu-3] [--json]``.

The error model comes from one of: ``--power-law coef=.. exponent=.. [floor=..]`` (user-supplied
separable model), ``--pilot pilot.npz`` (paired pilot data → NTK kernel of ``--arch`` on the
pilot inputs, or on the pilot + ``x_unlabeled`` inputs when the file has them), or ``--problem
NAME`` (the practical estimator of :func:`ntk_mlft.studies.error_model.practical_estimator_from_problem`:
``--pilot-size`` paired pilot solves with the built-in solver + ``--n-unlabeled`` cheap unlabeled
inputs for the kernel spectrum; ``--n-unlabeled 0``: the spectral estimator on the pilot inputs
alone); the pilot → estimator construction is :mod:`ntk_mlft.studies.error_model`. With none of the three,
the built-in default problem (:data:`ntk_mlft.problems.DEFAULT_PROBLEM`) is used as
``--problem``, with as many levels as the cost table has rows (the report says so). Costs come
from ``--costs costs.csv`` (columns ``level,grid,cost_seconds``) or, with a problem, are measured.

Estimator paths cap every level at :func:`ntk_mlft.studies.error_model.sample_cap` of the estimator's pool
(``MAX_COVERAGE`` of it: the counts up to which the fresh-input predictions are documented
accurate; ``--max-samples`` overrides); the single-level and equal-split baselines get the same
cap, so the reported gain compares rules under the same limits. Unspent budget (rounding, or a
binding cap) is reported for every rule. With an estimator, ``coverage_of_pool`` is
sum_l N_l / pool for the optimum; above :data:`ntk_mlft.studies.error_model.COVERAGE_WARNING` the table
says that the prediction tends to be optimistic there.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

from ntk_mlft._io import strict_json

HELP = "optimal number of training samples per level for a cost table and a budget (seconds)"
OUT_KIND = "file"  # --out is checked before any work (cli._errors.check_out_path)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``allocate`` and ``curves``: costs and the error model."""
    from ntk_mlft.cli._arg_types import non_negative_float, non_negative_int, positive_int
    from ntk_mlft.problems import DEFAULT_PROBLEM

    parser.add_argument("--costs", default=None, help="cost table CSV (level,grid,cost_seconds); "
                        "required with --power-law/--pilot, measured from the problem when omitted")
    src = parser.add_argument_group("error model (at most one; default: --problem "
                                    f"{DEFAULT_PROBLEM} with as many levels as the cost table)")
    one = src.add_mutually_exclusive_group()
    one.add_argument("--power-law", nargs="+", default=None, metavar="KEY=VALUES",
                     help="separable model E = floor + sum_l coef_l N_l^-exponent_l, e.g. "
                          "--power-law coef=1,0.3,0.05 exponent=1,1,1 floor=0.001")
    one.add_argument("--pilot", default=None, help="pilot .npz: x, y_level1..y_levelL on the same inputs, "
                     "optional x_unlabeled (cheap inputs for the kernel spectrum)")
    one.add_argument("--problem", default=None,
                     help=f"built-in problem: generate a paired pilot study (default {DEFAULT_PROBLEM} "
                          "when no model option is given)")
    src.add_argument("--arch", default="mlp-relu-3", help="architecture whose NTK defines the estimator")
    src.add_argument("--ridge", type=non_negative_float, default=1e-6,
                     help="ridge per level, relative to the mean kernel diagonal (estimator paths)")
    src.add_argument("--pilot-size", type=positive_int, default=150,
                     help="paired pilot solves (every level, same inputs) with a problem")
    src.add_argument("--n-unlabeled", type=non_negative_int, default=3000,
                     help="cheap unlabeled inputs (no solves) for the kernel spectrum with a problem; "
                          "0: the pilot inputs alone (pool and cap much smaller)")
    src.add_argument("--levels", type=positive_int, default=None,
                     help="number of levels of the problem (default: the cost table's rows, else the problem's)")


def parse_power_law(items: list[str], n_levels: int | None = None):
    """``["coef=1,0.3", "exponent=1,1", "floor=0.01"]`` → PowerLawErrorModel; each key once,
    ``floor`` a single number, ``n_levels`` entries per key when given (the cost table's levels)."""
    from ntk_mlft.estimators.base import PowerLawErrorModel

    usage = "--power-law takes coef=V1,V2,.. exponent=P1,P2,.. [floor=F], each key once"
    fields: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in ("coef", "exponent", "floor"):
            raise ValueError(f"{usage}; got {item!r}")
        if key in fields:
            raise ValueError(f"{usage}; {key}= is given twice")
        try:
            vals = [float(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(f"--power-law {key} must be comma-separated numbers; got {value!r}") from None
        if key == "floor" and len(vals) != 1:
            raise ValueError(f"--power-law floor is one number (the error no allocation goes below); got {value!r}")
        fields[key] = vals[0] if key == "floor" else np.array(vals)
    if "coef" not in fields or "exponent" not in fields:
        raise ValueError("--power-law needs both coef=... and exponent=...")
    if n_levels is not None and not len(fields["coef"]) == len(fields["exponent"]) == n_levels:
        raise ValueError(f"--power-law coef and exponent need one entry per level of the cost table ({n_levels} "
                         f"levels); got {len(fields['coef'])} and {len(fields['exponent'])}")
    try:
        return PowerLawErrorModel(**fields)
    except ValueError as err:
        raise ValueError(f"--power-law {err}") from None


def check_budgets(budgets: Any, costs: Any, min_samples: int, option: str) -> None:
    """ValueError unless every budget buys ``min_samples`` finest-level samples (the cheapest
    admissible allocation); run right after the cost table is known, before any model is built."""
    from ntk_mlft.allocation import minimum_budget

    need = minimum_budget(costs, min_samples)
    low = float(np.min(budgets))
    if not np.all(np.isfinite(budgets)) or low <= 0:
        raise ValueError(f"{option} must be finite and > 0 seconds; got {np.asarray(budgets).tolist()}")
    from ntk_mlft.allocation.optimize import MAX_COUNT

    high = float(np.max(budgets))
    if high / costs.cost_seconds[-1] > MAX_COUNT:
        raise ValueError(f"{option}: {high:.6g} s buys {high / costs.cost_seconds[-1]:.3g} finest-level samples "
                         f"({costs.cost_seconds[-1]:.6g} s each), more than the largest count supported "
                         f"({MAX_COUNT:.0e} per level); give budgets in the cost table's unit (seconds)")
    if low < need * (1 - 1e-12):
        raise ValueError(f"{option}: {low:.6g} s is below the cheapest admissible allocation ({min_samples} "
                         f"finest-level sample(s) at {costs.cost_seconds[-1]:.6g} s each; cost table "
                         f"{', '.join(f'{c:.3g}' for c in costs.cost_seconds)} s per sample): the minimum budget "
                         f"needed is {need:.6g} s" + (" (or give --budget-samples: finest samples' worth)"
                                                            if option == "--budgets" else ""))


def check_model_options(args: argparse.Namespace) -> None:
    """The error-model options' values, whichever model they end up choosing (a bad value is an
    error even where the option does not apply, never silently ignored)."""
    from ntk_mlft._checks import check_positive_int, check_positive_scalar

    check_positive_scalar("--ridge", args.ridge, allow_zero=True)
    check_positive_int("--pilot-size", args.pilot_size)
    check_positive_int("--n-unlabeled", args.n_unlabeled, allow_zero=True)
    if args.levels is not None:
        check_positive_int("--levels", args.levels)


def model_and_costs(args: argparse.Namespace, on_costs: Callable[[Any], None] | None = None
                    ) -> tuple[Any, Any, dict[str, Any]]:
    """Error model, cost table and labels (problem, kernel, model source; pool size on estimator
    paths) from the parsed options; see the module docstring for the default model.

    ``on_costs(costs)`` runs as soon as the cost table is read or measured, before the pilot and
    the estimator (minutes of work): budget checks that need the costs fail fast there."""
    from ntk_mlft._checks import check_choice
    from ntk_mlft.allocation.costs import CostTable
    from ntk_mlft.architectures import available_architectures

    check_model_options(args)
    if not args.power_law:  # before any pilot solve
        check_choice("--arch", args.arch, available_architectures())
    costs = CostTable.from_csv(args.costs) if args.costs else None
    if costs is not None and on_costs is not None:
        on_costs(costs)
    if args.power_law:
        if costs is None:
            raise ValueError("--power-law needs --costs (a cost table CSV)")
        return parse_power_law(args.power_law, costs.n_levels), costs, {"problem": "user model", "kernel": "power law",
                                                        "model_source": "--power-law"}
    if args.pilot:
        from ntk_mlft.estimators.pilot import load_pilot
        from ntk_mlft.studies.error_model import estimator_from_pilot_file, sample_cap

        if costs is None:
            raise ValueError("--pilot needs --costs (a cost table CSV)")
        pilot = load_pilot(args.pilot)
        if pilot.n_levels != costs.n_levels:
            raise ValueError(f"pilot file {args.pilot} has {pilot.n_levels} levels (y_level1..y_level{pilot.n_levels}) "
                             f"but the cost table {args.costs} has {costs.n_levels}; give one cost row per pilot level")
        model, pool = estimator_from_pilot_file(pilot, args.arch, args.ridge, args.seed)
        return model, costs, {"problem": str(args.pilot), "kernel": args.arch, "pool": pool,
                              "cap_per_level": sample_cap(pool), "model_source": f"--pilot {args.pilot}"}
    return _problem_model(args, costs, on_costs)


def _problem_model(args: argparse.Namespace, costs: Any, on_costs: Callable[[Any], None] | None
                   ) -> tuple[Any, Any, dict[str, Any]]:
    """``--problem`` (or the default problem): practical estimator (paired pilot + unlabeled inputs;
    pilot alone with ``--n-unlabeled 0``); costs measured if absent."""
    from ntk_mlft.problems import DEFAULT_PROBLEM, get_problem, measure_costs
    from ntk_mlft.studies.error_model import (estimator_from_pilot_file, pilot_from_problem,
                                              practical_estimator_from_problem, sample_cap)

    name = args.problem or DEFAULT_PROBLEM
    levels = args.levels if args.levels is not None else (None if costs is None else costs.n_levels)
    problem = get_problem(name, levels=levels)
    if costs is None:
        costs = measure_costs(problem, seed=args.seed)
        if on_costs is not None:
            on_costs(costs)
    elif costs.n_levels != problem.n_levels:
        raise ValueError(f"the cost table has {costs.n_levels} levels but --levels {problem.n_levels} was given; "
                         "drop --levels or give a table with one row per level")
    grids = [int(problem.grid(l)) for l in range(1, problem.n_levels + 1)]
    source = (f"--problem {name}" if args.problem else
              f"default problem {name} (no --power-law/--pilot/--problem given)")
    if [int(g) for g in costs.grid] != grids:
        source += f"; its grids {grids} differ from the cost table's {[int(g) for g in costs.grid]}"
    if args.n_unlabeled == 0:
        pilot = pilot_from_problem(problem, args.pilot_size, seed=args.seed)
        model, pool = estimator_from_pilot_file(pilot, args.arch, args.ridge, args.seed)
        cap = sample_cap(pool)
    else:
        setup = practical_estimator_from_problem(problem, args.arch, args.ridge, n_pilot=args.pilot_size,
                                                 n_unlabeled=args.n_unlabeled, seed=args.seed)
        model, pool, cap = setup.model, setup.model.pool_size, setup.max_samples
        source += f"; {setup.n_pilot} paired pilot solves + {setup.n_unlabeled} unlabeled inputs"
    return model, costs, {"problem": problem.name, "kernel": args.arch, "pool": int(pool),
                          "cap_per_level": int(cap), "model_source": source}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.cli._arg_types import positive_float, positive_int

    add_model_arguments(parser)
    parser.add_argument("--budget", type=positive_float, required=True, help="budget in seconds of solver time")
    parser.add_argument("--min-samples", type=positive_int, default=1, help="least samples of every used level")
    parser.add_argument("--max-samples", type=positive_int, default=None,
                        help="cap per level for the optimum and both baselines; estimator paths default to "
                             "workflow.MAX_COVERAGE of the estimator's pool (pilot + unlabeled inputs): a "
                             "pool-based estimate is only accurate well below it")


def cap_per_level(args: argparse.Namespace, labels: dict[str, Any]) -> int | None:
    """``--max-samples``, or the estimator path's :func:`ntk_mlft.studies.error_model.sample_cap` of its pool."""
    if getattr(args, "max_samples", None) is not None:
        return args.max_samples
    return labels.get("cap_per_level")


def allocation_report(model: Any, costs: Any, budget: float, min_samples: int = 1,
                      max_samples: int | None = None) -> dict[str, Any]:
    """Optimal allocation, both baselines (same ``max_samples`` cap) and the gain, as a JSON-able dict."""
    from ntk_mlft.allocation import equal_split_allocation, optimize_allocation, single_level_allocation
    from ntk_mlft.allocation.costs import as_cost_array

    c = as_cost_array(costs, int(model.n_levels))
    best = optimize_allocation(model, c, budget, min_samples=min_samples, max_samples=max_samples)
    single = single_level_allocation(model, c, budget, max_samples=max_samples)
    equal = (equal_split_allocation(model, c, budget, max_samples=max_samples)
             if budget >= c.size * c[-1] else None)
    grid = getattr(costs, "grid", None)
    return {
        "optimal": best.to_dict(),
        "single_level": single.to_dict(),
        "equal_split": None if equal is None else equal.to_dict(),
        "gain_over_single_level": (single.predicted_error / best.predicted_error
                                   if best.predicted_error > 0 else float("inf")),
        "grid": None if grid is None else [int(g) for g in grid],
        "max_samples": max_samples,
    }


def _spent(a: dict[str, Any]) -> str:
    line = f"spends {a['cost_seconds']:.6g} of {a['budget_seconds']:.6g} s"
    if a["unspent_reason"] != "none":
        line += f"; {a['unspent_seconds']:.6g} s unspent ({a['unspent_reason']})"
    return line


def format_table(report: dict[str, Any], labels: dict[str, Any]) -> str:
    """Plain-text table: level, grid, cost/sample, N_l, spend, % of budget; unspent budget and why;
    then both baselines (with their spend) and the gain."""
    opt = report["optimal"]
    n = len(opt["counts"])
    grid = report["grid"] or ["-"] * n
    cap = report.get("max_samples")
    lines = [f"MLFT allocation — {labels['problem']}, kernel {labels['kernel']}, "
             f"budget {opt['budget_seconds']:.6g} s"]
    if labels.get("model_source"):
        lines.append(f"error model: {labels['model_source']}")
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
    from ntk_mlft.studies.error_model import COVERAGE_WARNING

    coverage = report.get("coverage_of_pool")
    if coverage is not None and coverage > COVERAGE_WARNING:
        lines.append(f"note: the levels' samples together are {100 * coverage:.0f}% of the estimator's pool "
                     f"({labels['pool']} inputs); above {100 * COVERAGE_WARNING:.0f}% the fresh-input prediction "
                     "of multi-level allocations tends to be optimistic (up to ~20% in "
                     "analysis/results/estimator_accuracy.md): a larger --n-unlabeled pool avoids it")
    lines.append(f"predicted relative MSE: {opt['predicted_error']:.4g} (optimal MLFT, "
                 f"integer {opt['integer_status']}, continuous {opt['status']})")
    single = report["single_level"]
    lines.append(f"single level (finest only, N_L = {single['counts'][-1]}, {_spent(single)}): "
                 f"{single['predicted_error']:.4g}  ->  gain x{report['gain_over_single_level']:.3g}")
    if report["equal_split"] is not None:
        eq = report["equal_split"]
        lines.append(f"equal split (N = {tuple(eq['counts'])}, {_spent(eq)}): {eq['predicted_error']:.4g}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    model, costs, labels = model_and_costs(
        args, on_costs=lambda table: check_budgets([args.budget], table, args.min_samples, "--budget"))
    report = allocation_report(model, costs, args.budget, args.min_samples, cap_per_level(args, labels))
    report.update(labels)
    if "pool" in labels:
        report["coverage_of_pool"] = sum(report["optimal"]["counts"]) / labels["pool"]
    if args.out:
        from ntk_mlft._io import write_json_atomic

        write_json_atomic(args.out, report)
    if args.json:
        print(strict_json(report, indent=2))
    else:
        print(format_table(report, labels))
    return 0
