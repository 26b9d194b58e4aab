"""How many training samples to buy at each level: the MLFT budget problem (``docs/theory.md`` section 8).

Given an error model ``E(N_1..N_L)`` (predicted relative MSE, :mod:`ntk_mlft.estimators.base`),
per-sample costs ``c_l`` (seconds, :class:`ntk_mlft.allocation.costs.CostTable` or an array) and a budget
``B`` (seconds), :func:`optimize_allocation` solves

    minimise E(N)   subject to   sum_l c_l N_l <= B,   N_L >= min_samples,
                                 N_l in {0} U [min_samples, max_samples_l]  (l < L),

where ``N_l = 0`` skips a non-finest level (its difference is then learned with the next used
level). With ``E = sum_l V_l / N_l`` and no level skipped, the continuous optimum is the MLMC rule
(Giles 2008; MLFT: Li, Fan, Ying 2021)

    N_l = B sqrt(V_l / c_l) / sum_k sqrt(V_k c_k),   E* = (sum_l sqrt(V_l c_l))^2 / B.

Methods (and what is guaranteed):

* :class:`~ntk_mlft.estimators.base.PowerLawErrorModel` (separable): every set of used levels is
  solved; the continuous optimum comes from cvxpy + Clarabel (status reported), and the integer
  answer from an exhaustive search of a provably sufficient box around it (branch-and-bound when the
  box is too large) on the exact model — **optimal among all integer allocations within
  the budget** (relative tolerance 1e-12) when ``integer_status == "optimal"``.
* any other :class:`~ntk_mlft.estimators.base.ErrorModel` (the NTK estimators): local power-law
  surrogates solved convexly for every set of used levels, then a local search with the exact
  model from each set's surrogate integer optimum, whose moves also drop and open levels —
  feasible, no worse than any of those starts, and **locally optimal** over that neighbourhood
  when ``integer_status == "local"`` (``"eval_limit"``: the search was cut short, only the first
  two hold); see :mod:`ntk_mlft.allocation._surrogate`.
* baselines: :func:`single_level_allocation` (all budget on the finest level) and
  :func:`equal_split_allocation` (each level gets ``B / L`` seconds), both honouring
  ``max_samples`` so that they are compared with the optimum under the same caps.

Every :class:`Allocation` says how much of the budget it leaves unspent and why
(``unspent``, ``unspent_reason``: rounding to whole samples, a binding ``max_samples`` cap, or no
predicted gain), and gives each level's spend both as a share of the budget and of the spend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ntk_mlft._checks import as_finite_array, check_error_estimate, check_positive_int, check_positive_scalar
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
from ntk_mlft.allocation._separable import Terms, exact_integer, greedy_fill, solve_continuous_dual
from ntk_mlft.allocation._surrogate import optimize_surrogate
from ntk_mlft.allocation.costs import as_cost_array
from ntk_mlft.estimators.base import PowerLawErrorModel

__all__ = [
    "Allocation",
    "minimum_budget",
    "optimize_allocation",
    "single_level_allocation",
    "equal_split_allocation",
    "mlmc_allocation",
]


@dataclass(frozen=True)
class Allocation:
    """Samples per level at a budget, and what the error model predicts for them.

    Attributes:
        counts: int (L,) samples per level (level 1 = coarsest); 0 = level skipped.
        predicted_error: model error (relative MSE) at ``counts``.
        cost: ``sum(counts * costs)`` in seconds (``<= budget``).
        budget: the budget in seconds.
        costs: (L,) seconds per sample.
        continuous_counts: (L,) optimum of the continuous relaxation (NaN-free; 0 where skipped).
        continuous_error: model error at ``continuous_counts`` (a lower bound for separable models).
        status: solver status of the continuous problem (cvxpy's, e.g. ``"optimal"``) or ``"baseline"``.
        method: ``"exact-integer"``, ``"surrogate+local-search"``, ``"rounded"``,
            ``"single-level"`` or ``"equal-split"``.
        integer_status: ``"optimal"`` (proven), ``"node_limit"`` (branch-and-bound stopped early),
            ``"local"`` (local optimum of the exact model), ``"eval_limit"`` (local search stopped by
            its evaluation limit) or ``"heuristic"`` (rounding, baselines).
        skipped_levels: 1-based levels with 0 samples.
        marginal_error_per_second: ``-dE*/dB`` at the continuous optimum (the budget's dual
            variable; NaN for baselines): how much one more second would lower the error.
        max_samples: (L,) float cap per level (``inf`` = no cap).
        unspent_reason: why ``unspent`` seconds were left (``"none"`` when the budget is spent
            to rounding): ``"indivisible: ..."`` (less than one more sample fits at any level the
            rule buys), ``"sample cap: ..."`` (the only purchases that fit are blocked by
            ``max_samples``) or ``"no gain: ..."`` (the model predicts no lower error from what fits).
    """

    counts: np.ndarray
    predicted_error: float
    cost: float
    budget: float
    costs: np.ndarray
    continuous_counts: np.ndarray
    continuous_error: float
    status: str
    method: str
    integer_status: str
    skipped_levels: tuple[int, ...] = field(default=())
    marginal_error_per_second: float = float("nan")
    max_samples: np.ndarray | None = None
    unspent_reason: str = "none"

    @property
    def n_levels(self) -> int:
        return int(self.counts.size)

    @property
    def spend(self) -> np.ndarray:
        """(L,) seconds spent per level."""
        return self.counts * self.costs

    @property
    def unspent(self) -> float:
        """Seconds of the budget left unspent, ``budget - cost >= 0`` (see ``unspent_reason``)."""
        return max(0.0, self.budget - self.cost)

    @property
    def share_of_budget(self) -> np.ndarray:
        """(L,) ``spend_l / budget``; sums to ``cost / budget`` (< 1 when budget is left unspent)."""
        return self.spend / self.budget

    @property
    def share_of_spend(self) -> np.ndarray:
        """(L,) ``spend_l / cost``; sums to 1."""
        return self.spend / self.cost

    @property
    def capped_levels(self) -> tuple[int, ...]:
        """1-based levels whose count reached ``max_samples``."""
        if self.max_samples is None:
            return ()
        return tuple(int(l) + 1 for l in np.flatnonzero(self.counts >= self.max_samples))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able summary (``share`` is the share of the budget, as ``share_of_budget``)."""
        caps = None if self.max_samples is None else [None if not np.isfinite(v) else int(v)
                                                       for v in self.max_samples]
        return {
            "counts": [int(v) for v in self.counts],
            "predicted_error": float(self.predicted_error),
            "cost_seconds": float(self.cost),
            "budget_seconds": float(self.budget),
            "unspent_seconds": float(self.unspent),
            "unspent_reason": self.unspent_reason,
            "cost_per_sample_seconds": [float(v) for v in self.costs],
            "spend_seconds": [float(v) for v in self.spend],
            "share": [float(v) for v in self.share_of_budget],
            "share_of_budget": [float(v) for v in self.share_of_budget],
            "share_of_spend": [float(v) for v in self.share_of_spend],
            "max_samples": caps,
            "capped_levels": list(self.capped_levels),
            "continuous_counts": [float(v) for v in self.continuous_counts],
            "continuous_error": float(self.continuous_error),
            "status": self.status,
            "method": self.method,
            "integer_status": self.integer_status,
            "skipped_levels": list(self.skipped_levels),
            "marginal_error_per_second": float(self.marginal_error_per_second),
        }


def _unspent_reason(counts: np.ndarray, costs: np.ndarray, budget: float, left: np.ndarray, caps: np.ndarray,
                    min_samples: int = 1) -> str:
    """Why ``budget - cost`` seconds are left (see :attr:`Allocation.unspent_reason`).

    ``left`` (L,): seconds level l could still draw on under the rule (``-inf``: the rule buys
    nothing more there). One more purchase at level l costs ``c_l`` (used level) or
    ``min_samples c_l`` (opening a skipped level); ``caps`` (L,) ``max_samples`` (``inf``: none).
    """
    counts = np.asarray(counts)
    if budget - float(np.sum(counts * costs)) <= 1e-9 * budget:
        return "none"
    step = np.where(counts > 0, 1, min_samples)
    price = step * costs
    fits = price <= left * (1 + RTOL)
    if not np.any(fits):
        rest = np.flatnonzero(np.isfinite(left) & (left > RTOL * budget))
        if rest.size == 0:  # the rule leaves nothing anywhere; the seconds are outside every level's share
            rest = np.array([int(np.argmin(np.where(np.isfinite(left), price, np.inf)))])
        return ("indivisible: what the rule leaves at level(s) "
                f"{', '.join(str(l + 1) for l in rest)} "
                f"({', '.join(f'{max(float(left[l]), 0.0):.6g}' for l in rest)} s) is less than one more "
                f"sample there ({', '.join(f'{price[l]:.6g}' for l in rest)} s)")
    blocked = fits & (counts + step > caps)
    if np.all(blocked[fits]):
        where = np.flatnonzero(blocked)
        return (f"sample cap: level(s) {', '.join(str(l + 1) for l in where)} at max_samples "
                f"({', '.join(str(int(caps[l])) for l in where)}); any other purchase the rule may make "
                f"costs more than is left")
    return "no gain: the error model predicts no lower error from any further purchase that fits"


def _check_model(model: Any) -> int:
    if not hasattr(model, "error") or not hasattr(model, "n_levels"):
        raise TypeError(f"model must be an ErrorModel (with n_levels and error(counts)); got {type(model).__name__}")
    return check_positive_int("model.n_levels", int(model.n_levels))


MAX_COUNT = 10 ** 15
"""Largest sample count per level an allocation may reach (budget / cost, or the cap): beyond it
counts lose integer precision in float64 arithmetic (2**53 ~ 9e15), and no training set is that
large."""


def minimum_budget(costs: Any, min_samples: int = 1) -> float:
    """Cheapest admissible allocation: ``min_samples`` at the finest level, all others skipped."""
    c = as_cost_array(costs)
    return float(check_positive_int("min_samples", min_samples) * c[-1])


def _prepare(model: Any, costs: Any, budget: Any, min_samples: Any = 1, max_samples: Any = None):
    n = _check_model(model)
    c = as_cost_array(costs, n)
    budget = check_positive_scalar("budget", budget)
    min_samples = check_positive_int("min_samples", min_samples)
    need = min_samples * c[-1]
    if budget < need * (1 - RTOL):
        raise ValueError(f"budget {budget:.6g} s is below the cheapest admissible allocation "
                         f"({min_samples} sample(s) at the finest level {n}, {c[-1]:.6g} s each): "
                         f"the minimum budget needed is {need:.6g} s")
    if max_samples is None:
        hi = np.full(n, np.inf)
    else:
        hi = np.broadcast_to(np.asarray(max_samples), (n,)) if np.ndim(max_samples) == 0 else np.asarray(max_samples)
        if hi.shape != (n,) or hi.dtype.kind not in "iu" or np.any(hi < min_samples):
            raise ValueError(f"max_samples must be None, an integer or {n} integers, each >= min_samples "
                             f"({min_samples}); got {max_samples!r}")
        hi = hi.astype(float)
    with np.errstate(over="ignore"):
        most = np.minimum(budget / c, hi)
    if np.any(most > MAX_COUNT):
        l = int(np.argmax(most))
        raise ValueError(f"budget {budget:.6g} s buys {most[l]:.3g} samples at level {l + 1} ({c[l]:.3g} s each), "
                         f"more than the largest count supported ({MAX_COUNT:.0e} per level); give the budget "
                         "and costs in units where a level's count stays below that, or cap it (max_samples)")
    cheapest = np.zeros(n)
    cheapest[-1] = min_samples
    check_error_estimate(f"the predicted error of the cheapest allocation {cheapest.astype(int).tolist()}",
                         model.error(cheapest))  # a broken model fails here, not after the search
    return n, c, float(budget), min_samples, hi


def _check_warm_start(counts: Any, c: np.ndarray, budget: float, min_samples: int, hi: np.ndarray) -> np.ndarray:
    """``counts`` as (L,) floats after checking it is a feasible integer allocation."""
    x = np.asarray(counts)
    if x.shape != c.shape or x.dtype.kind not in "iuf" or not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
        raise ValueError(f"warm_start must be {c.size} integer counts; got {counts!r}")
    x = x.astype(float)
    used = x > 0
    if x[-1] < min_samples or np.any(x[used] < min_samples) or np.any(x < 0) or np.any(x > hi):
        raise ValueError(f"warm_start {x.astype(int).tolist()} must use the finest level, give every used level "
                         f"at least min_samples ({min_samples}) and respect max_samples")
    if not fits(c, x, budget):
        raise ValueError(f"warm_start {x.astype(int).tolist()} costs {float(np.sum(c * x)):.6g} s, more than the "
                         f"budget {budget:.6g} s")
    return x


def _skipped(counts: np.ndarray) -> tuple[int, ...]:
    return tuple(int(l) + 1 for l in np.flatnonzero(counts == 0))


def optimize_allocation(model: Any, costs: Any, budget: float, *, integer: bool = True,
                        min_samples: int = 1, max_samples: Any = None, warm_start: Any = None) -> Allocation:
    """Samples per level minimising the model's predicted error within ``budget`` seconds.

    Args:
        model: an :class:`~ntk_mlft.estimators.base.ErrorModel` (power law: exact method; others:
            surrogate + local search, see the module docstring).
        costs: (L,) seconds per sample, or a :class:`~ntk_mlft.allocation.costs.CostTable`.
        budget: seconds (> 0, at least ``min_samples * c_L``).
        integer: True: integer counts (exactly optimal for power laws); False: the continuous
            optimum rounded down and greedily filled (``method == "rounded"``).
        min_samples: least count of every used level (skipped levels have 0; the finest level is
            always used).
        max_samples: None, or an int / (L,) ints capping each level; a cap that binds leaves budget
            unspent, which the result reports (``unspent``, ``unspent_reason``).
        warm_start: None, or (L,) integer counts feasible here (within the budget and the caps,
            finest level used, every used level >= ``min_samples``), e.g. the optimum at a smaller
            budget: the local search also starts from it, so the result's predicted error is at
            most its error. Ignored for power-law models (their method is exact).

    Raises:
        ValueError: invalid costs / lengths, ``budget`` below the minimum (stated), or an
            infeasible ``warm_start``.
    """
    n, c, budget, min_samples, hi = _prepare(model, costs, budget, min_samples, max_samples)
    lo = np.full(n, float(min_samples))
    starts = () if warm_start is None else (_check_warm_start(warm_start, c, budget, min_samples, hi),)
    if not isinstance(model, PowerLawErrorModel):
        res = optimize_surrogate(model, c, budget, lo, hi, integer=integer, starts=starts)
        return _finish(model, c, budget, hi, min_samples, res.counts, continuous=res.continuous_counts,
                       continuous_error=res.continuous_error, status=res.status, method="surrogate+local-search",
                       integer_status=res.integer_status, lam=res.lam)

    candidates = []
    for active in active_sets(n):
        idx = np.flatnonzero(active)
        if not fits(c[idx], lo[idx], budget):
            continue
        terms = Terms.from_groups(model.merged(active))
        hi_a = set_caps(c[idx], lo[idx], hi[idx], budget)
        x, bound, _ = solve_continuous_dual(terms, c[idx], budget, lo[idx], hi_a)
        candidates.append((bound, idx, terms, hi_a, x))
    candidates.sort(key=lambda t: t[0])

    _, idx, terms, hi_a, _ = candidates[0]
    x_cvx, lam, status = continuous_optimum(terms, c[idx], budget, lo[idx], hi_a)
    continuous = np.zeros(n)
    continuous[idx] = x_cvx

    if integer:
        best, best_idx, int_status = None, None, "optimal"
        for bound, idx_s, terms_s, hi_s, _ in candidates:
            if best is not None and not improves(bound, best.value):
                break
            sol = exact_integer(terms_s, c[idx_s], budget, lo[idx_s], hi_s,
                                incumbent=np.inf if best is None else best.value)
            if sol is not None:
                best, best_idx = sol, idx_s
                if sol.status != "optimal":
                    int_status = sol.status
        counts = np.zeros(n, dtype=np.int64)
        counts[best_idx] = best.x
        method = "exact-integer"
    else:
        x0 = round_down(x_cvx, c[idx], lo[idx], budget)
        counts = np.zeros(n, dtype=np.int64)
        counts[idx] = greedy_fill(terms, c[idx], budget, x0, hi_a).astype(np.int64)
        method, int_status = "rounded", "heuristic"
    return _finish(model, c, budget, hi, min_samples, counts, continuous=continuous,
                   continuous_error=model.error(continuous), status=status, method=method,
                   integer_status=int_status, lam=lam)


def _finish(model: Any, c: np.ndarray, budget: float, caps: np.ndarray, min_samples: int, counts: np.ndarray, *,
            continuous: np.ndarray, continuous_error: float, status: str, method: str, integer_status: str,
            lam: float = float("nan"), left: np.ndarray | None = None) -> Allocation:
    """The :class:`Allocation` record; ``left`` (L,) as in :func:`_unspent_reason` (default: the
    whole unspent budget is available to every level)."""
    counts = np.asarray(counts, dtype=np.int64)
    cost = float(np.sum(counts * c))
    if left is None:
        left = np.full(c.size, budget - cost)
    error = float(check_error_estimate(f"the predicted error of counts {counts.tolist()}", model.error(counts)))
    return Allocation(counts=counts, predicted_error=error, cost=cost, budget=budget,
                      costs=c, continuous_counts=np.asarray(continuous, float),
                      continuous_error=float(continuous_error), status=status, method=method,
                      integer_status=integer_status, skipped_levels=_skipped(counts),
                      marginal_error_per_second=float(lam), max_samples=caps.copy(),
                      unspent_reason=_unspent_reason(counts, c, budget, left, caps, min_samples))


def mlmc_allocation(variances: Any, costs: Any, budget: float) -> np.ndarray:
    """Closed-form continuous MLMC optimum ``N_l = B sqrt(V_l/c_l) / sum_k sqrt(V_k c_k)`` (L,)."""
    v = as_finite_array("variances", variances, ndim=1)
    if np.any(v < 0) or not np.any(v > 0):
        raise ValueError(f"variances must be >= 0 with at least one > 0 (per-level variances V_l); got {v.tolist()}")
    c = as_cost_array(costs, v.size)
    budget = check_positive_scalar("budget", budget)
    return budget * np.sqrt(v / c) / np.sum(np.sqrt(v * c))


def single_level_allocation(model: Any, costs: Any, budget: float, *, max_samples: Any = None) -> Allocation:
    """All budget on the finest level: ``N_L = min(floor(B / c_L), max_samples_L)``, all other levels
    skipped. With a binding cap the rest of the budget stays unspent (``unspent``, ``unspent_reason``)."""
    n, c, budget, _, hi = _prepare(model, costs, budget, 1, max_samples)
    cont = np.zeros(n)
    cont[-1] = min(budget / c[-1], hi[-1])
    counts = np.zeros(n, dtype=np.int64)
    counts[-1] = int(min(affordable(budget, c[-1]), hi[-1]))
    left = np.full(n, -np.inf)
    left[-1] = budget - counts[-1] * c[-1]
    return _finish(model, c, budget, hi, 1, counts, continuous=cont, continuous_error=model.error(cont),
                   status="baseline", method="single-level", integer_status="heuristic", left=left)


def equal_split_allocation(model: Any, costs: Any, budget: float, *, max_samples: Any = None) -> Allocation:
    """Each level gets ``B / L`` seconds: ``N_l = min(floor(B / (L c_l)), max_samples_l)``; what a
    level cannot spend (rounding, cap) stays unspent (``unspent``, ``unspent_reason``).

    Raises ValueError if ``B / L`` buys no finest-level sample (minimum budget ``L c_L``).
    """
    n, c, budget, _, hi = _prepare(model, costs, budget, 1, max_samples)
    cont = np.minimum(budget / (n * c), hi)
    counts = np.minimum(affordable(budget / n, c), hi).astype(np.int64)
    if counts[-1] < 1:
        raise ValueError(f"budget {budget:.6g} s split equally over {n} levels buys no finest-level sample; "
                         f"the equal split needs a minimum budget of {n * c[-1]:.6g} s")
    return _finish(model, c, budget, hi, 1, counts, continuous=cont, continuous_error=model.error(cont),
                   status="baseline", method="equal-split", integer_status="heuristic",
                   left=budget / n - counts * c)
