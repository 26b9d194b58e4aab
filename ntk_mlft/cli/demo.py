"""``ntk-mlft demo``: the practical MLFT pipeline on a built-in problem, as a report folder.

Steps: measure per-sample solver costs → practical error model (``--pilot-size`` paired pilot
solves + ``--n-unlabeled`` cheap unlabeled inputs, :func:`ntk_mlft.studies.error_model.practical_estimator_from_problem`;
it predicts the fresh-input error) → optimal allocation at a budget that buys ``--budget-samples``
finest-level samples (counts capped at :func:`ntk_mlft.studies.error_model.sample_cap` of the model's pool)
→ error-vs-budget curves → Monte-Carlo check on an INDEPENDENT labelled pool of ``--check-size``
paired inputs (kernel regression with random sample sets drawn from it, no input in two levels'
sets, as inputs drawn from a continuous distribution give; the error on the check points outside
the training sets is the fresh-input error the model predicts) → ``summary.md`` with what this
does and does not show.

The pilot's solves are part of the cost of using the method; the report states them as a
fraction of the budget. The check pool is not: it exists only to validate the estimate.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._checks import check_error_estimate, check_memory
from ntk_mlft._format import plus_minus
from ntk_mlft._io import strict_json

HELP = "run the practical pipeline (costs, pilot + unlabeled inputs, NTK estimator, optimal allocation, curves, " \
       "Monte-Carlo check on an independent pool) on a built-in problem"
OUT_KIND = "folder"  # --out is checked before any work (cli._errors.check_out_path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.cli._arg_types import int_at_least, non_negative_float, positive_int

    parser.add_argument("--problem", default=None, help="problem name (default: the built-in default problem)")
    parser.add_argument("--levels", type=positive_int, default=None, help="number of levels (problem default if omitted)")
    parser.add_argument("--arch", default="mlp-relu-3", help="architecture whose NTK is used")
    parser.add_argument("--pilot-size", type=positive_int, default=120, help="paired pilot solves (every level, same inputs)")
    parser.add_argument("--n-unlabeled", type=positive_int, default=3000,
                        help="cheap unlabeled inputs for the spectrum (no solves); counts per level are capped at "
                             "workflow.MAX_COVERAGE of pilot + unlabeled inputs")
    parser.add_argument("--budget-samples", type=positive_int, default=600,
                        help="the demo budget buys this many finest-level samples")
    parser.add_argument("--check-size", type=positive_int, default=3000,
                        help="independent paired inputs solved only for the Monte-Carlo check (disjoint level sets "
                             "need more than the largest allocation's total)")
    parser.add_argument("--n-budgets", type=int_at_least(2), default=8,
                        help="budgets on the error-vs-budget curve")
    parser.add_argument("--trials", type=int_at_least(2), default=6,
                        help="Monte-Carlo repetitions per allocation")
    parser.add_argument("--ridge", type=non_negative_float, default=1e-4, help="ridge relative to the mean kernel diagonal")


def _costs(problem: Any, seed: int) -> tuple[Any, str]:
    """Measured cost table, or (if timing noise breaks monotonicity twice) costs ∝ grid size."""
    from ntk_mlft.allocation.costs import CostTable
    from ntk_mlft.problems import measure_costs

    try:
        return measure_costs(problem, repeats=3, seed=seed), "measured"
    except ValueError:
        pass
    try:
        return measure_costs(problem, repeats=5, n_samples=16, seed=seed), "measured (second attempt)"
    except ValueError as err:
        grid = np.array([problem.grid(l) for l in range(1, problem.n_levels + 1)], dtype=float)
        table = CostTable.from_costs(1e-4 * grid / grid[0], grid=grid.astype(int))
        return table, f"modelled as proportional to the grid size (timing too noisy: {err})"


def _learning_curves(model: Any, base: np.ndarray, cap: int, k: np.ndarray, targets: np.ndarray,
                     ridge: float, args: argparse.Namespace, problem: str, budget: float) -> Any:
    """Predicted per-level learning curves around ``base`` and their Monte-Carlo check."""
    from ntk_mlft.reports.curves import LearningCurves
    from ntk_mlft.estimators import montecarlo_error

    ns = np.unique(np.geomspace(2, cap, 5).astype(int)).astype(float)
    rows = []
    for lvl in range(model.n_levels):
        for n in ns:
            row = base.copy()
            row[lvl] = n
            rows.append(row)
    rows = np.array(rows)
    pred = model.error_many(rows).reshape(model.n_levels, ns.size)
    mc = montecarlo_error(k, targets, rows, ridge=ridge, n_trials=max(2, args.trials // 2), seed=args.seed + 1,
                          sets=_sets(rows, k.shape[0]))
    return LearningCurves(n=ns, predicted=pred, base_counts=base, measured=mc.fresh_mean.reshape(pred.shape),
                          measured_std=mc.fresh_stderr.reshape(pred.shape), problem=problem, kernel=args.arch,
                          budget=budget)


def _sets(counts: np.ndarray, n_check: int) -> str:
    """Disjoint sets (what fresh inputs give) when the check pool holds every row's total, else
    independent ones (levels may then share check points)."""
    return "disjoint" if np.all(np.sum(counts, axis=1) < n_check) else "independent"


def run(args: argparse.Namespace) -> int:
    from ntk_mlft._io import write_json_atomic, write_text_atomic
    from ntk_mlft._progress import progress
    from ntk_mlft.allocation import equal_split_allocation, optimize_allocation, single_level_allocation
    from ntk_mlft.reports.curves import Comparison, budget_curves
    from ntk_mlft.estimators import montecarlo_error
    from ntk_mlft.reports.plotting import (plot_allocation, plot_error_vs_budget, plot_learning_curves,
                                   plot_predicted_vs_measured, save_figure)
    from ntk_mlft.problems import DEFAULT_PROBLEM, get_problem
    from ntk_mlft.studies.error_model import check_pool, practical_estimator_from_problem

    t0 = time.perf_counter()
    for n, option in ((args.pilot_size + args.n_unlabeled, "--pilot-size + --n-unlabeled"), (args.check_size, "--check-size")):
        check_memory(f"the {n} x {n} kernel of {option}", 3 * 8.0 * n * n, f"lower {option}")  # before any solve
    out = Path(args.out or "results/demo")
    name = args.problem or DEFAULT_PROBLEM
    problem = get_problem(name, levels=args.levels)
    steps = iter(progress(range(6), total=6, desc="demo"))
    next(steps)
    costs, cost_note = _costs(problem, args.seed)
    c = costs.cost_seconds
    next(steps)
    t_model = time.perf_counter()
    setup = practical_estimator_from_problem(problem, args.arch, args.ridge, n_pilot=args.pilot_size,
                                             n_unlabeled=args.n_unlabeled, seed=args.seed, n_boot=20)
    t_model = time.perf_counter() - t_model
    model, cap = setup.model, setup.max_samples
    budget = float(args.budget_samples * c[-1])
    pilot_cost = float(args.pilot_size * c.sum())
    next(steps)
    best = optimize_allocation(model, costs, budget, max_samples=cap)
    single = single_level_allocation(model, costs, budget, max_samples=cap)
    equal = equal_split_allocation(model, costs, budget, max_samples=cap) if budget >= c.size * c[-1] else None
    budgets = np.geomspace(2 * c[-1], 4 * budget, args.n_budgets)
    curves = budget_curves(model, costs, budgets, problem=problem.name, kernel=args.arch, max_samples=cap)
    next(steps)
    allocs = {"optimal": best, "single level": single}
    if equal is not None:
        allocs["equal split"] = equal
    counts = np.array([a.counts for a in allocs.values()], dtype=float)
    band = model.error_with_uncertainty(counts, level=0.9)
    check_error_estimate("the predicted errors of the demo's allocations", band["error"])
    k_check, y_check = check_pool(problem, args.check_size, args.arch, seed=args.seed)
    sets = _sets(counts, args.check_size)
    mc = montecarlo_error(k_check, y_check, counts, ridge=setup.ridge, n_trials=args.trials, seed=args.seed,
                          sets=sets)
    comparison = Comparison(predicted=band["error"], measured=mc.fresh_mean, labels=tuple(allocs),
                            measured_std=mc.fresh_stderr, problem=problem.name, kernel=args.arch,
                            budgets=np.full(len(allocs), budget))
    lcurves = _learning_curves(model, np.maximum(best.counts, 1).astype(float), cap, k_check, y_check,
                               setup.ridge, args, problem.name, budget)
    next(steps)
    files = []
    grid = costs.grid
    files += save_figure(plot_error_vs_budget(curves), out / "error_vs_budget")
    files += save_figure(plot_allocation(best, problem=problem.name, kernel=args.arch, grid=grid), out / "allocation")
    files += save_figure(plot_learning_curves(lcurves), out / "learning_curves")
    files += save_figure(plot_predicted_vs_measured(comparison), out / "predicted_vs_measured")
    files.append(costs.to_csv(out / "costs.csv"))
    files.append(curves.to_csv(out / "curves.csv"))
    report = {
        "problem": problem.name, "levels": problem.n_levels, "grid": grid.tolist(), "kernel": args.arch,
        "seed": args.seed, "cost_seconds": c.tolist(), "cost_source": cost_note,
        "error_model": "PilotEstimator (diagonal-normalised spectral estimate on pilot + unlabeled inputs, "
                       "fresh-input error)",
        "pilot_size": args.pilot_size, "n_unlabeled": args.n_unlabeled, "pool_size": model.pool_size,
        "pilot_cost_seconds": pilot_cost, "pilot_cost_fraction_of_budget": pilot_cost / budget,
        "max_samples_per_level": cap, "ridge": setup.ridge,
        "coverage_of_pool": float(best.counts.sum()) / model.pool_size, "ridge_relative": args.ridge,
        "estimator_seconds": t_model, "diagnostics": model.diagnostics(),
        "budget_seconds": budget, "budget_finest_samples": args.budget_samples, "check_size": args.check_size,
        "allocations": {key: a.to_dict() for key, a in allocs.items()},
        "prediction": {key: {"error": float(e), "std": float(s), "lower90": float(lo), "upper90": float(hi)}
                       for key, e, s, lo, hi in zip(allocs, band["error"], band["std"], band["lower"],
                                                    band["upper"])},
        "monte_carlo_sets": sets,
        "monte_carlo": {key: {"fresh_mean": float(f), "fresh_stderr": float(fs), "pool_mean": float(m),
                              "pool_stderr": float(s)}
                        for key, m, s, f, fs in zip(allocs, mc.mean, mc.stderr, mc.fresh_mean, mc.fresh_stderr)},
        "gain_over_single_level_predicted": single.predicted_error / best.predicted_error,
        "gain_over_single_level_measured": float(mc.fresh_mean[1] / mc.fresh_mean[0]),
        "gain_over_single_level_measured_stderr": float(_ratio_stderr(mc.fresh_per_trial[1], mc.fresh_per_trial[0])),
        "curves": curves.to_dict(),
        "runtime_seconds": time.perf_counter() - t0,
    }
    files.append(write_json_atomic(out / "report.json", report))
    files.append(write_text_atomic(out / "summary.md", _summary(report)))
    for _ in steps:
        pass
    if args.json:
        print(strict_json({**report, "files": [str(f) for f in files]}, indent=2))
    elif not args.quiet:
        print((out / "summary.md").read_text())
        print(f"wrote {len(files)} files to {out}")
    return 0


def _coverage_note(r: dict[str, Any]) -> list[str]:
    """A bullet when the optimum's samples cover more than ``COVERAGE_WARNING`` of the pool."""
    from ntk_mlft.studies.error_model import COVERAGE_WARNING

    cov = r["coverage_of_pool"]
    if cov <= COVERAGE_WARNING:
        return []
    return [f"- The optimum's samples are {100 * cov:.0f}% of the pool; above {100 * COVERAGE_WARNING:.0f}% the "
            "fresh-input prediction of multi-level allocations tends to be optimistic (up to ~20% in "
            "`analysis/results/estimator_accuracy.md`); the Monte-Carlo column is the check."]


