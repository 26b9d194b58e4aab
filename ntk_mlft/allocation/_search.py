"""The search steps the separable (``optimize``/``_separable``) and surrogate (``_surrogate``)
allocation methods share: one tolerance, the sets of used levels, per-set caps, rounding down
into the budget and the continuous solve (cvxpy, else the KKT solver).

Contract: every budget comparison of the allocation package goes through :func:`fits` /
:func:`affordable` with the one relative slack :data:`RTOL` (sums of float costs are exact only
to rounding), and every "is better" test through :func:`improves`. Theory: ``docs/theory.md``
section 8.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["RTOL", "active_sets", "affordable", "continuous_optimum", "fits", "improves", "round_down",
           "set_caps"]

RTOL = 1e-12
"""Relative slack of budget comparisons (a cost sum within RTOL of the budget fits) and the
smallest relative improvement a search accepts."""


def fits(c: np.ndarray, x: np.ndarray, budget: float) -> bool:
    """``sum c x <= budget`` up to :data:`RTOL`."""
    return float(np.sum(c * x)) <= budget * (1 + RTOL)


def affordable(money: Any, c: Any) -> Any:
    """Whole samples ``money`` seconds buy at ``c`` seconds each (up to :data:`RTOL`)."""
    return np.floor(np.asarray(money) / c * (1 + RTOL))


def improves(new: float, old: float) -> bool:
    """``new`` is lower than ``old`` by more than :data:`RTOL` relative."""
    return new < old * (1 - RTOL)


def active_sets(n: int) -> Iterator[np.ndarray]:
    """All (n,) bool masks of used levels with the finest level used (2^(n-1) of them).

    >>> [m.tolist() for m in active_sets(2)]
    [[True, True], [False, True]]
    """
    for mask in range(2 ** (n - 1)):
        yield np.array([(mask >> l) & 1 == 0 for l in range(n - 1)] + [True])


def set_caps(c: np.ndarray, lo: np.ndarray, hi: np.ndarray, budget: float) -> np.ndarray:
    """Per-level caps of one set of used levels (arrays over its levels): ``hi``, and no level
    more than the budget buys once every other level has its minimum ``lo``."""
    return np.minimum(np.asarray(hi, float), affordable(budget - (np.sum(c * lo) - c * lo), c))


def round_down(x: np.ndarray, c: np.ndarray, lo: np.ndarray, budget: float) -> np.ndarray:
    """Continuous counts ``x`` rounded down to integers ``>= lo``; while the sum still exceeds the
    budget (a solver may overshoot by a hair, or ``lo`` rounds up), one sample comes off the level
    with the most expensive surplus over ``lo``."""
    x = np.maximum(np.floor(np.asarray(x, float) * (1 + RTOL)), lo)
    while not fits(c, x, budget):
        x[int(np.argmax((x - lo) * c))] -= 1
    return x


def continuous_optimum(terms: Any, c: np.ndarray, budget: float, lo: np.ndarray,
                       hi: np.ndarray) -> tuple[np.ndarray, float, str]:
    """Continuous minimiser of a separable power law ``terms`` under the budget and box bounds:
    cvxpy + Clarabel, or the KKT solver when cvxpy returns no finite point (its status then says
    so). Returns ``(x, budget multiplier, status)``."""
    from ntk_mlft.allocation._separable import solve_continuous_cvxpy, solve_continuous_dual

    x, _, lam, status = solve_continuous_cvxpy(terms, c, budget, lo, hi)
    if not np.all(np.isfinite(x)):
        x, _, lam = solve_continuous_dual(terms, c, budget, lo, hi)
        status = f"{status} (KKT solver used)"
    return x, lam, status
