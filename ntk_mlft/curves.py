"""Result objects for curves: error vs budget, learning curves per level, predicted vs measured.

Compute code only — :mod:`ntk_mlft.plotting` draws these objects. :func:`budget_curves` sweeps a
budget range and records, at each budget ``B`` (seconds), the optimal MLFT allocation
(:func:`ntk_mlft.allocation.optimize_allocation`) and the two baselines (single-level finest,
equal split). For a power-law model ``E = floor + sum_l a_l N_l^{-p_l}`` the optimal error decays
like ``B^{-min_l p_l}`` once the budget is large (the slowest level dominates), and the
single-level error like ``B^{-p_L}`` towards ``sum_l a_l (B/c_L)^{-p_l}``; :meth:`BudgetCurves.slope`
reports the fitted log-log slope of ``E - floor`` so figures can annotate it.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._io import write_text_atomic
from ntk_mlft._progress import progress
from ntk_mlft._validation import as_finite_array
from ntk_mlft.allocation import (Allocation, equal_split_allocation, minimum_budget, optimize_allocation,
                                 single_level_allocation)
from ntk_mlft.costs import as_cost_array

__all__ = ["BudgetCurves", "LearningCurves", "Comparison", "budget_curves", "parse_budgets", "predicted_learning_curves"]

METHODS = ("optimal", "single", "equal")


@dataclass(frozen=True)
class BudgetCurves:
    """Predicted error of three allocation rules over a range of budgets.

    Attributes:
        budgets: (K,) seconds, increasing.
        optimal, single, equal: K allocations each (``None`` where a baseline is infeasible,
            e.g. the equal split below ``L c_L``).
        floor: the model's irreducible error (subtracted before fitting slopes; 0 if unknown).
        problem, kernel: labels for titles.
        measured_budgets, measured_errors: optional (M,) validation points (measured relative MSE).
    """

    budgets: np.ndarray
    optimal: tuple[Allocation, ...]
    single: tuple[Allocation | None, ...]
    equal: tuple[Allocation | None, ...]
    floor: float = 0.0
    problem: str = ""
    kernel: str = ""
    measured_budgets: np.ndarray | None = None
    measured_errors: np.ndarray | None = None

    @property
    def n_levels(self) -> int:
        return self.optimal[0].n_levels

    def errors(self, method: str) -> np.ndarray:
        """(K,) predicted errors of ``method`` (``"optimal"``, ``"single"``, ``"equal"``); NaN if infeasible."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {method!r}")
        return np.array([np.nan if a is None else a.predicted_error for a in getattr(self, method)])

    def slope(self, method: str, tail: float = 0.5) -> float:
        """Least-squares slope of ``log(E - floor)`` vs ``log B`` over the largest ``tail`` of budgets."""
        e = self.errors(method) - self.floor
        ok = np.isfinite(e) & (e > 0)
        ok &= self.budgets >= np.quantile(self.budgets, 1.0 - tail)
        if ok.sum() < 2:
            return float("nan")
        return float(np.polyfit(np.log(self.budgets[ok]), np.log(e[ok]), 1)[0])

    def gain(self) -> np.ndarray:
        """(K,) single-level error / optimal error (how many times lower MLFT's error is)."""
        return self.errors("single") / self.errors("optimal")

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per budget: budget, errors of each method, gain, optimal counts per level."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        n = self.n_levels
        w.writerow(["budget_seconds", "error_optimal", "error_single_level", "error_equal_split",
                    "gain_over_single", *[f"n_level{l}" for l in range(1, n + 1)]])
        for k, b in enumerate(self.budgets):
            w.writerow([repr(float(b)), *(repr(float(self.errors(m)[k])) for m in METHODS),
                        repr(float(self.gain()[k])), *(int(v) for v in self.optimal[k].counts)])
        return write_text_atomic(path, buf.getvalue())

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem, "kernel": self.kernel, "floor": self.floor,
            "budgets_seconds": self.budgets.tolist(),
            **{f"error_{m}": self.errors(m).tolist() for m in METHODS},
            **{f"slope_{m}": self.slope(m) for m in METHODS},
            "optimal_counts": [a.counts.tolist() for a in self.optimal],
        }


def parse_budgets(spec: str) -> np.ndarray:
    """``"START:STOP:NUM"`` → NUM log-spaced budgets (seconds); or a comma-separated list."""
    try:
        if ":" in spec:
            start, stop, num = spec.split(":")
            start, stop, num = float(start), float(stop), int(num)
            if not (0 < start < stop) or num < 2:
                raise ValueError
            return np.geomspace(start, stop, num)
        vals = np.array(sorted(float(v) for v in spec.split(",")))
        if vals.size == 0 or np.any(vals <= 0):
            raise ValueError
        return vals
    except ValueError:
        raise ValueError(f"budgets must be 'START:STOP:NUM' (0 < START < STOP, NUM >= 2; log-spaced seconds) "
                         f"or a comma-separated list of positive seconds; got {spec!r}") from None