def _unspent_notes(r: dict[str, Any]) -> list[str]:
    """A line per allocation that leaves part of the budget unspent: how much and why (the
    rule's ``unspent_reason``: a sample that does not fit, or the per-level cap)."""
    notes = []
    for key, a in r["allocations"].items():
        if a["unspent_reason"] != "none" and a["unspent_seconds"] > 1e-9 * a["budget_seconds"]:
            notes.append(f"{key}: {a['unspent_seconds']:.3g} s of the budget "
                         f"({100 * a['unspent_seconds'] / a['budget_seconds']:.1f}%) unspent — {a['unspent_reason']}")
    return ["", "Unspent budget:", *(f"- {n}" for n in notes)] if notes else []


def _ratio_stderr(num: np.ndarray, den: np.ndarray) -> float:
    """Standard error of mean(num) / mean(den) over trials (delta method, independent draws)."""
    a, b = float(np.mean(num)), float(np.mean(den))
    va, vb = np.var(num, ddof=1) / num.size, np.var(den, ddof=1) / den.size
    return float(abs(a / b) * np.sqrt(va / a ** 2 + vb / b ** 2))


def _agreement_note(r: dict[str, Any]) -> str:
    """Generated sentences: how far the predictions are from the fresh-input Monte-Carlo errors,
    and whether the predicted gain is the measured one within two standard errors plus 10%."""
    rel = {key: r["prediction"][key]["error"] / m["fresh_mean"] - 1 for key, m in r["monte_carlo"].items()}
    worst = max(rel, key=lambda key: abs(rel[key]))
    pred, meas, se = (r["gain_over_single_level_predicted"], r["gain_over_single_level_measured"],
                      r["gain_over_single_level_measured_stderr"])
    text = (f"Predicted vs Monte-Carlo fresh-input error: {', '.join(f'{k} {v:+.0%}' for k, v in rel.items())} "
            f"(largest: {worst}).")
    if abs(pred - meas) <= 2 * se + 0.1 * meas:
        return text + f" The predicted gain x{pred:.3g} matches the measured x{plus_minus(meas, se, '.3g')}."
    return text + (f" Caution: the predicted gain x{pred:.3g} differs from the measured "
                   f"x{plus_minus(meas, se, '.3g')} "
                   "by more than two standard errors plus 10%; see the deviations above and "
                   "`analysis/results/estimator_accuracy.md` for the estimator's documented accuracy.")


