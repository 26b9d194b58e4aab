"""How many training samples to buy at each level: the MLFT budget problem.

Given an error model ``E(N_1..N_L)`` (predicted relative MSE, :mod:`ntk_mlft.error_models`),
per-sample costs ``c_l`` (seconds, :class:`ntk_mlft.costs.CostTable` or an array) and a budget
``B`` (seconds), :func:`optimize_allocation` solves

    minimise E(N)   subject to   sum_l c_l N_l <= B,   N_L >= min_samples,
                                 N_l in {0} U [min_samples, max_samples_l]  (l < L),

where ``N_l = 0`` skips a non-finest level (its difference is then learned with the next used
level). With ``E = sum_l V_l / N_l`` and no level skipped, the continuous optimum is the MLMC rule
(Giles 2008; MLFT: Li, Fan, Ying 2021)

    N_l = B sqrt(V_l / c_l) / sum_k sqrt(V_k c_k),   E* = (sum_l sqrt(V_l c_l))^2 / B.

Methods (and what is guaranteed):

* :class:`~ntk_mlft.error_models.PowerLawErrorModel` (separable): every set of used levels is
  solved; the continuous optimum comes from cvxpy + Clarabel (status reported), and the integer
  answer from an exhaustive search of a provably sufficient box around it (branch-and-bound when the
  box is too large) on the exact model — **optimal among all integer allocations within
  the budget** (relative tolerance 1e-12) when ``integer_status == "optimal"``.
* any other :class:`~ntk_mlft.error_models.ErrorModel` (the NTK estimators): local power-law
  surrogates solved convexly, then a local search with the exact model — feasible, no worse than
  the surrogate's optimum, **locally optimal** (``integer_status == "local"``); see
  :mod:`ntk_mlft._allocation_surrogate`.
* baselines: :func:`single_level_allocation` (all budget on the finest level) and
  :func:`equal_split_allocation` (each level gets ``B / L`` seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ntk_mlft._allocation_separable import (Terms, exact_integer, greedy_fill, solve_continuous_cvxpy,
                                            solve_continuous_dual)
from ntk_mlft._allocation_surrogate import optimize_surrogate
from ntk_mlft._validation import check_positive_int, check_positive_scalar
from ntk_mlft.costs import as_cost_array
from ntk_mlft.error_models import PowerLawErrorModel

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
        integer_status: ``"optimal"`` (proven), ``"node_limit"``, ``"local"`` or ``"heuristic"``.
        skipped_levels: 1-based levels with 0 samples.
        marginal_error_per_second: ``-dE*/dB`` at the continuous optimum (the budget's dual
            variable; NaN for baselines): how much one more second would lower the error.
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

    @property
    def n_levels(self) -> int:
        return int(self.counts.size)

    @property
    def spend(self) -> np.ndarray:
        """(L,) seconds spent per level."""
        return self.counts * self.costs

    @property
    def share(self) -> np.ndarray:
        """(L,) fraction of the spent budget per level."""
        return self.spend / self.cost

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able summary."""
        return {
            "counts": [int(v) for v in self.counts],
            "predicted_error": float(self.predicted_error),
            "cost_seconds": float(self.cost),
            "budget_seconds": float(self.budget),
            "cost_per_sample_seconds": [float(v) for v in self.costs],
            "spend_seconds": [float(v) for v in self.spend],
            "share": [float(v) for v in self.share],
            "continuous_counts": [float(v) for v in self.continuous_counts],
            "continuous_error": float(self.continuous_error),
            "status": self.status,
            "method": self.method,
            "integer_status": self.integer_status,
            "skipped_levels": list(self.skipped_levels),
            "marginal_error_per_second": float(self.marginal_error_per_second),
        }


def _check_model(model: Any) -> int:
    if not hasattr(model, "error") or not hasattr(model, "n_levels"):
        raise TypeError(f"model must be an ErrorModel (with n_levels and error(counts)); got {type(model).__name__}")
    return check_positive_int("model.n_levels", int(model.n_levels))


def minimum_budget(costs: Any, min_samples: int = 1) -> float:
    """Cheapest admissible allocation: ``min_samples`` at the finest level, all others skipped."""
    c = as_cost_array(costs)
    return float(min_samples * c[-1])


def _prepare(model: Any, costs: Any, budget: Any, min_samples: Any = 1, max_samples: Any = None):
    n = _check_model(model)
    c = as_cost_array(costs, n)
    budget = check_positive_scalar("budget", budget)
    min_samples = check_positive_int("min_samples", min_samples)
    need = min_samples * c[-1]
    if budget < need * (1 - 1e-12):
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
    return n, c, float(budget), min_samples, hi


def _active_sets(n: int):
    """All (L,) used-level masks with the finest level used (2^(L-1) of them)."""
    for mask in range(2 ** (n - 1)):
        yield np.array([(mask >> l) & 1 == 0 for l in range(n - 1)] + [True])


def _skipped(counts: np.ndarray) -> tuple[int, ...]:
    return tuple(int(l) + 1 for l in np.flatnonzero(counts == 0))