def budget_curves(model: Any, costs: Any, budgets: Any, *, problem: str = "", kernel: str = "",
                  measured_budgets: Any = None, measured_errors: Any = None,
                  min_samples: int = 1, max_samples: int | None = None) -> BudgetCurves:
    """Optimal / single-level / equal-split allocations at every budget in ``budgets`` (seconds).

    ``max_samples`` caps every level of the optimal allocation; a baseline that would exceed it
    is recorded as ``None`` (not comparable).

    Raises ValueError if a budget is below the cheapest admissible allocation.
    """
    b = np.sort(as_finite_array("budgets", budgets, ndim=1))
    c = as_cost_array(costs, int(model.n_levels))
    need = minimum_budget(c, min_samples)
    if b.size == 0 or b[0] < need:
        raise ValueError(f"budgets must be non-empty and >= the minimum budget {need:.6g} s; got min "
                         f"{b.min() if b.size else 'nothing'}")
    opt, single, equal = [], [], []
    for budget in progress(b, total=b.size, desc="budgets"):
        opt.append(optimize_allocation(model, c, float(budget), min_samples=min_samples, max_samples=max_samples))
        s = single_level_allocation(model, c, float(budget))
        e = equal_split_allocation(model, c, float(budget)) if budget >= c.size * c[-1] else None
        cap = np.inf if max_samples is None else max_samples
        single.append(s if s.counts.max() <= cap else None)
        equal.append(e if e is not None and e.counts.max() <= cap else None)
    mb = me = None
    if measured_budgets is not None or measured_errors is not None:
        mb = as_finite_array("measured_budgets", measured_budgets, ndim=1)
        me = as_finite_array("measured_errors", measured_errors, ndim=1)
        if mb.shape != me.shape:
            raise ValueError(f"measured_budgets and measured_errors must have the same length; "
                             f"got {mb.size} and {me.size}")
    return BudgetCurves(budgets=b, optimal=tuple(opt), single=tuple(single), equal=tuple(equal),
                        floor=float(getattr(model, "floor", 0.0)), problem=problem, kernel=kernel,
                        measured_budgets=mb, measured_errors=me)


@dataclass(frozen=True)
class LearningCurves:
    """Error vs the sample count of one level at a time, others held at ``base_counts``.

    Attributes:
        n: (K,) sample counts tried.
        predicted: (L, K) model error when level ``l`` has ``n[k]`` samples.
        base_counts: (L,) the other levels' counts.
        measured, measured_std: optional (L, K) Monte-Carlo means and standard errors (NaN = not run).
        problem, kernel: labels for titles.
    """

    n: np.ndarray
    predicted: np.ndarray
    base_counts: np.ndarray
    measured: np.ndarray | None = None
    measured_std: np.ndarray | None = None
    problem: str = ""
    kernel: str = ""


def predicted_learning_curves(model: Any, base_counts: Any, n: Any, *, problem: str = "",
                              kernel: str = "") -> LearningCurves:
    """Model error with level ``l``'s count replaced by each of ``n`` (all levels in turn)."""
    base = np.asarray(base_counts, float)
    ns = as_finite_array("n", n, ndim=1)
    if np.any(ns < 1):
        raise ValueError(f"n must be >= 1; got {ns.tolist()}")
    L = int(model.n_levels)
    if base.shape != (L,):
        raise ValueError(f"base_counts must have shape ({L},); got {base.shape}")
    pred = np.empty((L, ns.size))
    for l in range(L):
        for k, v in enumerate(ns):
            row = base.copy()
            row[l] = v
            pred[l, k] = model.error(row)
    return LearningCurves(n=ns, predicted=pred, base_counts=base, problem=problem, kernel=kernel)


@dataclass(frozen=True)
class Comparison:
    """Predicted vs measured errors of the same allocations (validation).

    Attributes: ``predicted``, ``measured`` (M,) relative MSE; ``labels`` (M,) short names;
    ``measured_std`` optional (M,) standard errors; ``problem``, ``kernel`` for titles.
    """

    predicted: np.ndarray
    measured: np.ndarray
    labels: tuple[str, ...] = ()
    measured_std: np.ndarray | None = None
    problem: str = ""
    kernel: str = ""

    def __post_init__(self) -> None:
        p = as_finite_array("predicted", self.predicted, ndim=1)
        m = as_finite_array("measured", self.measured, ndim=1)
        if p.shape != m.shape:
            raise ValueError(f"predicted and measured must have the same length; got {p.size} and {m.size}")
        object.__setattr__(self, "predicted", p)
        object.__setattr__(self, "measured", m)

    def log_ratio_rmse(self) -> float:
        """Root-mean-square of ``log(measured / predicted)`` (0 = perfect prediction)."""
        return float(np.sqrt(np.mean(np.log(self.measured / self.predicted) ** 2)))
