"""Budget allocation for separable power-law error models: continuous optimum and exact integers
(``docs/theory.md`` section 8).

Problem (one fixed set of used levels, ``m = 1..M``; see :mod:`ntk_mlft.estimators.base` for how
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
* :func:`exact_integer` — the exact integer optimum. An incumbent comes from rounding the
  continuous optimum down and filling leftover budget greedily; then :func:`box_search` enumerates
  every integer point of a box around the continuous optimum that provably contains every
  allocation better than the incumbent (strong-convexity argument in its docstring), with one level
  solved in closed form per configuration. If that box is too large, best-first
  :func:`branch_and_bound` on the continuous relaxation is used instead (branching on the costliest
  rounding; pruning only when a node's bound is ``>= incumbent * (1 - RTOL)``, ``_search.RTOL`` =
  1e-12; status ``"node_limit"`` if it stops early). Both are optimal among all integer allocations in the box
  and budget up to that relative tolerance, and both are checked against brute force in tests.
"""

from __future__ import annotations

import functools
import heapq
import warnings
from dataclasses import dataclass

import numpy as np

from ntk_mlft.allocation._search import RTOL, affordable, fits, improves, round_down, set_caps

__all__ = ["Terms", "box_search", "branch_and_bound", "exact_integer", "greedy_fill", "solve_continuous_cvxpy",
           "solve_continuous_dual"]


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


