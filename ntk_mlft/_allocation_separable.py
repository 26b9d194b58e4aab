"""Budget allocation for separable power-law error models: continuous optimum and exact integers.

Problem (one fixed set of used levels, ``m = 1..M``; see :mod:`ntk_mlft.error_models` for how
skipped levels' terms are merged into the next used level)::

    minimise   g(x) = sum_m g_m(x_m),   g_m(x) = sum_{k in m} a_k x ** (-p_k)   (a_k >= 0, p_k > 0)
    subject to sum_m c_m x_m <= B,   lo_m <= x_m <= hi_m.

Each ``g_m`` is convex and decreasing, so this is a convex resource-allocation problem.

* :func:`solve_continuous_cvxpy` — the reference solver: cvxpy + Clarabel (power cones), with
  the problem built once per exponent structure with ``cp.Parameter`` (DPP) and re-solved for
  new coefficients / budgets / bounds. Variables are the budget fractions ``y_m = c_m x_m / B``
  so the conic problem is well scaled whatever the units.
* :func:`solve_continuous_dual` — the same optimum from the KKT conditions (used inside
  branch-and-bound where thousands of relaxations are solved): for a multiplier ``lam``,
  ``x_m(lam)`` minimises ``g_m(x) + lam c_m x`` on ``[lo_m, hi_m]`` (Newton on ``log x``; exact in
  one step for a single power law), and ``lam`` is found by Brent's method on the budget. The
  Lagrangian dual value ``sum_m [g_m(x_m) + lam c_m x_m] - lam B`` is a *valid lower bound for any*
  ``lam >= 0``, which is what makes the pruning below rigorous.
* :func:`branch_and_bound` — the exact integer optimum: best-first branch-and-bound on the
  continuous relaxation, branching ``x_m <= floor(x*_m)`` / ``x_m >= ceil(x*_m)`` on the most
  fractional variable; incumbents come from rounding down the relaxation and filling leftover
  budget greedily. A node is pruned only when its lower bound is ``>= incumbent * (1 - 1e-12)``,
  so the returned allocation is optimal among all integer allocations in the box and budget up
  to that relative tolerance (status ``"optimal"``), or the search stopped at ``max_nodes``
  (status ``"node_limit"``: feasible, best found, not proven).
"""

from __future__ import annotations

import functools
import heapq
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["Terms", "branch_and_bound", "greedy_fill", "solve_continuous_cvxpy", "solve_continuous_dual"]

_PRUNE_RTOL = 1e-12


@dataclass(frozen=True)
class Terms:
    """Power-law terms of a separable objective: term ``k`` is ``a[k] * x[var[k]] ** -p[k]``."""

    var: np.ndarray  # int (K,), which variable each term depends on
    a: np.ndarray    # float (K,), >= 0
    p: np.ndarray    # float (K,), > 0
    n_vars: int

    @classmethod
    def from_groups(cls, groups) -> Terms:
        """From ``[(a_array, p_array) per variable]``."""
        var = np.concatenate([np.full(len(a), m) for m, (a, _) in enumerate(groups)]).astype(np.int64)
        a = np.concatenate([np.asarray(a, float) for a, _ in groups])
        p = np.concatenate([np.asarray(p, float) for _, p in groups])
        return cls(var=var, a=a, p=p, n_vars=len(groups))

    def values(self, x: np.ndarray) -> np.ndarray:
        """(M,) ``g_m(x_m)``; ``x`` (M,) > 0."""
        return np.bincount(self.var, self.a * x[self.var] ** (-self.p), minlength=self.n_vars)

    def slopes(self, x: np.ndarray) -> np.ndarray:
        """(M,) ``-g_m'(x_m) >= 0``."""
        return np.bincount(self.var, self.p * self.a * x[self.var] ** (-self.p - 1.0), minlength=self.n_vars)

    def total(self, x: np.ndarray) -> float:
        return float(np.sum(self.a * np.asarray(x, float)[self.var] ** (-self.p)))