def optimize_allocation(model: Any, costs: Any, budget: float, *, integer: bool = True,
                        min_samples: int = 1, max_samples: Any = None) -> Allocation:
    """Samples per level minimising the model's predicted error within ``budget`` seconds.

    Args:
        model: an :class:`~ntk_mlft.error_models.ErrorModel` (power law: exact method; others:
            surrogate + local search, see the module docstring).
        costs: (L,) seconds per sample, or a :class:`~ntk_mlft.costs.CostTable`.
        budget: seconds (> 0, at least ``min_samples * c_L``).
        integer: True: integer counts (exactly optimal for power laws); False: the continuous
            optimum rounded down and greedily filled (``method == "rounded"``).
        min_samples: least count of every used level (skipped levels have 0; the finest level is
            always used).
        max_samples: None, or an int / (L,) ints capping each level.

    Raises:
        ValueError: invalid costs / lengths, or ``budget`` below the minimum (stated).
    """
    n, c, budget, min_samples, hi = _prepare(model, costs, budget, min_samples, max_samples)
    lo = np.full(n, float(min_samples))
    if not isinstance(model, PowerLawErrorModel):
        res = optimize_surrogate(model, c, budget, lo, hi, integer=integer)
        return Allocation(counts=res.counts, predicted_error=float(model.error(res.counts)),
                          cost=float(np.sum(res.counts * c)), budget=budget, costs=c,
                          continuous_counts=res.continuous_counts, continuous_error=res.continuous_error,
                          status=res.status, method="surrogate+local-search", integer_status="local",
                          skipped_levels=_skipped(res.counts), marginal_error_per_second=res.lam)

    candidates = []
    for active in _active_sets(n):
        idx = np.flatnonzero(active)
        if float(np.sum(c[idx] * lo[idx])) > budget * (1 + 1e-12):
            continue
        terms = Terms.from_groups(model.merged(active))
        hi_a = np.minimum(hi[idx], np.floor((budget - (np.sum(c[idx] * lo[idx]) - c[idx] * lo[idx]))
                                            / c[idx] * (1 + 1e-12)))
        x, bound, _ = solve_continuous_dual(terms, c[idx], budget, lo[idx], hi_a)
        candidates.append((bound, idx, terms, hi_a, x))
    candidates.sort(key=lambda t: t[0])

    _, idx, terms, hi_a, x_dual = candidates[0]
    x_cvx, _, lam, status = solve_continuous_cvxpy(terms, c[idx], budget, lo[idx], hi_a)
    if not np.all(np.isfinite(x_cvx)):
        x_cvx, _, lam = solve_continuous_dual(terms, c[idx], budget, lo[idx], hi_a)
        status = f"{status} (KKT solver used)"
    continuous = np.zeros(n)
    continuous[idx] = x_cvx

    if integer:
        best, best_idx, int_status = None, None, "optimal"
        for bound, idx_s, terms_s, hi_s, _ in candidates:
            if best is not None and bound >= best.value * (1 - 1e-12):
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
        x0 = np.maximum(np.floor(x_cvx * (1 + 1e-12)), lo[idx])
        while float(np.sum(c[idx] * x0)) > budget * (1 + 1e-12):  # Clarabel may overshoot by a hair
            x0[int(np.argmax(x0 - lo[idx]))] -= 1
        counts = np.zeros(n, dtype=np.int64)
        counts[idx] = greedy_fill(terms, c[idx], budget, x0, hi_a).astype(np.int64)
        method, int_status = "rounded", "heuristic"
    return Allocation(counts=counts, predicted_error=model.error(counts), cost=float(np.sum(counts * c)),
                      budget=budget, costs=c, continuous_counts=continuous,
                      continuous_error=model.error(continuous), status=status, method=method,
                      integer_status=int_status, skipped_levels=_skipped(counts), marginal_error_per_second=lam)


def mlmc_allocation(variances: Any, costs: Any, budget: float) -> np.ndarray:
    """Closed-form continuous MLMC optimum ``N_l = B sqrt(V_l/c_l) / sum_k sqrt(V_k c_k)`` (L,)."""
    v = np.asarray(variances, float)
    c = as_cost_array(costs, v.size)
    budget = check_positive_scalar("budget", budget)
    return budget * np.sqrt(v / c) / np.sum(np.sqrt(v * c))


def _baseline(model: Any, c: np.ndarray, budget: float, counts: np.ndarray, cont: np.ndarray,
              method: str) -> Allocation:
    return Allocation(counts=counts, predicted_error=float(model.error(counts)), cost=float(np.sum(counts * c)),
                      budget=budget, costs=c, continuous_counts=cont, continuous_error=float(model.error(cont)),
                      status="baseline", method=method, integer_status="heuristic",
                      skipped_levels=_skipped(counts))


def single_level_allocation(model: Any, costs: Any, budget: float) -> Allocation:
    """All budget on the finest level: ``N_L = floor(B / c_L)``, every other level skipped."""
    n, c, budget, _, _ = _prepare(model, costs, budget)
    cont = np.zeros(n)
    cont[-1] = budget / c[-1]
    counts = np.zeros(n, dtype=np.int64)
    counts[-1] = int(np.floor(cont[-1] * (1 + 1e-12)))
    return _baseline(model, c, budget, counts, cont, "single-level")


def equal_split_allocation(model: Any, costs: Any, budget: float) -> Allocation:
    """Each level gets ``B / L`` seconds: ``N_l = floor(B / (L c_l))``.

    Raises ValueError if ``B / L`` buys no finest-level sample (minimum budget ``L c_L``).
    """
    n, c, budget, _, _ = _prepare(model, costs, budget)
    cont = budget / (n * c)
    counts = np.floor(cont * (1 + 1e-12)).astype(np.int64)
    if counts[-1] < 1:
        raise ValueError(f"budget {budget:.6g} s split equally over {n} levels buys no finest-level sample; "
                         f"the equal split needs a minimum budget of {n * c[-1]:.6g} s")
    return _baseline(model, c, budget, counts, cont, "equal-split")