def _stationary(terms: Terms, lam: float, c: np.ndarray, lo: np.ndarray,
                hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``argmin_{lo<=x<=hi} g_m(x) + lam c_m x`` for every m (Newton on t = log x, from the left).

    Returns ``x`` (M,) and ``d log x / d log lam`` (M,) (0 where a bound is active).
    """
    a, p, var = terms.a, terms.p, terms.var
    target = np.log(lam * c)
    live = a > 0
    # single-term roots: p a x^{-(p+1)} = lam c; the sum's root is >= the largest of them, and
    # phi(t) = log sum_k p a e^{-(p+1)t} - log(lam c) is convex decreasing, so Newton from there
    # converges monotonically (in one step for a single term)
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
    dlog = np.where(has_terms, -s / np.where(has_terms, ds, 1.0), 0.0)
    inside = (x > lo) & (x < hi)
    return np.clip(x, lo, hi), np.where(inside, dlog, 0.0)


def solve_continuous_dual(terms: Terms, c: np.ndarray, budget: float, lo: np.ndarray,
                          hi: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Continuous optimum via the KKT conditions.

    Returns ``(x, lower_bound, lam)``: the minimiser (M,), the Lagrangian dual value (a rigorous
    lower bound on the relaxation's optimum, equal to it up to rounding) and the budget
    multiplier ``lam = -dg*/dB``. Requires ``sum(c * lo) <= budget``. ``lam`` solves
    ``sum_m c_m x_m(lam) = B`` by safeguarded Newton on ``log lam`` (bisection fallback).
    """
    if float(np.sum(c * hi)) <= budget:
        return hi.copy(), terms.total(hi), 0.0
    slopes_lo = terms.slopes(lo) / c
    if float(np.max(slopes_lo)) <= 0.0:  # no term depends on any variable: everything at lo is optimal
        return lo.copy(), terms.total(lo), 0.0
    slopes_hi = terms.slopes(hi) / c
    u_hi = float(np.log(np.max(slopes_lo)))  # every x at lo: spend <= B
    u_lo = float(np.log(np.min(slopes_hi))) if np.min(slopes_hi) > 0 else u_hi - 700.0  # all at hi: > B
    log_b = float(np.log(budget))

    def f(u: float):
        x, dlog = _stationary(terms, float(np.exp(u)), c, lo, hi)
        spend = c * x
        total = float(spend.sum())
        return x, np.log(total) - log_b, float(np.sum(spend * dlog)) / total

    u = u_lo
    x, fu, du = f(u)
    for _ in range(200):
        if fu > 0:
            u_lo = u
        else:
            u_hi = u
        if abs(fu) <= 1e-15 or u_hi - u_lo <= 1e-15 * max(1.0, abs(u)):
            break
        u_new = u - fu / du if du < 0 else 0.5 * (u_lo + u_hi)
        if not (u_lo < u_new < u_hi):
            u_new = 0.5 * (u_lo + u_hi)
        u = u_new
        x, fu, du = f(u)
    lam = float(np.exp(u))
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
    x = np.clip(np.asarray(y.value, float) / frac, lo, hi)  # solver tolerance can step outside by ~1e-9
    lam = float(budget_row.dual_value) * scale / budget
    return x, terms.total(x), lam, status


def greedy_fill(terms: Terms, c: np.ndarray, budget: float, x: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Add one sample at a time where it lowers ``g`` most per second, while the budget allows."""
    x = np.asarray(x, float).copy()
    left = budget - float(np.sum(c * x))
    while True:
        room = (c <= left * (1 + RTOL)) & (x + 1 <= hi)
        if not np.any(room):
            return x
        gain = (terms.values(x) - terms.values(x + 1)) / c
        gain = np.where(room, gain, -np.inf)
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
    hi = set_caps(c, lo, hi, budget)
    if not fits(c, lo, budget) or np.any(hi < lo):
        return None
    best_x, best_v = None, float(incumbent)

    def offer(x: np.ndarray) -> None:
        nonlocal best_x, best_v
        if not fits(c, x, budget) or np.any(x < lo) or np.any(x > hi):
            return
        v = terms.total(x)
        if v < best_v:
            best_x, best_v = x.copy(), v

    def relax(nlo: np.ndarray, nhi: np.ndarray):
        if not fits(c, nlo, budget):
            return None
        return solve_continuous_dual(terms, c, budget, nlo, nhi)

    root = relax(lo, hi)
    offer(greedy_fill(terms, c, budget, np.maximum(np.floor(root[0]), lo), hi))
    heap = [(root[1], 0, lo, hi, root[0])]
    counter, nodes = 1, 0
    while heap:
        bound, _, nlo, nhi, x = heapq.heappop(heap)
        if not improves(bound, best_v):
            continue
        nodes += 1
        if nodes > max_nodes:
            return IntegerSolution(best_x.astype(np.int64), best_v, "node_limit", nodes) if best_x is not None else None
        near = np.abs(x - np.round(x)) <= 1e-9 * np.maximum(1.0, x)
        xr = np.where(near, np.round(x), x)
        if np.all(near):
            if fits(c, xr, budget):
                offer(greedy_fill(terms, c, budget, xr, nhi))
                continue
            # rounding up past the budget: split below the variable rounded up most expensively
            m = int(np.argmax(c * (xr - x)))
            split = xr[m] - 1
        else:
            frac = np.where(near, 0.0, xr - np.floor(xr))
            m = int(np.argmax(c * np.minimum(frac, 1 - frac)))  # costliest rounding first
            split = np.floor(xr[m])
        offer(np.maximum(np.floor(x), nlo))
        down_hi, up_lo = nhi.copy(), nlo.copy()
        down_hi[m], up_lo[m] = split, split + 1
        for clo, chi in ((nlo, down_hi), (up_lo, nhi)):
            if np.all(clo <= chi):
                child = relax(clo, chi)
                if child is not None and improves(child[1], best_v):
                    heapq.heappush(heap, (child[1], counter, clo, chi, child[0]))
                    counter += 1
    if best_x is None:
        return None
    return IntegerSolution(best_x.astype(np.int64), best_v, "optimal", nodes)


def _curvature(terms: Terms, x: np.ndarray) -> np.ndarray:
    """(M,) ``g_m''(x_m) = sum_k p (p + 1) a x^{-p-2}`` (decreasing in x)."""
    p, a, var = terms.p, terms.a, terms.var
    return np.bincount(var, p * (p + 1.0) * a * x[var] ** (-p - 2.0), minlength=terms.n_vars)


def box_search(terms: Terms, c: np.ndarray, budget: float, lo: np.ndarray, hi: np.ndarray, x_cont: np.ndarray,
               bound: float, incumbent: float, *, max_configs: float = 2e7,
               block: int = 1_000_000) -> IntegerSolution | None | str:
    """Exact integer optimum by enumeration over a provably sufficient box.

    At the continuous optimum ``x_c`` (value ``>= bound``) first-order optimality gives
    ``grad g(x_c) . (x - x_c) >= 0`` for every feasible ``x``, and each ``g_m`` has curvature
    ``>= mu_m = g_m''(x_cm + r_m)`` on ``[x_cm - r_m, x_cm + r_m]`` (``g_m''`` decreases), so
    ``g(x) >= bound + 1/2 sum_m mu_m (x_m - x_cm)^2``. Any ``x`` beating ``incumbent`` therefore has
    ``|x_m - x_cm| <= r_m`` with ``r_m = sqrt(2 (incumbent - bound) / mu_m)`` (a fixed point, found by
    iteration; capped by the bounds). All integer points of that box are enumerated, except one level
    (the widest range) which takes, for each configuration of the others, its best value
    ``min(hi, floor(leftover / c))`` (``g`` decreases in it). Levels with no terms sit at ``lo``.

    Returns the best solution beating ``incumbent`` (status ``"optimal"``), None if none does, or
    ``"too_large"`` when the box has more than ``max_configs`` configurations.
    """
    import itertools

    n = terms.n_vars
    has = np.bincount(terms.var, terms.a, minlength=n) > 0
    gap = max(incumbent - bound, 0.0) * (1 + 1e-9) + 1e-300
    r = np.zeros(n)
    for _ in range(100):
        mu = _curvature(terms, np.minimum(x_cont + r, hi))
        r_new = np.where(has, np.sqrt(2.0 * gap / np.where(mu > 0, mu, 1e-300)), 0.0)
        r_new = np.minimum(r_new, hi - lo)
        if np.all(r_new <= r * (1 + RTOL) + RTOL):
            break
        r = r_new
    r = r + 1.0  # slack for the rounding of x_c
    low = np.where(has, np.maximum(lo, np.ceil(x_cont - r)), lo)
    high = np.where(has, np.minimum(hi, np.floor(x_cont + r)), lo)
    if np.any(high < low):
        return None
    sizes = high - low + 1
    free = int(np.argmax(np.where(has, sizes, -1)))
    others = [m for m in np.argsort(-sizes) if m != free]
    if float(np.prod(sizes[others])) > max_configs:
        return "too_large"
    ranges = [np.arange(low[m], high[m] + 1) for m in others]
    k = len(others)
    while k > 0 and float(np.prod([len(rg) for rg in ranges[k - 1:]])) <= block:
        k -= 1  # vectorise the trailing (smallest) ranges, loop over the leading ones
    mask_free = terms.var == free
    a_f, p_f = terms.a[mask_free], terms.p[mask_free]
    best_v, best_x = float(incumbent), None
    tail = ranges[k:]
    grids = np.meshgrid(*tail, indexing="ij") if tail else []
    tail_x = [g.reshape(-1) for g in grids]
    tail_spend = sum((c[others[k + i]] * tx for i, tx in enumerate(tail_x)), np.zeros(1))
    tail_val = sum((_values_1d(terms, others[k + i], tx) for i, tx in enumerate(tail_x)), np.zeros(1))
    for head in itertools.product(*ranges[:k]):
        head_spend = sum(c[others[i]] * v for i, v in enumerate(head))
        head_val = sum(float(_values_1d(terms, others[i], np.array([v]))[0]) for i, v in enumerate(head))
        left = budget - head_spend - tail_spend
        xf = np.minimum(hi[free], affordable(left, c[free]))
        ok = xf >= lo[free]
        if not np.any(ok):
            continue
        xf_safe = np.where(ok, xf, 1.0)
        val = head_val + tail_val + (a_f * xf_safe[:, None] ** (-p_f)).sum(axis=1)
        val = np.where(ok, val, np.inf)
        j = int(np.argmin(val))
        if val[j] < best_v:
            x = np.empty(n)
            x[free] = xf[j]
            for i, v in enumerate(head):
                x[others[i]] = v
            for i, tx in enumerate(tail_x):
                x[others[k + i]] = tx[j]
            best_v, best_x = float(val[j]), x
    if best_x is None:
        return None
    return IntegerSolution(best_x.astype(np.int64), terms.total(best_x), "optimal", int(np.prod(sizes[others])))


def _values_1d(terms: Terms, m: int, x: np.ndarray) -> np.ndarray:
    """``g_m`` at each entry of ``x``."""
    sel = terms.var == m
    return (terms.a[sel] * np.asarray(x, float)[:, None] ** (-terms.p[sel])).sum(axis=1)


def exact_integer(terms: Terms, c: np.ndarray, budget: float, lo: np.ndarray, hi: np.ndarray, *,
                  incumbent: float = np.inf) -> IntegerSolution | None:
    """Exact integer optimum: :func:`box_search` around the continuous optimum (incumbent from
    rounding down + greedy fill), or :func:`branch_and_bound` when that box is too large."""
    lo = np.asarray(lo, float)
    hi = set_caps(c, lo, hi, budget)
    if not fits(c, lo, budget) or np.any(hi < lo):
        return None
    x_c, bound, _ = solve_continuous_dual(terms, c, budget, lo, hi)
    if not improves(bound, incumbent):
        return None
    start = round_down(x_c, c, lo, budget)
    guess = greedy_fill(terms, c, budget, start, hi)
    v_guess = terms.total(guess)
    res = box_search(terms, c, budget, lo, hi, x_c, bound, min(incumbent, v_guess))
    if isinstance(res, str):
        return branch_and_bound(terms, c, budget, lo, hi, incumbent=incumbent)
    if res is None:
        return IntegerSolution(guess.astype(np.int64), v_guess, "optimal", 0) if v_guess < incumbent else None
    return res