def _stationary(terms: Terms, lam: float, c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``argmin_{lo<=x<=hi} g_m(x) + lam c_m x`` for every m (Newton on t = log x, from the left)."""
    a, p, var = terms.a, terms.p, terms.var
    target = np.log(lam * c)
    live = a > 0
    # single-term roots: p a x^{-(p+1)} = lam c; the sum's root is >= the largest of them
    t_single = np.where(live, (np.log(np.where(live, p * a, 1.0)) - target[var]) / (p + 1.0), -np.inf)
    t = np.full(terms.n_vars, -np.inf)
    np.maximum.at(t, var, t_single)
    has_terms = np.isfinite(t)
    t = np.where(has_terms, t, 0.0)
    for _ in range(60):
        w = np.where(live, p * a * np.exp(-(p + 1.0) * t[var]), 0.0)
        s = np.bincount(var, w, minlength=terms.n_vars)
        ds = np.bincount(var, (p + 1.0) * w, minlength=terms.n_vars)
        phi = np.log(np.where(has_terms, s, 1.0)) - np.where(has_terms, target, 0.0)
        step = np.where(has_terms, phi * s / np.where(has_terms, ds, 1.0), 0.0)
        t = t + step
        if np.all(np.abs(step) <= 1e-15 * np.maximum(1.0, np.abs(t))):
            break
    x = np.where(has_terms, np.exp(t), lo)
    return np.clip(x, lo, hi)


def solve_continuous_dual(terms: Terms, c: np.ndarray, budget: float, lo: np.ndarray,
                          hi: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Continuous optimum via the KKT conditions.

    Returns ``(x, lower_bound, lam)``: the minimiser (M,), the Lagrangian dual value (a rigorous
    lower bound on the relaxation's optimum, equal to it up to rounding) and the budget
    multiplier ``lam = -dg*/dB``. Requires ``sum(c * lo) <= budget``.
    """
    from scipy.optimize import brentq

    if float(np.sum(c * hi)) <= budget:
        return hi.copy(), terms.total(hi), 0.0
    lam_all_hi = float(np.min(terms.slopes(hi) / c))
    lam_all_lo = float(np.max(terms.slopes(lo) / c))
    if lam_all_lo <= 0.0:  # no term depends on any variable: everything at lo is optimal
        return lo.copy(), terms.total(lo), 0.0
    lo_log = np.log(max(lam_all_hi, lam_all_lo * 1e-300, 1e-300))
    hi_log = np.log(lam_all_lo)

    def excess(log_lam: float) -> float:
        return float(np.sum(c * _stationary(terms, float(np.exp(log_lam)), c, lo, hi))) - budget

    if excess(hi_log) >= 0.0:
        log_lam = hi_log
    else:
        log_lam = brentq(excess, lo_log, hi_log, xtol=1e-15, rtol=1e-15, maxiter=200)
    lam = float(np.exp(log_lam))
    x = _stationary(terms, lam, c, lo, hi)
    bound = terms.total(x) + lam * (float(np.sum(c * x)) - budget)
    return x, bound, lam


@functools.lru_cache(maxsize=64)
def _cvxpy_problem(var: tuple[int, ...], p: tuple[float, ...], n_vars: int):
    """Parametrised (DPP) problem for one exponent structure; built once, re-solved many times."""
    import cvxpy as cp

    y = cp.Variable(n_vars, pos=True)
    a = cp.Parameter(len(p), nonneg=True)
    lo = cp.Parameter(n_vars, nonneg=True)
    hi = cp.Parameter(n_vars, nonneg=True)
    powers = cp.hstack([cp.power(y[m], -pk, approx=False) for m, pk in zip(var, p)])
    budget_row = cp.sum(y) <= 1.0
    problem = cp.Problem(cp.Minimize(a @ powers), [budget_row, y >= lo, y <= hi])
    assert problem.is_dcp(dpp=True)
    return problem, y, a, lo, hi, budget_row


def solve_continuous_cvxpy(terms: Terms, c: np.ndarray, budget: float, lo: np.ndarray,
                           hi: np.ndarray) -> tuple[np.ndarray, float, float, str]:
    """Continuous optimum with cvxpy + Clarabel. Returns ``(x, value, lam, status)``.

    ``status`` is cvxpy's (``"optimal"`` when solved); on any other status ``x`` is NaN.
    """
    import cvxpy as cp

    problem, y, a, lo_p, hi_p, budget_row = _cvxpy_problem(
        tuple(int(v) for v in terms.var), tuple(float(v) for v in terms.p), terms.n_vars)
    frac = c / budget  # y = x * c / B
    # a_k x^-p = a_k (c/B)^p y^-p; divide by the value at y = 1 for a well-scaled objective
    scaled = terms.a * frac[terms.var] ** terms.p
    scale = float(scaled.sum()) or 1.0
    a.value = scaled / scale
    lo_p.value = lo * frac
    hi_p.value = np.minimum(hi * frac, 1.0)
    try:
        with warnings.catch_warnings():  # "solution may be inaccurate": we check the status ourselves
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10,
                          tol_ktratio=1e-10)
    except cp.error.SolverError as err:
        return np.full(terms.n_vars, np.nan), float("nan"), float("nan"), f"solver_error: {err}"
    status = str(problem.status)
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or y.value is None:
        return np.full(terms.n_vars, np.nan), float("nan"), float("nan"), status
    x = np.asarray(y.value, float) / frac
    lam = float(budget_row.dual_value) * scale / budget
    return x, terms.total(x), lam, status


