"""Optimal allocation of samples over levels under a budget of solver seconds.

``costs`` (the cost table), ``optimize`` (the optimiser and the baselines), ``_separable``
(exact integer search for separable power-law models), ``_surrogate`` (local power-law surrogate
and exact local search for non-separable estimator models), ``rules`` (the registry ``RULES`` of
allocation rules and ``compare_rules``). Theory: ``docs/theory.md`` section 8.
"""

from ntk_mlft.allocation._surrogate import fit_local_power_law as fit_local_power_law
from ntk_mlft.allocation.costs import CostTable as CostTable
from ntk_mlft.allocation.costs import as_cost_array as as_cost_array
from ntk_mlft.allocation.optimize import Allocation as Allocation
from ntk_mlft.allocation.optimize import equal_split_allocation as equal_split_allocation
from ntk_mlft.allocation.optimize import minimum_budget as minimum_budget
from ntk_mlft.allocation.optimize import mlmc_allocation as mlmc_allocation
from ntk_mlft.allocation.optimize import optimize_allocation as optimize_allocation
from ntk_mlft.allocation.optimize import single_level_allocation as single_level_allocation
from ntk_mlft.allocation.rules import RULES as RULES
from ntk_mlft.allocation.rules import Rule as Rule
from ntk_mlft.allocation.rules import RuleComparison as RuleComparison
from ntk_mlft.allocation.rules import compare_rules as compare_rules

__all__ = ["RULES", "Allocation", "CostTable", "Rule", "RuleComparison", "as_cost_array", "compare_rules",
           "equal_split_allocation", "fit_local_power_law", "minimum_budget", "mlmc_allocation", "optimize_allocation",
           "single_level_allocation"]
