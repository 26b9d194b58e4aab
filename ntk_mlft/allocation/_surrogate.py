"""Allocation for non-separable error models (the NTK estimators): convex surrogate + exact local search.

What: a local power-law surrogate per used level (:func:`fit_local_power_law`, three counts a
factor 2 apart), minimised under the budget and refitted until the counts settle, for every set of
used levels; each set's surrogate integer optimum (and every caller ``starts`` point, e.g. the
optimum at a smaller budget) then starts a steepest-descent local search on the exact model over
:func:`neighbours` (fill, transfer, drop and open moves). The search steps shared with the
separable method (sets of used levels, per-set caps, rounding down, cvxpy-then-KKT, the tolerance)
are :mod:`ntk_mlft.allocation._search`. Derivation: ``docs/theory.md`` section 8.

Guarantee (``integer_status``):

* always: the counts are integers, feasible (``sum c_l N_l <= B``, ``min_samples <= N_l <= max_samples``
  or ``N_l = 0`` for ``l < L``), and the exact predicted error is no larger than at any set's
  surrogate integer optimum (each search only accepts improvements);
* ``"local"``: every search ended because no allocation one move away (the neighbourhood above)
  has an exact error lower by more than ``_search.RTOL`` (1e-12) relative: the result is a local optimum of the
  exact model over that neighbourhood;
* ``"eval_limit"``: some search was stopped by ``max_evals`` exact evaluations before that test
  passed; only the first point holds for it.

It is *not* proven globally optimal: the exact model need not be convex or separable. On the
real :class:`~ntk_mlft.estimators.SpectralEstimator` (mlp-relu-3 NTK on pools of 40-60 inputs,
3 levels, 120 brute-forced cases with capped budgets of 12-90 s) it returned the global integer
optimum in 119 and was 0.03 % above it in the last; ``tests/test_allocation.py`` checks such cases
against brute force.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft.allocation._search import (
    RTOL,
    active_sets,
    affordable,
    continuous_optimum,
    fits,
    improves,
    round_down,
    set_caps,
)
from ntk_mlft.allocation._separable import Terms, exact_integer, solve_continuous_dual

__all__ = ["SurrogateResult", "fit_local_power_law", "neighbours", "optimize_surrogate"]

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
    used level) and the error at ``counts``. Each level is evaluated at ``x_m e^{s}, x_m e^{s+d},
    x_m e^{s+2d}`` (``d = log 2``, ``s = -d`` unless that goes below ``lower``, then 0); a shifted
    power law through them has ``e^{-p d} = (E_3 - E_2) / (E_2 - E_1)``. A level whose extra
    samples do not lower the error gets ``a_m = 0``; exponents are clipped to ``[0.05, 5]``. Exact
    for a separable power law.
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
    integer_status: str            # "local" or "eval_limit" (see the module docstring)


def _spend_on(row: np.ndarray, j: int, money: float, c: np.ndarray, hi: np.ndarray,
              min_samples: int) -> np.ndarray | None:
    """``row`` with ``money`` seconds spent on level ``j`` (more samples, or opening it with at
    least ``min_samples``), or None if that buys nothing admissible."""
    n = min(affordable(money, c[j]), hi[j] - row[j])
    if n < 1 or (row[j] == 0 and n < min_samples):
        return None
    out = row.copy()
    out[j] += n
    return out


def neighbours(x: np.ndarray, c: np.ndarray, budget: float, min_samples: int, hi: np.ndarray) -> np.ndarray:
    """Distinct feasible allocations one move away from ``x`` (L,) (the finest level stays used).

    Moves: *fill* — spend the leftover on one level (more samples, or opening a skipped level with
    at least ``min_samples``); *transfer* — take ``t`` samples from used level i and spend the freed
    plus leftover seconds on one other level j, for every ``t`` in ``{1, 2, 4, 8, ...}``, ``t = x_i -
    min_samples`` (keep the minimum), ``t = x_i`` (*drop* a non-finest level) and the fewest ``t``
    that fill j up to its cap; *open* — give skipped level j ``min_samples`` samples, paid by the
    fewest samples of one used level that cover it.
    """
    n = x.size
    left = budget - float(np.sum(c * x))
    used = np.flatnonzero(x > 0)
    rows = [_spend_on(x, j, left, c, hi, min_samples) for j in range(n)]
    for i in used:
        spare = x[i] - min_samples
        takes = {float(t) for t in 2.0 ** np.arange(int(np.log2(spare)) + 1)} if spare >= 1 else set()
        takes |= {spare} if spare >= 1 else set()
        takes |= {x[i]} if i < n - 1 else set()
        for j in range(n):
            if j == i:
                continue
            to_cap = np.ceil(((hi[j] - x[j]) * c[j] - left) / c[i] * (1 - RTOL))
            extra = {to_cap} if 1 <= to_cap <= spare else set()
            for t in takes | extra:
                base = x.copy()
                base[i] -= t
                rows.append(_spend_on(base, j, left + t * c[i], c, hi, min_samples))
    for j in np.flatnonzero(x == 0):
        if min_samples > hi[j]:
            continue
        for i in used:
            take = max(0.0, np.ceil((min_samples * c[j] - left) / c[i] * (1 - RTOL)))
            if x[i] - take >= min_samples:
                row = x.copy()
                row[i] -= take
                row[j] = min_samples
                rows.append(row)
    rows = [r for r in rows if r is not None]
    return np.unique(np.array(rows), axis=0) if rows else np.zeros((0, n))


def _local_search(model: Any, x: np.ndarray, c: np.ndarray, budget: float, min_samples: int,
                  hi: np.ndarray, max_evals: int) -> tuple[np.ndarray, float, int, str]:
    """Steepest descent of the exact model over :func:`neighbours` until no neighbour is lower by
    more than ``_search.RTOL`` relative (``"local"``) or ``max_evals`` evaluations are used (``"eval_limit"``).
    Returns ``(x, E, evaluations, status)``."""
    best = x.astype(float).copy()
    best_e = float(evaluate_many(model, best)[0])
    evals = 1
    while evals < max_evals:
        cands = neighbours(best, c, budget, min_samples, hi)
        if not len(cands):
            return best.astype(np.int64), best_e, evals, "local"
        e = evaluate_many(model, cands)
        evals += len(cands)
        m = int(np.argmin(e))
        if not improves(float(e[m]), best_e):
            return best.astype(np.int64), best_e, evals, "local"
        best, best_e = cands[m], float(e[m])
    return best.astype(np.int64), best_e, evals, "eval_limit"


def _continuous(model: Any, c: np.ndarray, budget: float, lo: np.ndarray, hi_a: np.ndarray, active: np.ndarray,
                max_rounds: int) -> tuple[np.ndarray, Terms, float, int]:
    """Step 2 for one set of used levels: refitted surrogate solves. Returns the (L,) continuous
    point, the last surrogate, its budget multiplier and the evaluations used."""
    idx = np.flatnonzero(active)
    x = np.clip(budget / (len(idx) * c[idx]), lo[idx], hi_a)
    counts = np.zeros(c.size)
    evals = 0
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
    return counts, terms, lam, evals


def optimize_surrogate(model: Any, c: np.ndarray, budget: float, lo: np.ndarray, hi: np.ndarray, *,
                       integer: bool = True, max_rounds: int = 6, max_evals: int = 4000,
                       starts: tuple[np.ndarray, ...] = ()) -> SurrogateResult:
    """Steps 1-3 of the module docstring. ``lo`` (L,): ``min_samples`` per level (all equal);
    ``hi`` (L,): caps (``inf``: none); ``max_evals``: exact evaluations per local search;
    ``starts``: extra (L,) feasible integer start points (checked by the caller)."""
    n = c.size
    min_samples = int(lo[0])
    sets = []
    evals = 0
    for active in active_sets(n):
        idx = np.flatnonzero(active)
        if not fits(c[idx], lo[idx], budget):
            continue
        hi_a = set_caps(c[idx], lo[idx], hi[idx], budget)
        counts, terms, lam, used = _continuous(model, c, budget, lo, hi_a, active, max_rounds)
        e = float(evaluate_many(model, counts)[0])
        evals += used + 1
        sets.append((e, active, counts, terms, hi_a, lam))
    if not sets:
        raise ValueError("no admissible allocation fits the budget")
    e_cont, active, cont, terms, hi_a, lam = min(sets, key=lambda s: s[0])
    idx = np.flatnonzero(active)
    x_cvx, lam, status = continuous_optimum(terms, c[idx], budget, lo[idx], hi_a)
    cont = cont.copy()
    cont[idx] = x_cvx
    e_cont = float(evaluate_many(model, cont)[0])
    evals += 1
    best, statuses = None, []
    for _, act, cont_s, terms_s, hi_s, _ in sets:  # step 3 from every set's surrogate optimum
        ids = np.flatnonzero(act)
        start = np.zeros(n)
        if integer:
            start[ids] = exact_integer(terms_s, c[ids], budget, lo[ids], hi_s).x
        else:
            start[ids] = round_down(cont_s[ids], c[ids], lo[ids], budget)
        counts, err, used, st = _local_search(model, start, c, budget, min_samples, hi, max_evals)
        evals += used
        statuses.append(st)
        if best is None or err < best[1]:
            best = (counts, err)
    for start in starts:
        counts, err, used, st = _local_search(model, np.asarray(start, float), c, budget, min_samples, hi,
                                              max_evals)
        evals += used
        statuses.append(st)
        if err < best[1]:
            best = (counts, err)
    int_status = "local" if all(st == "local" for st in statuses) else "eval_limit"
    return SurrogateResult(counts=best[0], error=best[1], continuous_counts=cont, continuous_error=e_cont,
                           status=status, lam=lam, evaluations=evals, integer_status=int_status)
