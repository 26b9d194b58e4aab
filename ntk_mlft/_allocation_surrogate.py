"""Allocation for non-separable error models (the NTK estimators): convex surrogate + exact local search.

The estimators of :mod:`ntk_mlft.estimators` predict the error of the whole MLFT chain, where
later levels also shrink what earlier ones left, so ``E(N)`` does not split into per-level
terms. We therefore optimise in three steps (a sequential convex approximation):

1. **Local power-law surrogate.** At a point ``x`` (used levels only), for each used level ``m``
   the model is evaluated at three counts ``x_m e^{s}, x_m e^{s+d}, x_m e^{s+2d}`` (``d = log 2``,
   ``s = -d`` unless that would go below the lower bound, then ``s = 0``), the others held fixed.
   A shifted power law ``C + v e^{-p t}`` in ``t = log N_m`` through three equally spaced points
   has ``e^{-p d} = (E_3 - E_2) / (E_2 - E_1)``; this fixes ``p_m`` and ``a_m = v_m x_m^{p_m}``. If
   extra samples do not lower the error locally (``E_3 >= E_2`` or ``E_2 >= E_1``) the level gets
   ``a_m = 0``; the exponent is clipped to ``[0.05, 5]`` (slope kept). For a separable power law
   the surrogate is exact, so this method reproduces the exact allocation (tested).
2. **Convex solve, repeated.** The surrogate ``sum_m a_m N_m^{-p_m}`` is minimised under the
   budget (the KKT solver of :mod:`ntk_mlft._allocation_separable`), the surrogate is refitted at
   the new point, up to ``max_rounds`` times or until the counts move by < 1 %. This is done for
   every set of used levels (finest always used) and the set with the lowest *exact* error at its
   continuous point is kept; the final surrogate is re-solved with cvxpy (reported status).
3. **Integer refinement with the exact model.** The surrogate's exact integer optimum
   (exact search) is the start of a local search on the exact model: moves take ``k``
   samples from one used level and spend the freed budget (plus any leftover) on another, or spend
   the leftover on one level, with ``k`` halving from a quarter of the level's count down to 1.

Guarantee: the result is feasible, its exact predicted error is no larger than at the surrogate's
integer optimum, and no single move of the final (``k = 1``) neighbourhood improves it, i.e. it
is a local optimum of the exact model. It is *not* proven globally optimal for a non-separable
model (the exact model need not be convex).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft._allocation_separable import Terms, exact_integer, solve_continuous_cvxpy, solve_continuous_dual

__all__ = ["SurrogateResult", "fit_local_power_law", "optimize_surrogate"]

_STEP = float(np.log(2.0))


def evaluate_many(model: Any, counts: np.ndarray) -> np.ndarray:
    """(M,) exact errors for (M, L) counts, batched through ``error_many`` when the model has it."""
    counts = np.atleast_2d(np.asarray(counts, float))
    if hasattr(model, "error_many"):
        return np.asarray(model.error_many(counts), float).reshape(-1)
    return np.array([float(model.error(row)) for row in counts])


def fit_local_power_law(model: Any, counts: np.ndarray, active: np.ndarray,
                        lower: np.ndarray) -> tuple[Terms, float]:
    """Surrogate ``E ~ const + sum_m a_m N_m^{-p_m}`` around ``counts`` (L,), used levels ``active``.

    ``lower`` (M,): the smallest admissible count of each used level. Returns the terms (one per
    used level) and the error at ``counts``.
    """
    idx = np.flatnonzero(active)
    x = counts[idx]
    shift = np.where(x * np.exp(-_STEP) >= lower, -_STEP, 0.0)
    rows = [counts]
    for m, level in enumerate(idx):
        for j in range(3):
            row = counts.copy()
            row[level] = x[m] * np.exp(shift[m] + j * _STEP)
            rows.append(row)
    e = evaluate_many(model, np.array(rows))
    e0, pts = e[0], e[1:].reshape(len(idx), 3)
    d1, d2 = pts[:, 1] - pts[:, 0], pts[:, 2] - pts[:, 1]
    helps = (d1 < 0) & (d2 < 0)
    ratio = np.where(helps, d2 / np.where(helps, d1, 1.0), 0.5)
    p_raw = -np.log(np.clip(ratio, 1e-300, None)) / _STEP
    p = np.clip(np.where(helps & (ratio < 1), p_raw, 0.05), 0.05, 5.0)
    # v: value of the varying term at t = log x_m; from the first step: d1 = v e^{-p s}(e^{-p d} - 1)
    v = d1 / (np.exp(-p * shift) * (np.exp(-p * _STEP) - 1.0))
    a = np.where(helps, np.maximum(v, 0.0) * x ** p, 0.0)
    return Terms(var=np.arange(len(idx)), a=a, p=p, n_vars=len(idx)), float(e0)


@dataclass(frozen=True)
class SurrogateResult:
    counts: np.ndarray             # int (L,)
    error: float                   # exact model error at counts
    continuous_counts: np.ndarray  # (L,)
    continuous_error: float        # exact model error at the continuous point
    status: str                    # cvxpy status of the final surrogate solve
    lam: float                     # surrogate budget multiplier (-dE/dB), error per second
    evaluations: int


def _local_search(model: Any, x: np.ndarray, active: np.ndarray, c: np.ndarray, budget: float,
                  lo: np.ndarray, hi: np.ndarray, max_evals: int) -> tuple[np.ndarray, float, int]:
    """Exact-model descent over transfer/fill moves (see module docstring); returns (x, E, evals)."""
    idx = np.flatnonzero(active)
    best = x.astype(float).copy()
    best_e = float(evaluate_many(model, best)[0])
    evals = 1
    k_scale = 0.25
    while evals < max_evals:
        left = budget - float(np.sum(c * best))
        cands = []
        for j in idx:  # spend the leftover on one level
            add = np.floor(left / c[j] * (1 + 1e-12))
            add = min(add, hi[j] - best[j])
            if add >= 1:
                row = best.copy()
                row[j] += add
                cands.append(row)
        for i in idx:
            k = max(1.0, np.floor(k_scale * best[i]))
            if best[i] - k < lo[i]:
                continue
            for j in idx:
                if j == i:
                    continue
                add = min(np.floor((left + k * c[i]) / c[j] * (1 + 1e-12)), hi[j] - best[j])
                if add < 1:
                    continue
                row = best.copy()
                row[i] -= k
                row[j] += add
                cands.append(row)
        improved = False
        if cands:
            cands = np.array(cands)
            e = evaluate_many(model, cands)
            evals += len(cands)
            m = int(np.argmin(e))
            if e[m] < best_e * (1 - 1e-12):
                best, best_e, improved = cands[m], float(e[m]), True
        if not improved:
            if k_scale * np.max(best[idx]) < 1:
                break
            k_scale /= 2
    return best.astype(np.int64), best_e, evals


def optimize_surrogate(model: Any, c: np.ndarray, budget: float, lo: np.ndarray, hi: np.ndarray, *,
                       integer: bool = True, max_rounds: int = 6, max_evals: int = 4000) -> SurrogateResult:
    """Steps 1-3 of the module docstring. ``lo``, ``hi``: (L,) bounds for used levels."""
    n = c.size
    best = None
    evals = 0
    for mask in range(2 ** (n - 1)):
        active = np.array([(mask >> l) & 1 == 0 for l in range(n - 1)] + [True])
        idx = np.flatnonzero(active)
        if float(np.sum(c[idx] * lo[idx])) > budget * (1 + 1e-12):
            continue
        hi_a = np.minimum(hi[idx], np.floor((budget - (np.sum(c[idx] * lo[idx]) - c[idx] * lo[idx])) / c[idx]))
        x = np.clip(budget / (len(idx) * c[idx]), lo[idx], hi_a)
        counts = np.zeros(n)
        for _ in range(max_rounds):
            counts[idx] = x
            terms, _ = fit_local_power_law(model, counts, active, lo[idx])
            evals += 1 + 3 * len(idx)
            x_new, _, lam = solve_continuous_dual(terms, c[idx], budget, lo[idx], hi_a)
            moved = float(np.max(np.abs(np.log(x_new / x))))
            x = x_new
            if moved < 0.01:
                break
        counts[idx] = x
        e = float(evaluate_many(model, counts)[0])
        evals += 1
        if best is None or e < best[0]:
            best = (e, active, counts.copy(), terms, hi_a, lam)
    if best is None:
        raise ValueError("no admissible allocation fits the budget")
    e_cont, active, cont, terms, hi_a, lam = best
    idx = np.flatnonzero(active)
    x_cvx, _, lam_cvx, status = solve_continuous_cvxpy(terms, c[idx], budget, lo[idx], hi_a)
    if np.all(np.isfinite(x_cvx)):
        cont[idx], lam = x_cvx, lam_cvx
        e_cont = float(evaluate_many(model, cont)[0])
        evals += 1
    hi_full = np.zeros(n)
    hi_full[idx] = hi_a
    lo_full = np.where(active, lo, 0.0)
    if integer:
        sol = exact_integer(terms, c[idx], budget, lo[idx], hi_a)
        start = np.zeros(n)
        start[idx] = sol.x
    else:
        start = np.where(active, np.maximum(np.floor(cont), lo_full), 0.0)
    counts, err, used = _local_search(model, start, active, c, budget, lo_full, hi_full, max_evals)
    return SurrogateResult(counts=counts, error=err, continuous_counts=cont, continuous_error=e_cont,
                           status=status, lam=lam, evaluations=evals + used)
