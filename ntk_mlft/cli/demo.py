"""``ntk-mlft demo``: the practical MLFT pipeline on a built-in problem, as a report folder.

Steps: measure per-sample solver costs → practical error model (``--pilot-size`` paired pilot
solves + ``--n-unlabeled`` cheap unlabeled inputs, :func:`ntk_mlft.studies.error_model.build_error_model`;
it predicts the fresh-input error) → every rule of :data:`ntk_mlft.allocation.RULES` at a budget
that buys ``--budget-samples`` finest-level samples (counts capped at
:func:`ntk_mlft.studies.error_model.sample_cap` of the model's pool)
→ error-vs-budget curves → Monte-Carlo check on an INDEPENDENT labelled pool of ``--check-size``
paired inputs (kernel regression with random sample sets drawn from it, no input in two levels'
sets, as inputs drawn from a continuous distribution give; the error on the check points outside
the training sets is the fresh-input error the model predicts) → ``summary.md`` with what this
does and does not show.

The pilot's solves are part of the cost of using the method; the report states them as a
fraction of the budget. The check pool is not: it exists only to validate the estimate.

Contract: :func:`compute` returns a frozen :class:`DemoResult` (no files, no printing);
:func:`summary_markdown` and :func:`figures` render it; :func:`write` writes the report folder
atomically (``report.json`` is :meth:`DemoResult.to_dict`). Random streams are the named streams of
:mod:`ntk_mlft._seeds` under ``--seed``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
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
    from ntk_mlft.cli._arg_types import int_at_least, positive_int
    from ntk_mlft.cli._model_args import add_estimator_arguments

    parser.add_argument("--problem", default=None, help="problem name (default: the built-in default problem)")
    parser.add_argument("--levels", type=positive_int, default=None,
                        help="number of levels (problem default if omitted)")
    add_estimator_arguments(parser)
    parser.add_argument("--budget-samples", type=positive_int, default=600,
                        help="the demo budget buys this many finest-level samples")
    parser.add_argument("--check-size", type=positive_int, default=3000,
                        help="independent paired inputs solved only for the Monte-Carlo check (disjoint level sets "
                             "need more than the largest allocation's total)")
    parser.add_argument("--n-budgets", type=int_at_least(2), default=8,
                        help="budgets on the error-vs-budget curve")
    parser.add_argument("--trials", type=int_at_least(2), default=6,
                        help="Monte-Carlo repetitions per allocation")


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


def _sets(counts: np.ndarray, n_check: int) -> str:
    """Disjoint sets (what fresh inputs give) when the check pool holds every row's total, else
    independent ones (levels may then share check points)."""
    return "disjoint" if np.all(np.sum(counts, axis=1) < n_check) else "independent"


def _ratio_stderr(num: np.ndarray, den: np.ndarray) -> float:
    """Standard error of mean(num) / mean(den) over trials (delta method, independent draws)."""
    a, b = float(np.mean(num)), float(np.mean(den))
    va, vb = np.var(num, ddof=1) / num.size, np.var(den, ddof=1) / den.size
    return float(abs(a / b) * np.sqrt(va / a ** 2 + vb / b ** 2))


@dataclass(frozen=True)
class DemoResult:
    """Everything the demo computed.

    Attributes:
      problem, levels, kernel, seed: what ran. costs: the ``CostTable``; cost_source: how it was obtained.
      setup: the :class:`~ntk_mlft.studies.error_model.ErrorModelSetup` (model, pool, ridge);
      estimator_seconds: wall time to build it.
      budget_finest_samples: the budget in finest samples' worth; rules: the
      :class:`~ntk_mlft.allocation.RuleComparison` at that budget (feasible rules only are checked).
      prediction: the model's ``error_with_uncertainty`` (90 %) of the feasible rules' counts.
      check_size: the independent check pool's size; monte_carlo: its
      :class:`~ntk_mlft.estimators.montecarlo.MonteCarloResult` (rows = feasible rules);
      monte_carlo_sets: "disjoint" or "independent".
      curves: ``BudgetCurves``; learning_curves: ``LearningCurves`` with their Monte-Carlo check;
      comparison: predicted vs Monte-Carlo ``Comparison``; runtime_seconds: total wall time.
      self_check: the :class:`~ntk_mlft.studies.self_check.SetupCheck` of the feasible rules
      (closed form vs Monte-Carlo on the pilot pairs, as ``allocate`` and ``curves`` run it).
    """

    problem: str
    levels: int
    kernel: str
    seed: int
    costs: Any
    cost_source: str
    setup: Any
    estimator_seconds: float
    budget_finest_samples: int
    rules: Any
    prediction: dict
    check_size: int
    monte_carlo: Any
    monte_carlo_sets: str
    curves: Any
    learning_curves: Any
    comparison: Any
    runtime_seconds: float
    self_check: Any

    @property
    def budget(self) -> float:
        return self.rules.budget

    @property
    def allocations(self) -> dict[str, Any]:
        """The feasible rules' allocations, in :data:`~ntk_mlft.allocation.RULES` order."""
        return self.rules.feasible()

    @property
    def pilot_cost(self) -> float:
        """Seconds of solver time the pilot's paired solves cost."""
        return float(self.setup.n_pilot * self.costs.cost_seconds.sum())

    @property
    def gain_predicted(self) -> float:
        return self.rules.gain("single")

    def _row(self, rule: str) -> int:
        return list(self.allocations).index(rule)

    @property
    def gain_measured(self) -> tuple[float, float]:
        """Monte-Carlo fresh-input error single / optimal and its standard error."""
        mc, s, o = self.monte_carlo, self._row("single"), self._row("optimal")
        return (float(mc.fresh_mean[s] / mc.fresh_mean[o]),
                _ratio_stderr(mc.fresh_per_trial[s], mc.fresh_per_trial[o]))

    def to_dict(self) -> dict[str, Any]:
        """``report.json``."""
        mc, band, allocs = self.monte_carlo, self.prediction, self.allocations
        gain, gain_se = self.gain_measured
        return {
            "problem": self.problem, "levels": self.levels, "grid": self.costs.grid.tolist(), "kernel": self.kernel,
            "seed": self.seed, "cost_seconds": self.costs.cost_seconds.tolist(), "cost_source": self.cost_source,
            "error_model": self.setup.describe(), "pilot_size": self.setup.n_pilot,
            "n_unlabeled": self.setup.n_unlabeled, "pool_size": self.setup.pool_size,
            "pilot_cost_seconds": self.pilot_cost, "pilot_cost_fraction_of_budget": self.pilot_cost / self.budget,
            "max_samples_per_level": self.setup.max_samples, "ridge_relative": self.setup.ridge_relative,
            "ridge_absolute": self.setup.ridge_absolute,
            "coverage_of_pool": self.setup.coverage(allocs["optimal"].counts),
            "estimator_seconds": self.estimator_seconds, "diagnostics": self.setup.diagnostics,
            "budget_seconds": self.budget, "budget_finest_samples": self.budget_finest_samples,
            "check_size": self.check_size,
            "allocations": {key: a.to_dict() for key, a in allocs.items()},
            "prediction": {key: {"error": float(e), "std": float(s), "lower90": float(lo), "upper90": float(hi)}
                           for key, e, s, lo, hi in zip(allocs, band["error"], band["std"], band["lower"],
                                                        band["upper"])},
            "monte_carlo_sets": self.monte_carlo_sets,
            "monte_carlo": {key: {"fresh_mean": float(f), "fresh_stderr": float(fs), "pool_mean": float(m),
                                  "pool_stderr": float(s)}
                            for key, m, s, f, fs in zip(allocs, mc.mean, mc.stderr, mc.fresh_mean, mc.fresh_stderr)},
            "gain_over_single_level_predicted": self.gain_predicted,
            "gain_over_single_level_measured": gain,
            "gain_over_single_level_measured_stderr": gain_se,
            "curves": self.curves.to_dict(),
            **self.self_check.as_dict(),
            "runtime_seconds": self.runtime_seconds,
        }


