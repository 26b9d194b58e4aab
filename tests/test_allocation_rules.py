"""allocation.rules and allocation._search: the registry's rules are the optimiser and its
baselines under one cap (checked against direct calls), one label/colour each; the shared search
steps against brute force on randomized cases."""

from __future__ import annotations

import numpy as np
import pytest

from ntk_mlft.allocation import (
    RULES,
    compare_rules,
    equal_split_allocation,
    optimize_allocation,
    single_level_allocation,
)
from ntk_mlft.allocation._search import active_sets, fits, round_down, set_caps
from ntk_mlft.estimators.base import PowerLawErrorModel

MODEL = PowerLawErrorModel(coef=[1.0, 0.3, 0.05], exponent=[1.0, 1.0, 1.0])
COSTS = [1.0, 4.0, 16.0]


@pytest.mark.parametrize("budget, cap", [(1000.0, None), (150.0, 8), (40.0, None)])
def test_compare_rules_is_each_rule_under_the_same_cap(budget, cap):
    cmp = compare_rules(MODEL, COSTS, budget, max_samples=cap)
    assert list(cmp.allocations) == list(RULES) == ["optimal", "single", "equal"]
    np.testing.assert_array_equal(cmp.allocations["optimal"].counts,
                                  optimize_allocation(MODEL, COSTS, budget, max_samples=cap).counts)
    np.testing.assert_array_equal(cmp.allocations["single"].counts,
                                  single_level_allocation(MODEL, COSTS, budget, max_samples=cap).counts)
    if budget >= 3 * 16.0:
        np.testing.assert_array_equal(cmp.allocations["equal"].counts,
                                      equal_split_allocation(MODEL, COSTS, budget, max_samples=cap).counts)
    else:                                   # below L c_L the equal split buys no finest sample
        assert cmp.allocations["equal"] is None and "equal" not in cmp.feasible()
    single, best = cmp.allocations["single"].predicted_error, cmp.allocations["optimal"].predicted_error
    assert cmp.gain() == pytest.approx(single / best, rel=1e-15) and cmp.gain() >= 1.0
    assert cmp.to_dict()["max_samples"] == cap


def test_rules_have_one_label_and_colour_each():
    assert len({r.label for r in RULES.values()}) == len({r.color for r in RULES.values()}) == len(RULES)
    assert all(name == rule.name for name, rule in RULES.items())
    with pytest.raises(ValueError, match="rule must be one of"):
        compare_rules(MODEL, COSTS, 100.0, rules=("optimal", "best"))


def test_search_steps_against_brute_force():
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 4))
        c = np.sort(rng.uniform(0.1, 5.0, n))
        lo = np.full(n, float(rng.integers(1, 4)))
        budget = float(np.sum(c * lo) * rng.uniform(1.0, 6.0))
        hi = np.full(n, float(rng.integers(int(lo[0]), 40)))
        caps = set_caps(c, lo, hi, budget)
        for l in range(n):                  # the largest count of level l with the others at lo
            others = float(np.sum(c * lo) - c[l] * lo[l])
            brute = max(k for k in range(0, 400) if others + c[l] * k <= budget * (1 + 1e-12))
            assert caps[l] == min(hi[l], brute)
        x = rng.uniform(0.5, 2.0, n) * budget / (n * c)
        r = round_down(x, c, lo, budget)
        assert np.all(r == np.round(r)) and np.all(r >= lo) and fits(c, r, budget)
        assert np.all(r <= np.maximum(np.floor(x * (1 + 1e-12)), lo))
    sets = [m.tolist() for m in active_sets(3)]
    assert len(sets) == 4 and all(s[-1] for s in sets) and len({tuple(s) for s in sets}) == 4