def _summary(r: dict[str, Any]) -> str:
    opt = r["allocations"]["optimal"]
    gain = plus_minus(r["gain_over_single_level_measured"], r["gain_over_single_level_measured_stderr"], ".3g")
    lines = [
        f"# MLFT demo — {r['problem']} ({r['levels']} levels), NTK of `{r['kernel']}`",
        "",
        f"Budget: {r['budget_seconds']:.4g} s of solver time (= {r['budget_finest_samples']} finest-level samples). "
        f"Costs per sample {', '.join(f'{v * 1e3:.3g} ms' for v in r['cost_seconds'])} ({r['cost_source']}).",
        f"Error model: {r['pilot_size']} paired pilot solves (every level) + {r['n_unlabeled']} unlabeled inputs "
        f"(no solves); the pilot cost {r['pilot_cost_seconds']:.3g} s = "
        f"{100 * r['pilot_cost_fraction_of_budget']:.0f}% of the budget. Built in {r['estimator_seconds']:.0f} s.",
        "",
        "| level | grid | N_l | spend [s] | share |",
        "| --- | --- | --- | --- | --- |",
    ]
    for l, (g, n, s, sh) in enumerate(zip(r["grid"], opt["counts"], opt["spend_seconds"], opt["share"]), start=1):
        lines.append(f"| {l} | {g} | {n if n else 'skipped'} | {s:.4g} | {100 * sh:.0f}% |")
    lines += _unspent_notes(r)
    lines += ["", "| allocation | counts | predicted rel. MSE, fresh inputs [90% interval] "
              "| Monte-Carlo, fresh inputs (± s.e.) |", "| --- | --- | --- | --- |"]
    for key, a in r["allocations"].items():
        p, m = r["prediction"][key], r["monte_carlo"][key]
        lines.append(f"| {key} | {tuple(a['counts'])} | {p['error']:.3g} [{p['lower90']:.3g}, {p['upper90']:.3g}] | "
                     f"{plus_minus(m['fresh_mean'], m['fresh_stderr'], '.3g')} |")
    lines += [
        "",
        f"Predicted gain over spending everything on the finest level: x{r['gain_over_single_level_predicted']:.3g}; "
        f"measured on fresh inputs: x{gain}.",
        "",
        _agreement_note(r),
        "",
        "What this does and does not show:",
        f"- The error model sees only the {r['pilot_size']} pilot pairs and {r['n_unlabeled']} unlabeled inputs. "
        f"It predicts the error at inputs outside the training sets (the closed form on its pool of "
        f"{r['pool_size']} points with the training points removed, `ntk_mlft.estimators.fresh`); counts are capped "
        f"at {r['max_samples_per_level']} per level, where that prediction is documented accurate.",
        *_coverage_note(r),
        f"- The Monte-Carlo column uses an independent pool of {r['check_size']} inputs solved at every level "
        "(validation only, not part of the method's cost): kernel regression (the infinite-width NTK limit) with "
        f"random sample sets drawn from it ({r['monte_carlo_sets']} sets), error on the check points outside the "
        "training sets — what a user deploying the network meets.",
        "- It does not validate finite-width training (see `ntk-mlft validate`), nor problems other than this one "
        "(see `analysis/results/estimator_accuracy.md`).",
        f"- Integer status of the optimal allocation: {opt['integer_status']} (the estimator is not separable; "
        "the answer is a local optimum of the exact estimator after a convex surrogate).",
        f"- Estimator diagnostics: resolved rank per level {r['diagnostics']['resolved_rank']}, unresolved (tail) "
        f"power fraction {[round(v, 3) for v in r['diagnostics']['tail_fraction']]}.",
        "",
        "Figures: `error_vs_budget.png`, `allocation.png`, `learning_curves.png`, `predicted_vs_measured.png` "
        f"(and PDF); numbers: `report.json`, `curves.csv`, `costs.csv`. Runtime {r['runtime_seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)