def _learning_curves(model: Any, base: np.ndarray, cap: int, k: np.ndarray, targets: np.ndarray,
                     ridge: float, trials: int, seed: int, problem: str, kernel: str, budget: float) -> Any:
    """Predicted per-level learning curves around ``base`` and their Monte-Carlo check."""
    from ntk_mlft._seeds import derived_seed
    from ntk_mlft.estimators import montecarlo_error
    from ntk_mlft.reports.curves import LearningCurves

    ns = np.unique(np.geomspace(2, cap, 5).astype(int)).astype(float)
    rows = []
    for lvl in range(model.n_levels):
        for n in ns:
            row = base.copy()
            row[lvl] = n
            rows.append(row)
    rows = np.array(rows)
    pred = model.error_many(rows).reshape(model.n_levels, ns.size)
    mc = montecarlo_error(k, targets, rows, ridge=ridge, n_trials=max(2, trials // 2),
                          seed=derived_seed(seed, "learning curves"), sets=_sets(rows, k.shape[0]))
    return LearningCurves(n=ns, predicted=pred, base_counts=base, measured=mc.fresh_mean.reshape(pred.shape),
                          measured_std=mc.fresh_stderr.reshape(pred.shape), problem=problem, kernel=kernel,
                          budget=budget)


def compute(args: argparse.Namespace) -> DemoResult:
    """The demo's computation (module docstring) from the parsed options; writes nothing."""
    from ntk_mlft._progress import progress
    from ntk_mlft._seeds import derived_seed
    from ntk_mlft.allocation import compare_rules
    from ntk_mlft.cli._model_args import check_budgets, problem_error_model
    from ntk_mlft.estimators import montecarlo_error
    from ntk_mlft.problems import DEFAULT_PROBLEM, get_problem
    from ntk_mlft.reports.curves import Comparison, budget_curves
    from ntk_mlft.studies.error_model import check_pool
    from ntk_mlft.studies.self_check import check_setup

    t0 = time.perf_counter()
    if args.n_unlabeled == 0:  # the pilot-only (spectral) estimator has no 90% interval to report
        raise ValueError("--n-unlabeled must be >= 1 for the demo: its 90% intervals come from the practical "
                         "estimator (pilot + unlabeled inputs); `ntk-mlft allocate --n-unlabeled 0` uses the "
                         "pilot inputs alone")
    for n, option in ((args.pilot_size + args.n_unlabeled, "--pilot-size + --n-unlabeled"),
                      (args.check_size, "--check-size")):
        check_memory(f"the {n} x {n} kernel of {option}", 3 * 8.0 * n * n, f"lower {option}")  # before any solve
    problem = get_problem(args.problem or DEFAULT_PROBLEM, levels=args.levels)
    steps = iter(progress(range(6), total=6, desc="demo"))
    next(steps)
    costs, cost_note = _costs(problem, args.seed)
    c = costs.cost_seconds
    check_budgets([float(args.budget_samples * c[-1])], costs, 1, "--budget-samples")  # before the error model
    next(steps)
    t_model = time.perf_counter()
    setup = problem_error_model(problem, args, n_boot=20)
    t_model = time.perf_counter() - t_model
    model, cap = setup.model, setup.max_samples
    budget = float(args.budget_samples * c[-1])
    next(steps)
    rules = compare_rules(model, costs, budget, max_samples=cap)
    budgets = np.geomspace(2 * c[-1], 4 * budget, args.n_budgets)
    curves = budget_curves(model, costs, budgets, problem=problem.name, kernel=args.arch, max_samples=cap)
    next(steps)
    allocs = rules.feasible()
    counts = np.array([a.counts for a in allocs.values()], dtype=float)
    band = model.error_with_uncertainty(counts, level=0.9)
    check_error_estimate("the predicted errors of the demo's allocations", band["error"])
    consistency = check_setup(setup, counts, args.seed, tuple(allocs))
    k_check, y_check = check_pool(problem, args.check_size, args.arch, seed=args.seed)
    sets = _sets(counts, args.check_size)
    mc = montecarlo_error(k_check, y_check, counts, ridge=setup.ridge_absolute, n_trials=args.trials,
                          seed=derived_seed(args.seed, "monte carlo"), sets=sets)
    comparison = Comparison(predicted=band["error"], measured=mc.fresh_mean, labels=tuple(allocs),
                            measured_std=mc.fresh_stderr, problem=problem.name, kernel=args.arch,
                            budgets=np.full(len(allocs), budget))
    lcurves = _learning_curves(model, np.maximum(allocs["optimal"].counts, 1).astype(float), cap, k_check, y_check,
                               setup.ridge_absolute, args.trials, args.seed, problem.name, args.arch, budget)
    for _ in steps:
        pass
    return DemoResult(problem=problem.name, levels=problem.n_levels, kernel=args.arch, seed=args.seed, costs=costs,
                      cost_source=cost_note, setup=setup, estimator_seconds=t_model,
                      budget_finest_samples=args.budget_samples, rules=rules, prediction=band,
                      check_size=args.check_size, monte_carlo=mc, monte_carlo_sets=sets, curves=curves,
                      learning_curves=lcurves, comparison=comparison, runtime_seconds=time.perf_counter() - t0,
                      self_check=consistency)


def figures(result: DemoResult) -> dict[str, Any]:
    """The demo's figures by file stem (matplotlib ``Figure`` objects)."""
    from ntk_mlft.reports.plotting import (
        plot_allocation,
        plot_error_vs_budget,
        plot_learning_curves,
        plot_predicted_vs_measured,
    )

    return {"error_vs_budget": plot_error_vs_budget(result.curves),
            "allocation": plot_allocation(result.allocations["optimal"], problem=result.problem, kernel=result.kernel,
                                          grid=result.costs.grid),
            "learning_curves": plot_learning_curves(result.learning_curves),
            "predicted_vs_measured": plot_predicted_vs_measured(result.comparison)}


def write(result: DemoResult, out: Path) -> list[Path]:
    """Figures (PNG + PDF), ``costs.csv``, ``curves.csv``, ``report.json`` and ``summary.md`` in ``out``."""
    from ntk_mlft._io import write_json_atomic, write_text_atomic
    from ntk_mlft.reports.plotting import save_figure

    files: list[Path] = []
    for stem, fig in figures(result).items():
        files += save_figure(fig, out / stem)
    files.append(result.costs.to_csv(out / "costs.csv"))
    files.append(result.curves.to_csv(out / "curves.csv"))
    files.append(write_json_atomic(out / "report.json", result.to_dict()))
    files.append(write_text_atomic(out / "summary.md", summary_markdown(result)))
    return files


def run(args: argparse.Namespace) -> int:
    out = Path(args.out or "results/demo")
    result = compute(args)
    files = write(result, out)
    if args.json:
        print(strict_json({**result.to_dict(), "files": [str(f) for f in files]}, indent=2))
    elif not args.quiet:
        print(summary_markdown(result))
        print(f"wrote {len(files)} files to {out}")
    return 0


def _coverage_note(r: DemoResult) -> list[str]:
    """A bullet when the optimum's samples cover more than ``COVERAGE_WARNING`` of the pool."""
    from ntk_mlft.studies.error_model import coverage_note

    note = coverage_note(r.setup.coverage(r.allocations["optimal"].counts), r.setup.pool_size)
    return [] if note is None else [f"- For the optimum, {note}; the Monte-Carlo column is the check."]


def _unspent_notes(r: DemoResult) -> list[str]:
    """A line per allocation that leaves part of the budget unspent: how much and why (the
    rule's ``unspent_reason``: a sample that does not fit, or the per-level cap)."""
    notes = [f"{key}: {a.unspent:.3g} s of the budget ({100 * a.unspent / a.budget:.1f}%) unspent — "
             f"{a.unspent_reason}"
             for key, a in r.allocations.items() if a.unspent_reason != "none" and a.unspent > 1e-9 * a.budget]
    return ["", "Unspent budget:", *(f"- {n}" for n in notes)] if notes else []


def _agreement_note(r: DemoResult) -> str:
    """Generated sentences: how far the predictions are from the fresh-input Monte-Carlo errors,
    and whether the predicted gain is the measured one within two standard errors plus 10%."""
    rel = {key: e / m - 1 for key, e, m in zip(r.allocations, r.prediction["error"], r.monte_carlo.fresh_mean)}
    worst = max(rel, key=lambda key: abs(rel[key]))
    pred = r.gain_predicted
    meas, se = r.gain_measured
    text = (f"Predicted vs Monte-Carlo fresh-input error: {', '.join(f'{k} {v:+.0%}' for k, v in rel.items())} "
            f"(largest: {worst}).")
    if abs(pred - meas) <= 2 * se + 0.1 * meas:
        return text + f" The predicted gain x{pred:.3g} matches the measured x{plus_minus(meas, se, '.3g')}."
    return text + (f" Caution: the predicted gain x{pred:.3g} differs from the measured "
                   f"x{plus_minus(meas, se, '.3g')} "
                   "by more than two standard errors plus 10%; see the deviations above and "
                   "`analysis/results/estimator_accuracy.md` for the estimator's documented accuracy.")


def summary_markdown(r: DemoResult) -> str:
    """``summary.md``: the allocation, predicted vs Monte-Carlo errors, and what this does and does not show."""
    from ntk_mlft.allocation import RULES

    opt = r.allocations["optimal"]
    setup = r.setup
    gain = plus_minus(*r.gain_measured, ".3g")
    c = r.costs.cost_seconds
    lines = [
        f"# MLFT demo — {r.problem} ({r.levels} levels), NTK of `{r.kernel}`",
        "",
        f"Budget: {r.budget:.4g} s of solver time (= {r.budget_finest_samples} finest-level samples). "
        f"Costs per sample {', '.join(f'{v * 1e3:.3g} ms' for v in c)} ({r.cost_source}).",
        f"Error model: {setup.n_pilot} paired pilot solves (every level) + {setup.n_unlabeled} unlabeled inputs "
        f"(no solves); the pilot cost {r.pilot_cost:.3g} s = "
        f"{100 * r.pilot_cost / r.budget:.0f}% of the budget. Built in {r.estimator_seconds:.0f} s.",
        "",
        "| level | grid | N_l | spend [s] | share |",
        "| --- | --- | --- | --- | --- |",
    ]
    for l, (g, n, s, sh) in enumerate(zip(r.costs.grid, opt.counts, opt.spend, opt.share_of_budget), start=1):
        lines.append(f"| {l} | {g} | {n if n else 'skipped'} | {s:.4g} | {100 * sh:.0f}% |")
    lines += _unspent_notes(r)
    lines += ["", "| allocation | counts | predicted rel. MSE, fresh inputs [90% interval] "
              "| Monte-Carlo, fresh inputs (± s.e.) |", "| --- | --- | --- | --- |"]
    band, mc = r.prediction, r.monte_carlo
    for i, (key, a) in enumerate(r.allocations.items()):
        lines.append(f"| {RULES[key].label} | {tuple(int(v) for v in a.counts)} | {band['error'][i]:.3g} "
                     f"[{band['lower'][i]:.3g}, {band['upper'][i]:.3g}] | "
                     f"{plus_minus(mc.fresh_mean[i], mc.fresh_stderr[i], '.3g')} |")
    diag = setup.diagnostics
    lines += [
        "",
        f"Predicted gain over spending everything on the finest level: x{r.gain_predicted:.3g}; "
        f"measured on fresh inputs: x{gain}.",
        "",
        _agreement_note(r),
        "",
        "What this does and does not show:",
        f"- The error model sees only the {setup.n_pilot} pilot pairs and {setup.n_unlabeled} unlabeled inputs. "
        f"It predicts the error at inputs outside the training sets (the closed form on its pool of "
        f"{setup.pool_size} points with the training points removed, `ntk_mlft.estimators.fresh`); counts are "
        f"capped at {setup.max_samples} per level, where that prediction is documented accurate.",
        *_coverage_note(r),
        f"- The Monte-Carlo column uses an independent pool of {r.check_size} inputs solved at every level "
        "(validation only, not part of the method's cost): kernel regression (the infinite-width NTK limit) with "
        f"random sample sets drawn from it ({r.monte_carlo_sets} sets), error on the check points outside the "
        "training sets — what a user deploying the network meets.",
        "- It does not validate finite-width training (see `ntk-mlft validate`), nor problems other than this one "
        "(see `analysis/results/estimator_accuracy.md`).",
        f"- Integer status of the optimal allocation: {opt.integer_status} (the estimator is not separable; "
        "the answer is a local optimum of the exact estimator after a convex surrogate).",
    ]
    if diag:
        lines.append(f"- Estimator diagnostics: resolved rank per level {list(diag['resolved_rank'])}, unresolved "
                     f"(tail) power fraction {[round(float(v), 3) for v in diag['tail_fraction']]}.")
        lines += [f"- WARNING: {w}." for w in diag.get("warnings", [])]
    check = r.self_check.consistency
    if check is None:
        lines.append(f"- Self-check on the pilot pairs: not run — {r.self_check.note}.")
    else:
        lines.append(f"- Self-check on the pilot pairs (closed form vs Monte-Carlo at the allocations scaled to the "
                     f"pilot): {'agrees' if check.agrees else 'disagrees'} within {check.tolerance:.0%}.")
        lines += [f"- WARNING: {w}." for w in check.warnings]
    lines += [
        "",
        "Figures: `error_vs_budget.png`, `allocation.png`, `learning_curves.png`, `predicted_vs_measured.png` "
        f"(and PDF); numbers: `report.json`, `curves.csv`, `costs.csv`. Runtime {r.runtime_seconds:.0f} s.",
        "",
    ]
    return "\n".join(lines)