def greedy_fill(terms: Terms, c: np.ndarray, budget: float, x: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Add one sample at a time where it lowers ``g`` most per second, while the budget allows."""
    x = np.asarray(x, float).copy()
    left = budget - float(np.sum(c * x))
    while True:
        fits = (c <= left * (1 + 1e-12)) & (x + 1 <= hi)
        if not np.any(fits):
            return x
        gain = (terms.values(x) - terms.values(x + 1)) / c
        gain = np.where(fits, gain, -np.inf)
        m = int(np.argmax(gain))
        if gain[m] <= 0:
            return x
        x[m] += 1
        left -= c[m]


@dataclass(frozen=True)
class IntegerSolution:
    x: np.ndarray     # int (M,)
    value: float      # g(x)
    status: str       # "optimal" | "node_limit"
    nodes: int


def branch_and_bound(terms: Terms, c: np.ndarray, budget: float, lo: np.ndarray, hi: np.ndarray, *,
                     incumbent: float = np.inf, max_nodes: int = 200_000) -> IntegerSolution | None:
    """Exact integer minimiser of ``g`` over integers in ``[lo, hi]`` with ``c . x <= budget``.

    ``lo``, ``hi`` integer-valued; ``incumbent``: a value from elsewhere (another set of used
    levels) that this search must beat. Returns None when nothing here beats ``incumbent``
    (or nothing is feasible).
    """
    lo = np.asarray(lo, float)
    hi = np.minimum(np.asarray(hi, float), np.floor((budget - (np.sum(c * lo) - c * lo)) / c * (1 + 1e-12)))
    if float(np.sum(c * lo)) > budget * (1 + 1e-12) or np.any(hi < lo):
        return None
    best_x, best_v = None, float(incumbent)

    def offer(x: np.ndarray) -> None:
        nonlocal best_x, best_v
        if float(np.sum(c * x)) > budget * (1 + 1e-12) or np.any(x < lo) or np.any(x > hi):
            return
        v = terms.total(x)
        if v < best_v:
            best_x, best_v = x.copy(), v

    def relax(nlo: np.ndarray, nhi: np.ndarray):
        if float(np.sum(c * nlo)) > budget * (1 + 1e-12):
            return None
        return solve_continuous_dual(terms, c, budget, nlo, nhi)

    root = relax(lo, hi)
    offer(greedy_fill(terms, c, budget, np.maximum(np.floor(root[0]), lo), hi))
    heap = [(root[1], 0, lo, hi, root[0])]
    counter, nodes = 1, 0
    while heap:
        bound, _, nlo, nhi, x = heapq.heappop(heap)
        if bound >= best_v * (1 - _PRUNE_RTOL):
            continue
        nodes += 1
        if nodes > max_nodes:
            return IntegerSolution(best_x.astype(np.int64), best_v, "node_limit", nodes) if best_x is not None else None
        near = np.abs(x - np.round(x)) <= 1e-9 * np.maximum(1.0, x)
        xr = np.where(near, np.round(x), x)
        if np.all(near):
            if float(np.sum(c * xr)) <= budget * (1 + 1e-12):
                offer(greedy_fill(terms, c, budget, xr, nhi))
                continue
            # rounding up past the budget: split below the variable rounded up most expensively
            m = int(np.argmax(c * (xr - x)))
            split = xr[m] - 1
        else:
            frac = np.where(near, 0.0, xr - np.floor(xr))
            m = int(np.argmax(np.minimum(frac, 1 - frac)))
            split = np.floor(xr[m])
        offer(np.maximum(np.floor(x), nlo))
        down_hi, up_lo = nhi.copy(), nlo.copy()
        down_hi[m], up_lo[m] = split, split + 1
        for clo, chi in ((nlo, down_hi), (up_lo, nhi)):
            if np.all(clo <= chi):
                child = relax(clo, chi)
                if child is not None and child[1] < best_v * (1 - _PRUNE_RTOL):
                    heapq.heappush(heap, (child[1], counter, clo, chi, child[0]))
                    counter += 1
    if best_x is None:
        return None
    return IntegerSolution(best_x.astype(np.int64), best_v, "optimal", nodes)
