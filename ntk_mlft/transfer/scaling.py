"""Samples saved by fine-tuning, and how much pre-training data is worth buying.

- :func:`scaling_curve`: fine-tune and scratch error curves over downstream N (from
  :class:`~ntk_mlft.transfer.estimator.TransferEstimator`) -> :class:`ScalingCurve`, with the
  scratch-equivalent N (the scratch sample count whose predicted error equals fine-tuning's at
  each N, log-log interpolation of the scratch curve, made non-increasing by a running minimum)
  and the factor scratch-equivalent / N. Outside the scratch curve's range the equivalent is
  censored: ``censored = +1`` (fine-tuning beats scratch at the largest N computed: the factor is
  a lower bound), ``-1`` (worse than scratch at the smallest N: negative transfer).
- :func:`factor_at_error`: N_scratch(eps) / N_finetune(eps) at a target error eps (NaN where a
  curve does not reach eps).
- :class:`TransferErrorModel`: an ``ErrorModel`` over counts (N_pre, N) -- level 1 = source,
  level 2 = target, N_pre = 0 = from scratch -- interpolated bilinearly in (log(1 + N_pre),
  log N) on log error from a grid of predicted curves, so ``ntk_mlft.allocation.optimize_allocation``
  with a cost table (source seconds, target seconds per sample) answers how to split a budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft._checks import as_finite_array
from ntk_mlft.estimators.base import check_counts

__all__ = ["PretrainingPlan", "ScalingCurve", "TransferErrorModel", "curve_from_dict", "factor_at_error",
           "pretraining_plan", "scaling_curve", "scratch_equivalent"]


def _monotone_log(n: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log N (increasing) and log of the running minimum of the errors (non-increasing)."""
    return np.log(n), np.log(np.minimum.accumulate(np.maximum(err, np.finfo(float).tiny)))


def scratch_equivalent(n: Any, scratch: Any, errors: Any) -> tuple[np.ndarray, np.ndarray]:
    """Scratch N reaching each of ``errors`` on the curve (n, scratch), and the censoring flags."""
    ln, le = _monotone_log(np.asarray(n, dtype=float), np.asarray(scratch, dtype=float))
    e = np.log(np.maximum(np.asarray(errors, dtype=float), np.finfo(float).tiny))
    # np.interp needs increasing x: the log errors reversed
    out = np.exp(np.interp(-e, -le, ln))
    censored = np.where(e < le[-1], 1, np.where(e > le[0], -1, 0))
    return out, censored


def factor_at_error(n: Any, finetune: Any, scratch: Any, target_error: float) -> float:
    """N_scratch(eps) / N_finetune(eps), NaN where either curve does not reach eps in range."""
    n = np.asarray(n, dtype=float)
    ns, cs = scratch_equivalent(n, scratch, [target_error])
    nf, cf = scratch_equivalent(n, finetune, [target_error])
    if cs[0] != 0 or cf[0] != 0:
        return float("nan")
    return float(ns[0] / nf[0])


@dataclass(frozen=True)
class ScalingCurve:
    """Predicted curves for one source -> target pair.

    n_down (M,) downstream counts; finetune, scratch (M,) predicted fresh-input relative MSE;
    scratch_equivalent (M,), censored (M,) ints (+1 lower bound, -1 negative transfer, 0 inside);
    factor (M,) = scratch_equivalent / n_down; pretrained_error: the pre-trained network's error
    on the target (no fine-tuning); target_error and factor_at_target (NaN if not reached)."""

    label: str
    n_pre: int
    n_down: np.ndarray
    finetune: np.ndarray
    scratch: np.ndarray
    scratch_equivalent: np.ndarray
    censored: np.ndarray
    factor: np.ndarray
    pretrained_error: float
    target_error: float
    factor_at_target: float

    def to_dict(self) -> dict[str, Any]:
        def finite(v: np.ndarray) -> list[Any]:
            return [float(x) if np.isfinite(x) else None for x in v]

        return {"label": self.label, "n_pre": self.n_pre, "n_down": self.n_down.tolist(),
                "finetune": finite(self.finetune), "scratch": finite(self.scratch),
                "scratch_equivalent": finite(self.scratch_equivalent), "censored": self.censored.tolist(),
                "factor": finite(self.factor), "pretrained_error": self.pretrained_error,
                "target_error": self.target_error,
                "factor_at_target": self.factor_at_target if np.isfinite(self.factor_at_target) else None}


def curve_from_dict(d: dict[str, Any]) -> ScalingCurve:
    """Inverse of :meth:`ScalingCurve.to_dict` (JSON nulls back to NaN)."""
    def arr(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in d[key]], dtype=float)

    fat = d["factor_at_target"]
    return ScalingCurve(d["label"], int(d["n_pre"]), np.asarray(d["n_down"], dtype=np.int64), arr("finetune"),
                        arr("scratch"), arr("scratch_equivalent"), np.asarray(d["censored"], dtype=np.int64),
                        arr("factor"), float(d["pretrained_error"]), float(d["target_error"]),
                        float("nan") if fat is None else float(fat))


