"""The allocation rules compared throughout the package, registered once.

Contract: :data:`RULES` maps a rule's name (``"optimal"``, ``"single"``, ``"equal"``; a new rule
is one more entry) to a frozen :class:`Rule` with its one label, colour and line style and an
``allocate(model, costs, budget, *, min_samples, max_samples, warm_start)`` that returns an
:class:`~ntk_mlft.allocation.optimize.Allocation` or ``None`` where the rule is infeasible (the
equal split below its minimum budget ``L c_L``). :func:`compare_rules` allocates one budget by
every rule under the same per-level cap, so the rules are compared on equal terms. Commands,
curves, the demo, the trained-network validation and the figures all take their rules from here.
The optimisation itself: ``docs/theory.md`` section 8.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ntk_mlft._checks import check_choice
from ntk_mlft.allocation.costs import as_cost_array
from ntk_mlft.allocation.optimize import (
    Allocation,
    equal_split_allocation,
    optimize_allocation,
    single_level_allocation,
)

__all__ = ["RULES", "Rule", "RuleComparison", "compare_rules"]


@dataclass(frozen=True)
class Rule:
    """One allocation rule: ``name`` (its key in :data:`RULES`), ``label`` for reports and
    legends, matplotlib ``color`` and ``linestyle``, ``description`` (one sentence) and
    ``allocate`` (module docstring)."""

    name: str
    label: str
    color: str
    linestyle: str
    description: str
    allocate: Callable[..., Allocation | None]


def _optimal(model: Any, costs: Any, budget: float, *, min_samples: int = 1, max_samples: Any = None,
             warm_start: Any = None) -> Allocation:
    return optimize_allocation(model, costs, budget, min_samples=min_samples, max_samples=max_samples,
                               warm_start=warm_start)


def _single(model: Any, costs: Any, budget: float, *, min_samples: int = 1, max_samples: Any = None,
            warm_start: Any = None) -> Allocation:
    return single_level_allocation(model, costs, budget, max_samples=max_samples)


def _equal(model: Any, costs: Any, budget: float, *, min_samples: int = 1, max_samples: Any = None,
           warm_start: Any = None) -> Allocation | None:
    c = as_cost_array(costs, int(model.n_levels))
    if budget < c.size * c[-1]:
        return None
    return equal_split_allocation(model, c, budget, max_samples=max_samples)


RULES: dict[str, Rule] = {
    "optimal": Rule("optimal", "optimal MLFT", "C0", "-",
                    "the optimiser's allocation (ntk_mlft.allocation.optimize_allocation)", _optimal),
    "single": Rule("single", "single level (finest)", "C3", "--",
                   "the whole budget on the finest level", _single),
    "equal": Rule("equal", "equal split", "C2", ":",
                  "the same spend on every level (infeasible below L c_L)", _equal),
}
"""Every allocation rule, by name, in report order."""


@dataclass(frozen=True)
class RuleComparison:
    """The allocations of several rules at one budget (seconds), same cap ``max_samples``.

    ``allocations`` maps rule name to its :class:`~ntk_mlft.allocation.optimize.Allocation`, or
    ``None`` where the rule is infeasible at this budget."""

    budget: float
    allocations: dict[str, Allocation | None]
    max_samples: Any = None

    def feasible(self) -> dict[str, Allocation]:
        """The rules with an allocation at this budget, in order."""
        return {k: a for k, a in self.allocations.items() if a is not None}

    def gain(self, over: str = "single") -> float:
        """Predicted error of rule ``over`` / the optimal one (> 1: the optimum is better)."""
        best = self.allocations["optimal"].predicted_error
        other = self.allocations[over].predicted_error
        return other / best if best > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: one entry per rule (``None`` where infeasible) and ``max_samples``."""
        return {**{k: None if a is None else a.to_dict() for k, a in self.allocations.items()},
                "max_samples": self.max_samples}


def compare_rules(model: Any, costs: Any, budget: float, *, rules: Sequence[str] = tuple(RULES),
                  min_samples: int = 1, max_samples: Any = None, warm_start: Any = None) -> RuleComparison:
    """Allocate ``budget`` (seconds) by each of ``rules`` (names in :data:`RULES`, ``"optimal"``
    first when the gain is wanted) under the same cap ``max_samples`` per level;
    ``warm_start`` counts go to the optimiser.

    >>> from ntk_mlft.estimators.base import PowerLawErrorModel
    >>> model = PowerLawErrorModel(coef=[1.0, 0.1], exponent=[1.0, 1.0])
    >>> cmp = compare_rules(model, [1.0, 4.0], 100.0)
    >>> [cmp.allocations[r].counts.tolist() for r in RULES]
    [[60, 10], [0, 25], [50, 12]]
    """
    for r in rules:
        check_choice("rule", r, tuple(RULES))
    allocs = {r: RULES[r].allocate(model, costs, float(budget), min_samples=min_samples, max_samples=max_samples,
                                   warm_start=warm_start if r == "optimal" else None) for r in rules}
    return RuleComparison(budget=float(budget), allocations=allocs, max_samples=max_samples)
