"""Result objects for curves: error vs budget, learning curves per level, predicted vs measured.

Compute code only — :mod:`ntk_mlft.reports.plotting` draws these objects. :func:`budget_curves` sweeps a
budget range and records, at each budget ``B`` (seconds), the optimal MLFT allocation
(:func:`ntk_mlft.allocation.optimize_allocation`) and the two baselines (single-level finest,
equal split), all under the same ``max_samples`` cap: a rule that hits the cap leaves budget
unspent (recorded per allocation, ``Allocation.unspent``) instead of being dropped; only the equal
split below its minimum budget ``L c_L`` is missing (``None``).

Theory (:func:`theoretical_slope`): for a power law ``E = floor + sum_l a_l N_l^{-p_l}`` with
``L`` fixed, ``E - floor`` decays like ``B^{-min_l p_l}`` for *every* rule that spends a fixed
fraction of ``B`` on each level — the slowest-decaying difference dominates — so the optimal, the
single-level and the equal-split curves all tend to slope ``-min_l p_l`` (``-1`` for the MLMC
variance model ``p_l = 1``), at different constants (the gain). Proof: ``E* - floor >= max_k a_k
(B / c_k)^{-p_k}`` (no level can have more than ``B / c_k`` samples) and the equal split gives
``<= sum_l a_l (B / (L c_l))^{-p_l}``; both are ``Theta(B^{-min p})``. For other error models
the same statement is applied to their local power-law exponents at the optimum
(:func:`ntk_mlft.allocation.fit_local_power_law`). :meth:`BudgetCurves.slope` is the
fitted log-log slope of ``E - floor``, to compare with it (``docs/theory.md`` section 8, "Slopes of
error-vs-budget curves"). The rules are those of :data:`ntk_mlft.allocation.RULES`.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._checks import as_finite_array, check_error_estimate
from ntk_mlft._io import read_csv_records, write_text_atomic
from ntk_mlft._progress import progress
from ntk_mlft.allocation import RULES, Allocation, compare_rules, minimum_budget
from ntk_mlft.allocation.costs import as_cost_array
from ntk_mlft.estimators.base import PowerLawErrorModel

__all__ = ["BudgetCurves", "Comparison", "LearningCurves", "MeasuredPoints", "budget_curves",
           "compare_measured", "parse_budgets", "predicted_learning_curves", "read_measured_csv",
           "theoretical_slope"]

METHODS = tuple(RULES)
"""The allocation rules curves are drawn for (:data:`ntk_mlft.allocation.RULES`)."""


@dataclass(frozen=True)
class MeasuredPoints:
    """Measured errors of allocation rules at budgets (e.g. trained networks, Monte-Carlo).

    Attributes:
        allocation: (M,) rule of each point, each one of ``METHODS`` (``optimal``, ``single``, ``equal``).
        budget: (M,) seconds, > 0.
        error: (M,) measured relative MSE (dimensionless), > 0.
        stderr: (M,) standard errors (NaN where not known).
    """

    allocation: tuple[str, ...]
    budget: np.ndarray
    error: np.ndarray
    stderr: np.ndarray

    def __post_init__(self) -> None:
        alloc = tuple(str(a) for a in self.allocation)
        bad = sorted({a for a in alloc if a not in METHODS})
        if bad:
            raise ValueError(f"allocation must name one of {METHODS} per point; got {bad}")
        b = as_finite_array("budget", self.budget, ndim=1)
        e = as_finite_array("error", self.error, ndim=1)
        se = np.asarray(self.stderr, dtype=np.float64).reshape(-1)
        if not (len(alloc) == b.size == e.size == se.size):
            raise ValueError(f"allocation, budget, error and stderr must have the same length; got "
                             f"{len(alloc)}, {b.size}, {e.size}, {se.size}")
        if np.any(b <= 0) or np.any(e <= 0) or np.any(se[np.isfinite(se)] < 0):
            raise ValueError("budget and error must be > 0 and stderr >= 0 (or NaN) at every point")
        object.__setattr__(self, "allocation", alloc)
        object.__setattr__(self, "budget", b)
        object.__setattr__(self, "error", e)
        object.__setattr__(self, "stderr", se)

    def of(self, method: str) -> np.ndarray:
        """(M,) bool: the points of ``method``."""
        return np.array([a == method for a in self.allocation], dtype=bool)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write ``allocation,budget,error,stderr`` (what :func:`read_measured_csv` reads; an
        unknown stderr is an empty cell) atomically."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["allocation", "budget", "error", "stderr"])
        for a, b, e, se in zip(self.allocation, self.budget, self.error, self.stderr):
            w.writerow([a, repr(float(b)), repr(float(e)), repr(float(se)) if np.isfinite(se) else ""])
        return write_text_atomic(path, buf.getvalue())


def read_measured_csv(path: str | os.PathLike[str]) -> MeasuredPoints:
    """Measured points from a CSV with columns ``allocation,budget,error[,stderr]`` (budget in
    seconds, error = relative MSE; allocation one of ``optimal``, ``single``, ``equal``)."""
    rows = []
    for lineno, row in read_csv_records(path, "measured-points file", ("allocation", "budget", "error"),
                                        "allocation,budget,error[,stderr]"):
        try:
            rows.append((row["allocation"], float(row["budget"]), float(row["error"]),
                         float(row["stderr"]) if row.get("stderr") else float("nan")))
        except ValueError as err:
            raise ValueError(f"measured-points file {path} line {lineno}: budget, error and stderr must be "
                             f"numbers; got {row}") from err
        a, b, e, se = rows[-1]
        if a not in METHODS or not (np.isfinite(b) and b > 0 and np.isfinite(e) and e > 0) or se < 0 \
                or se == np.inf:
            raise ValueError(f"measured-points file {path} line {lineno}: allocation must be one of {METHODS}, "
                             "budget (s) and error (relative MSE) finite and > 0, stderr empty or finite and "
                             f">= 0; got {row}")
    if not rows:
        raise ValueError(f"measured-points file {path} has no rows")
    a, b, e, se = zip(*rows)
    return MeasuredPoints(allocation=a, budget=np.array(b), error=np.array(e), stderr=np.array(se))


@dataclass(frozen=True)
class BudgetCurves:
    """Predicted error of three allocation rules over a range of budgets.

    Attributes:
        budgets: (K,) seconds, increasing.
        optimal, single, equal: K allocations each, all under the cap ``max_samples`` (``None``
            only where the equal split is infeasible, below ``L c_L``).
        floor: the model's irreducible error (subtracted before fitting slopes; 0 if unknown).
        problem, kernel: labels for titles.
        max_samples: the per-level cap every rule was held to (None: no cap).
        theory_slope, theory_note: the asymptotic log-log slope of ``E - floor`` that theory
            predicts (:func:`theoretical_slope`) and how it was obtained.
        measured: optional :class:`MeasuredPoints` (validation).
    """

    budgets: np.ndarray
    optimal: tuple[Allocation, ...]
    single: tuple[Allocation | None, ...]
    equal: tuple[Allocation | None, ...]
    floor: float = 0.0
    problem: str = ""
    kernel: str = ""
    max_samples: int | None = None
    theory_slope: float = float("nan")
    theory_note: str = ""
    measured: MeasuredPoints | None = None

    @property
    def n_levels(self) -> int:
        return self.optimal[0].n_levels

    def errors(self, method: str) -> np.ndarray:
        """(K,) predicted errors of ``method`` (``"optimal"``, ``"single"``, ``"equal"``); NaN if infeasible."""
        return np.array([np.nan if a is None else a.predicted_error for a in self._rule(method)])

    def unspent(self, method: str) -> np.ndarray:
        """(K,) seconds of each budget ``method`` leaves unspent; NaN if infeasible."""
        return np.array([np.nan if a is None else a.unspent for a in self._rule(method)])

    def cap_bound(self, method: str) -> np.ndarray:
        """(K,) bool: ``method`` left more than 1 % of the budget unspent because of the
        ``max_samples`` cap (smaller cap-blocked leftovers are rounding, not a different regime)."""
        return np.array([_cap_bound(a) for a in self._rule(method)])

    def _rule(self, method: str) -> tuple[Allocation | None, ...]:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {method!r}")
        return getattr(self, method)

    def slope(self, method: str, tail: float = 0.5) -> float:
        """Least-squares slope of ``log(E - floor)`` vs ``log B`` over the largest ``tail`` of budgets,
        leaving out cap-bound points (their budget is not spent, so they measure the cap)."""
        e = self.errors(method) - self.floor
        ok = np.isfinite(e) & (e > 0) & ~self.cap_bound(method)
        ok &= self.budgets >= np.quantile(self.budgets, 1.0 - tail)
        if ok.sum() < 2:
            return float("nan")
        return float(np.polyfit(np.log(self.budgets[ok]), np.log(e[ok]), 1)[0])

    def gain(self) -> np.ndarray:
        """(K,) single-level error / optimal error (how many times lower MLFT's error is)."""
        return self.errors("single") / self.errors("optimal")

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per budget: budget, errors and unspent seconds of each rule, gain, optimal counts."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        n = self.n_levels
        w.writerow(["budget_seconds", *(f"error_{m}" for m in METHODS), *(f"unspent_seconds_{m}" for m in METHODS),
                    "gain_over_single", *[f"n_level{l}" for l in range(1, n + 1)]])
        errors = [self.errors(m) for m in METHODS]
        unspent = [self.unspent(m) for m in METHODS]
        gain = self.gain()
        for k, b in enumerate(self.budgets):
            w.writerow([repr(float(b)), *(repr(float(e[k])) for e in errors), *(repr(float(u[k])) for u in unspent),
                        repr(float(gain[k])), *(int(v) for v in self.optimal[k].counts)])
        return write_text_atomic(path, buf.getvalue())

    def to_dict(self) -> dict[str, Any]:
        out = {
            "problem": self.problem, "kernel": self.kernel, "floor": self.floor, "max_samples": self.max_samples,
            "budgets_seconds": self.budgets.tolist(),
            **{f"error_{m}": self.errors(m).tolist() for m in METHODS},
            **{f"unspent_seconds_{m}": self.unspent(m).tolist() for m in METHODS},
            **{f"slope_{m}": self.slope(m) for m in METHODS},
            "theory_slope": self.theory_slope, "theory_note": self.theory_note,
            "optimal_counts": [a.counts.tolist() for a in self.optimal],
        }
        if self.measured is not None:
            out["measured"] = {"allocation": list(self.measured.allocation), "budget": self.measured.budget.tolist(),
                               "error": self.measured.error.tolist(), "stderr": self.measured.stderr.tolist()}
        return out


def _cap_bound(a: Allocation | None) -> bool:
    return a is not None and a.unspent_reason.startswith("sample cap") and a.unspent > 0.01 * a.budget


MAX_BUDGETS = 1000
"""Most budgets one curve may have: each costs an allocation search (milliseconds to seconds)."""


def parse_budgets(spec: str, unit: str = "seconds") -> np.ndarray:
    """``"START:STOP:NUM"`` → NUM log-spaced budgets; or a comma-separated list of at least two
    distinct positive budgets (sorted); at most :data:`MAX_BUDGETS`. ``unit`` names them in the
    error message."""
    usage = (f"budgets must be 'START:STOP:NUM' (0 < START < STOP, 2 <= NUM <= {MAX_BUDGETS}; log-spaced "
             f"{unit}) or a comma-separated list of 2 to {MAX_BUDGETS} distinct positive {unit}")
    try:
        if ":" in spec:
            start, stop, num = spec.split(":")
            start, stop, num = float(start), float(stop), int(num)
            if not (0 < start < stop < np.inf) or not 2 <= num <= MAX_BUDGETS:
                raise ValueError
            return np.geomspace(start, stop, num)
        vals = np.array(sorted(float(v) for v in spec.split(",")))
        if not 2 <= vals.size <= MAX_BUDGETS or np.any(vals <= 0) or not np.all(np.isfinite(vals)):
            raise ValueError
    except ValueError:
        raise ValueError(f"{usage}; got {spec!r}") from None
    if vals.size > 1 and np.any(np.diff(vals) == 0):
        dup = sorted({float(v) for v in vals[1:][np.diff(vals) == 0]})
        raise ValueError(f"{usage}; {dup} appear(s) more than once in {spec!r} (slopes are fitted over "
                         "distinct budgets)")
    return vals


def theoretical_slope(model: Any, allocation: Allocation, min_samples: int = 1,
                      n_max: float | None = None) -> tuple[float, str]:
    """Asymptotic log-log slope of ``E - floor`` vs budget (L fixed) and how it was obtained.

    * power law: ``-min_l p_l`` over levels with ``coef_l > 0`` (``-1`` for the MLMC model, all
      ``p_l = 1``); see the module docstring for why this holds for every rule;
    * a model with per-level learning curves ``level_curve(l, ns)`` (the spectral / pilot
      estimators): the same rule with ``p_l`` from a power-law fit
      (:func:`ntk_mlft.estimators.fit_power_law`, with floor) of each level's curve on
      ``N = min_samples .. n_max`` (10 log-spaced counts; ``n_max``: the sample cap, or 4x the
      largest count of ``allocation``, at least 10);
    * any other model: ``-min_m p_m`` of its local power-law surrogate at ``allocation``'s counts
      (:func:`ntk_mlft.allocation._surrogate.fit_local_power_law`).

    NaN when no level's error decreases with more samples.
    """
    if isinstance(model, PowerLawErrorModel):
        p = model.exponent[model.coef > 0]
        if p.size == 0:
            return float("nan"), "power law with all coefficients 0"
        if np.all(p == 1.0):
            return -1.0, "MLMC variance model (all exponents 1): slope -1"
        return float(-p.min()), "power law, L fixed: slope -min_l p_l"
    curves_of = getattr(getattr(model, "estimate", model), "level_curve", None)
    if curves_of is not None:
        from ntk_mlft.estimators import fit_power_law

        top = float(n_max) if n_max is not None else max(10.0, 4.0 * float(allocation.counts.max()))
        ns = np.unique(np.round(np.geomspace(max(min_samples, 1), max(top, min_samples + 2), 10)))
        fits = [fit_power_law(ns, np.maximum(curves_of(l, ns), 1e-300)) for l in range(1, int(model.n_levels) + 1)]
        p = np.array([f.exponent for f in fits if f.coef > 0])
        note = f"-min_l p_l of per-level learning-curve fits on N = {int(ns[0])}..{int(ns[-1])}"
    else:
        from ntk_mlft.allocation import fit_local_power_law

        counts = allocation.counts.astype(float)
        active = counts > 0
        terms, _ = fit_local_power_law(model, counts, active, np.full(int(active.sum()), float(min_samples)))
        p = terms.p[terms.a > 0]
        note = f"-min_l p_l of the local power-law exponents at the optimum for B = {allocation.budget:.4g} s"
    if p.size == 0:
        return float("nan"), "no level's error decreases with more samples"
    return float(-p.min()), note


def budget_curves(model: Any, costs: Any, budgets: Any, *, problem: str = "", kernel: str = "",
                  measured: MeasuredPoints | None = None, min_samples: int = 1,
                  max_samples: int | None = None) -> BudgetCurves:
    """Optimal / single-level / equal-split allocations at every budget in ``budgets`` (seconds).

    ``max_samples`` caps every level of every rule (the baselines as
    :func:`~ntk_mlft.allocation.single_level_allocation` / ``equal_split_allocation`` do); where it
    binds, the rule leaves budget unspent (``BudgetCurves.unspent``, ``cap_bound``) and its curve
    flattens. The equal split is ``None`` below its minimum budget ``L c_L``. Budgets are taken in
    increasing order and each optimum warm-starts the next (``optimize_allocation(warm_start=)``),
    so the optimal curve never rises with the budget (a local search alone could end higher).
    ``measured``: optional points to draw with the curves.

    Raises ValueError if a budget is below the cheapest admissible allocation.
    """
    b = np.sort(as_finite_array("budgets", budgets, ndim=1))
    c = as_cost_array(costs, int(model.n_levels))
    need = minimum_budget(c, min_samples)
    if b.size == 0 or b[0] < need:
        raise ValueError(f"budgets must be non-empty and >= the minimum budget {need:.6g} s; got min "
                         f"{b.min() if b.size else 'nothing'}")
    if measured is not None and not isinstance(measured, MeasuredPoints):
        raise TypeError(f"measured must be MeasuredPoints or None; got {type(measured).__name__}")
    per_rule: dict[str, list] = {m: [] for m in METHODS}
    for budget in progress(b, total=b.size, desc="budgets"):
        opt = per_rule["optimal"]
        cmp = compare_rules(model, c, float(budget), min_samples=min_samples, max_samples=max_samples,
                            warm_start=opt[-1].counts if opt else None)
        for m in METHODS:
            per_rule[m].append(cmp.allocations[m])
    opt = per_rule["optimal"]
    spent = [a for a in opt if not _cap_bound(a)]
    slope, note = theoretical_slope(model, (spent or opt)[-1], min_samples, max_samples)
    return BudgetCurves(budgets=b, **{m: tuple(v) for m, v in per_rule.items()},
                        floor=float(getattr(model, "floor", 0.0)), problem=problem, kernel=kernel,
                        max_samples=max_samples, theory_slope=slope, theory_note=note, measured=measured)


@dataclass(frozen=True)
class LearningCurves:
    """Error vs the sample count of one level at a time, others held at ``base_counts``.

    Attributes:
        n: (K,) sample counts tried.
        predicted: (L, K) model error when level ``l`` has ``n[k]`` samples.
        base_counts: (L,) the other levels' counts.
        measured, measured_std: optional (L, K) Monte-Carlo means and standard errors (NaN = not run).
        problem, kernel: labels for titles.
        budget: seconds of the budget whose allocation ``base_counts`` is (None: not stated).
    """

    n: np.ndarray
    predicted: np.ndarray
    base_counts: np.ndarray
    measured: np.ndarray | None = None
    measured_std: np.ndarray | None = None
    problem: str = ""
    kernel: str = ""
    budget: float | None = None

    def rising(self, rtol: float = 0.01) -> dict[int, float]:
        """``{level (1-based): N}`` for each level whose predicted error rises by more than ``rtol``
        (relative) from one count to the next, with the first count N after which it does."""
        out = {}
        for l, e in enumerate(np.asarray(self.predicted, dtype=float)):
            up = np.flatnonzero(e[1:] > e[:-1] * (1 + rtol))
            if up.size:
                out[l + 1] = float(self.n[up[0]])
        return out


def predicted_learning_curves(model: Any, base_counts: Any, n: Any, *, problem: str = "",
                              kernel: str = "", budget: float | None = None) -> LearningCurves:
    """Model error with level ``l``'s count replaced by each of ``n`` (all levels in turn).

    ``budget``: seconds of the budget at which ``base_counts`` was allocated (for titles)."""
    base = np.asarray(base_counts, float)
    ns = as_finite_array("n", n, ndim=1)
    if np.any(ns < 1):
        raise ValueError(f"n must be >= 1; got {ns.tolist()}")
    L = int(model.n_levels)
    if base.shape != (L,):
        raise ValueError(f"base_counts must have shape ({L},); got {base.shape}")
    pred = np.empty((L, ns.size))
    for l in range(L):
        rows = np.repeat(base[None], ns.size, axis=0)
        rows[:, l] = ns
        pred[l] = [model.error(r) for r in rows]
    check_error_estimate("a predicted learning-curve error", pred)
    return LearningCurves(n=ns, predicted=pred, base_counts=base, problem=problem, kernel=kernel, budget=budget)


@dataclass(frozen=True)
class Comparison:
    """Predicted vs measured errors of the same allocations (validation).

    Attributes: ``predicted``, ``measured`` (M,) relative MSE; ``labels`` (M,) short names;
    ``measured_std`` optional (M,) standard errors; ``problem``, ``kernel`` for titles;
    ``budgets`` optional (M,) seconds of each allocation's budget (for titles).
    """

    predicted: np.ndarray
    measured: np.ndarray
    labels: tuple[str, ...] = ()
    measured_std: np.ndarray | None = None
    problem: str = ""
    kernel: str = ""
    budgets: np.ndarray | None = None

    def __post_init__(self) -> None:
        p = as_finite_array("predicted", self.predicted, ndim=1)
        m = as_finite_array("measured", self.measured, ndim=1)
        if p.shape != m.shape:
            raise ValueError(f"predicted and measured must have the same length; got {p.size} and {m.size}")
        object.__setattr__(self, "predicted", p)
        object.__setattr__(self, "measured", m)
        if self.budgets is not None:
            b = np.broadcast_to(as_finite_array("budgets", self.budgets, ndim=(0, 1)), p.shape).copy()
            object.__setattr__(self, "budgets", b)

    def log_ratio_rmse(self) -> float:
        """Root-mean-square of ``log(measured / predicted)`` (0 = perfect prediction)."""
        return float(np.sqrt(np.mean(np.log(self.measured / self.predicted) ** 2)))


def compare_measured(model: Any, costs: Any, measured: MeasuredPoints, *, min_samples: int = 1,
                     max_samples: int | None = None, problem: str = "", kernel: str = "") -> Comparison:
    """Each measured point beside the model's prediction for the same rule at the same budget
    (allocated as :func:`budget_curves` does, same cap)."""
    c = as_cost_array(costs, int(model.n_levels))
    allocs = [RULES[a].allocate(model, c, float(b), min_samples=min_samples, max_samples=max_samples)
              for a, b in zip(measured.allocation, measured.budget)]
    bad = [f"{a} at {b:.6g} s" for a, b, x in zip(measured.allocation, measured.budget, allocs) if x is None]
    if bad:
        raise ValueError(f"measured points of rules infeasible at their budget: {', '.join(bad)} (the equal "
                         f"split needs at least {c.size * c[-1]:.6g} s)")
    labels = tuple(f"{a} {tuple(int(v) for v in x.counts)}" for a, x in zip(measured.allocation, allocs))
    std = measured.stderr if np.any(np.isfinite(measured.stderr)) else None
    return Comparison(predicted=np.array([x.predicted_error for x in allocs]), measured=measured.error,
                      labels=labels, measured_std=std, problem=problem, kernel=kernel, budgets=measured.budget)