def scaling_curve(label: str, n_pre: int, n_down: Any, finetune: Any, scratch: Any, pretrained_error: float,
                  target_error: float | None = None) -> ScalingCurve:
    """Assemble a :class:`ScalingCurve`; ``target_error`` None: the scratch error at the downstream
    count nearest n_max / 10 (always inside the scratch range)."""
    n = np.asarray(n_down, dtype=np.int64)
    if n.ndim != 1 or n.size < 2 or np.any(np.diff(n) <= 0):
        raise ValueError(f"n_down must be >= 2 strictly increasing counts; got {n_down!r}")
    ft = as_finite_array("finetune", finetune, ndim=1)
    sc = as_finite_array("scratch", scratch, ndim=1)
    if ft.shape != n.shape or sc.shape != n.shape:
        raise ValueError(f"finetune and scratch must have one value per n_down ({n.size}); "
                         f"got {ft.shape} and {sc.shape}")
    if target_error is None:
        target_error = float(sc[int(np.argmin(np.abs(np.log(n / (n[-1] / 10)))))])
    equiv, cens = scratch_equivalent(n, sc, ft)
    return ScalingCurve(label, int(n_pre), n, ft, sc, equiv, cens, equiv / n, float(pretrained_error),
                        float(target_error), factor_at_error(n, ft, sc, target_error))


@dataclass(frozen=True)
class TransferErrorModel:
    """Two-level ``ErrorModel``: level 1 = source samples N_pre (0 allowed: scratch), level 2 =
    target samples N. ``n_pre`` (P,) increasing grid starting at 0, ``n_down`` (M,) increasing,
    ``errors`` (P, M) predicted errors. Counts are clamped to the grid (``max_counts`` are the
    caps to give the optimiser)."""

    n_pre: np.ndarray
    n_down: np.ndarray
    errors: np.ndarray
    n_levels: int = 2

    def __post_init__(self) -> None:
        p = as_finite_array("n_pre", self.n_pre, ndim=1)
        m = as_finite_array("n_down", self.n_down, ndim=1)
        e = as_finite_array("errors", self.errors, ndim=2)
        if p.size < 2 or p[0] != 0 or np.any(np.diff(p) <= 0):
            raise ValueError(f"n_pre must be increasing and start at 0 (scratch); got {p.tolist()}")
        if m.size < 2 or m[0] < 1 or np.any(np.diff(m) <= 0):
            raise ValueError(f"n_down must be increasing and >= 1; got {m.tolist()}")
        if e.shape != (p.size, m.size) or np.any(e <= 0):
            raise ValueError(f"errors must be positive with shape ({p.size}, {m.size}); got {e.shape}")

    @property
    def max_counts(self) -> np.ndarray:
        return np.array([int(self.n_pre[-1]), int(self.n_down[-1])])

    def error(self, counts: Any) -> float:
        from scipy.interpolate import RegularGridInterpolator

        c = check_counts(counts, 2)
        grid = (np.log1p(self.n_pre), np.log(self.n_down))
        point = np.clip([np.log1p(c[0]), np.log(c[1])], [g[0] for g in grid], [g[-1] for g in grid])
        interp = RegularGridInterpolator(grid, np.log(self.errors))
        return float(np.exp(interp(point[None])[0]))


@dataclass(frozen=True)
class PretrainingPlan:
    """Optimal split of budgets between source (pre-training) and target samples.

    budgets (B,) seconds; costs (2,) seconds per source / target sample; n_pre, n_down (B,) the
    optimum (``optimize_allocation`` on a :class:`TransferErrorModel`); error (B,) its predicted
    error; scratch_error (B,) the error of spending everything on target samples (capped at the
    model's largest N)."""

    budgets: np.ndarray
    costs: np.ndarray
    n_pre: np.ndarray
    n_down: np.ndarray
    error: np.ndarray
    scratch_error: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"budgets": self.budgets.tolist(), "costs": self.costs.tolist(), "n_pre": self.n_pre.tolist(),
                "n_down": self.n_down.tolist(), "error": self.error.tolist(),
                "scratch_error": self.scratch_error.tolist()}


def pretraining_plan(model: TransferErrorModel, costs: Any, budgets: Any) -> PretrainingPlan:
    """``optimize_allocation(model, costs, B)`` for each budget (counts capped at the model's grid)
    against spending B on target samples alone. ``costs`` (2,): source, target seconds per sample."""
    from ntk_mlft.allocation import optimize_allocation
    from ntk_mlft.allocation.costs import as_cost_array

    c = as_cost_array(costs, 2)
    b = as_finite_array("budgets", budgets, ndim=1)
    if b.size == 0 or np.any(b < c[1]):
        raise ValueError(f"budgets must be non-empty and each at least one target sample's cost ({c[1]:g} s); "
                         f"got {b.tolist()}")
    caps = model.max_counts
    rows = []
    for budget in b:
        alloc = optimize_allocation(model, c, float(budget), max_samples=caps)
        n_scratch = min(int(budget // c[1]), int(caps[1]))
        rows.append((int(alloc.counts[0]), int(alloc.counts[1]), model.error(alloc.counts),
                     model.error([0, n_scratch])))
    n_pre, n_down, err, scratch = (np.array(v) for v in zip(*rows))
    return PretrainingPlan(b, c, n_pre, n_down, err.astype(float), scratch.astype(float))
