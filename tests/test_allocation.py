"""Budget allocation: MLMC closed form, KKT conditions, brute-force integer optimality, skipping,
baselines, the surrogate path for non-separable models, and input errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ntk_mlft.allocation import (
    equal_split_allocation,
    minimum_budget,
    mlmc_allocation,
    optimize_allocation,
    single_level_allocation,
)
from ntk_mlft.allocation._separable import (
    Terms,
    box_search,
    branch_and_bound,
    exact_integer,
    solve_continuous_cvxpy,
    solve_continuous_dual,
)
from ntk_mlft.allocation._surrogate import neighbours, optimize_surrogate
from ntk_mlft.allocation.costs import CostTable
from ntk_mlft.estimators.base import PowerLawErrorModel, effective_counts

# module-scoped fixtures are computed once per xdist worker: keep this file on one worker


def _brute_force(model, costs, budget, min_samples=1, max_samples=10**9):
    """Best integer allocation by enumerating every one within the budget (0 or >= min_samples
    below the finest level, <= max_samples everywhere)."""
    costs = np.asarray(costs, float)
    axes = []
    for l, c in enumerate(costs):
        vals = np.arange(min_samples, min(int(np.floor(budget / c)), max_samples) + 1)
        axes.append(vals if l == len(costs) - 1 else np.concatenate([[0], vals]))
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(costs)).astype(float)
    grid = grid[grid @ costs <= budget * (1 + 1e-12)]
    e = model.error_many(grid) if hasattr(model, "error_many") else np.array([model.error(r) for r in grid])
    i = int(np.argmin(e))
    return grid[i].astype(np.int64), float(e[i])


def test_exponent_one_reproduces_the_mlmc_closed_form():
    v, c, budget = np.array([1.0, 0.3, 0.05]), np.array([1.0, 4.0, 16.0]), 1000.0
    # keep all levels: sqrt(V_l c_l) + sqrt(V_{l+1} c_{l+1}) < sqrt((V_l + V_{l+1}) c_{l+1})
    for l in range(2):
        assert np.sqrt(v[l] * c[l]) + np.sqrt(v[l + 1] * c[l + 1]) < np.sqrt((v[l] + v[l + 1]) * c[l + 1])
    alloc = optimize_allocation(PowerLawErrorModel(v, np.ones(3)), c, budget)
    expected = budget * np.sqrt(v / c) / np.sum(np.sqrt(v * c))
    np.testing.assert_allclose(alloc.continuous_counts, expected, rtol=1e-5)
    np.testing.assert_allclose(mlmc_allocation(v, c, budget), expected, rtol=1e-14)
    assert alloc.continuous_error == pytest.approx(np.sum(np.sqrt(v * c)) ** 2 / budget, rel=1e-9)
    # dE*/dB = -(sum sqrt(V c))^2 / B^2
    assert alloc.marginal_error_per_second == pytest.approx(np.sum(np.sqrt(v * c)) ** 2 / budget**2, rel=1e-5)
    assert alloc.status == "optimal" and alloc.skipped_levels == ()


def test_continuous_solution_satisfies_kkt():
    model = PowerLawErrorModel([2.0, 0.4, 0.03, 0.01], [0.7, 1.1, 0.9, 1.4], floor=1e-3)
    c = np.array([0.01, 0.05, 0.3, 2.0])
    budget = 500.0
    alloc = optimize_allocation(model, c, budget)
    x, lam = alloc.continuous_counts, alloc.marginal_error_per_second
    assert not alloc.skipped_levels
    assert np.all(x >= 1) and np.dot(c, x) <= budget * (1 + 1e-8)  # primal feasibility
    assert lam > 0                                                  # dual feasibility
    assert lam * (budget - np.dot(c, x)) == pytest.approx(0.0, abs=1e-9 * alloc.continuous_error)
    # stationarity dE/dN_l + lam c_l = 0 (all levels interior)
    np.testing.assert_allclose(model.gradient(x) + lam * c, 0.0, atol=1e-5 * lam * c.max())


def test_kkt_solver_agrees_with_cvxpy_with_active_bounds():
    terms = Terms.from_groups([(np.array([3.0, 1.0]), np.array([1.0, 0.5])), (np.array([0.2]), np.array([1.3])),
                              (np.array([0.05]), np.array([0.8]))])
    c, budget = np.array([1.0, 3.0, 10.0]), 400.0
    lo, hi = np.array([2.0, 2.0, 2.0]), np.array([50.0, 1e9, 1e9])  # level 1 capped at 50
    x_d, bound, lam_d = solve_continuous_dual(terms, c, budget, lo, hi)
    x_c, value, lam_c, status = solve_continuous_cvxpy(terms, c, budget, lo, hi)
    assert status == "optimal"
    assert x_d[0] == 50.0
    np.testing.assert_allclose(x_c, x_d, rtol=1e-4)  # Clarabel: objective to 1e-10 -> x to ~1e-5
    assert value == pytest.approx(bound, rel=1e-8)
    assert lam_c == pytest.approx(lam_d, rel=1e-4)
    # stationarity for the interior variables, complementarity for the capped one
    slopes = terms.slopes(x_d)
    np.testing.assert_allclose(slopes[1:], lam_d * c[1:], rtol=1e-10)
    assert slopes[0] >= lam_d * c[0]  # would buy more of level 1 if the cap allowed


@pytest.mark.parametrize("seed", range(6))
def test_integer_answer_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    coef = rng.uniform(0.05, 2.0, 3)
    exponent = rng.uniform(0.5, 2.0, 3)
    model = PowerLawErrorModel(coef, exponent, floor=0.01)
    c = np.sort(rng.uniform(0.5, 6.0, 3))
    budget = float(rng.uniform(15.0, 60.0))
    alloc = optimize_allocation(model, c, budget)
    best, best_e = _brute_force(model, c, budget)
    assert alloc.integer_status == "optimal"
    assert alloc.cost <= budget
    assert alloc.predicted_error == pytest.approx(best_e, rel=1e-12)
    assert alloc.continuous_error <= alloc.predicted_error * (1 + 1e-9)  # the relaxation is a lower bound


def test_integer_answer_matches_brute_force_with_min_samples():
    model = PowerLawErrorModel([1.0, 0.5, 0.2], [1.0, 1.5, 0.7])
    c = np.array([1.0, 2.5, 7.0])
    alloc = optimize_allocation(model, c, 45.0, min_samples=3)
    _, best_e = _brute_force(model, c, 45.0, min_samples=3)
    assert alloc.predicted_error == pytest.approx(best_e, rel=1e-12)
    assert np.all((alloc.counts == 0) | (alloc.counts >= 3))


def test_level_that_does_not_pay_for_itself_is_skipped():
    # level 2 costs almost as much as level 3: sqrt(V2 c2) + sqrt(V3 c3) > sqrt((V2+V3) c3)
    v, c = np.array([1.0, 0.2, 0.2]), np.array([1.0, 9.5, 10.0])
    assert np.sqrt(v[1] * c[1]) + np.sqrt(v[2] * c[2]) > np.sqrt((v[1] + v[2]) * c[2])
    model = PowerLawErrorModel(v, np.ones(3))
    alloc = optimize_allocation(model, c, 2000.0)
    assert alloc.skipped_levels == (2,)
    assert alloc.counts[1] == 0 and alloc.continuous_counts[1] == 0
    # the closed form on the merged model (levels 1 and 3, V3' = V2 + V3)
    expected = mlmc_allocation([1.0, 0.4], [1.0, 10.0], 2000.0)
    np.testing.assert_allclose(alloc.continuous_counts[[0, 2]], expected, rtol=1e-5)


def test_baselines():
    model = PowerLawErrorModel([1.0, 0.3, 0.05], [1.0, 1.0, 1.0])
    c = CostTable.from_costs([1.0, 4.0, 16.0])
    single = single_level_allocation(model, c, 1000.0)
    np.testing.assert_array_equal(single.counts, [0, 0, 62])
    assert single.predicted_error == pytest.approx(1.35 / 62, rel=1e-12)
    assert single.skipped_levels == (1, 2)
    equal = equal_split_allocation(model, c, 1000.0)
    np.testing.assert_array_equal(equal.counts, [333, 83, 20])
    best = optimize_allocation(model, c, 1000.0)
    assert best.predicted_error <= equal.predicted_error and best.predicted_error <= single.predicted_error
    with pytest.raises(ValueError, match="minimum budget of 48"):
        equal_split_allocation(model, c, 40.0)


def test_rounded_allocation_is_feasible_and_no_better_than_exact():
    model = PowerLawErrorModel([1.0, 0.3, 0.05], [1.0, 1.0, 1.0])
    c = [1.0, 4.0, 16.0]
    exact = optimize_allocation(model, c, 1000.0)
    rounded = optimize_allocation(model, c, 1000.0, integer=False)
    assert rounded.method == "rounded" and rounded.cost <= 1000.0
    assert exact.predicted_error <= rounded.predicted_error


def test_max_samples_caps_levels():
    model = PowerLawErrorModel([1.0, 0.3, 0.05], [1.0, 1.0, 1.0])
    c = [1.0, 4.0, 16.0]
    alloc = optimize_allocation(model, c, 150.0, max_samples=8)
    assert alloc.counts.max() <= 8
    _, best_e = _brute_force(model, c, 150.0, max_samples=8)
    assert alloc.predicted_error == pytest.approx(best_e, rel=1e-12)


class _Wrapped:
    """A power law hidden behind the generic protocol (forces the surrogate path)."""

    def __init__(self, model):
        self.model, self.n_levels = model, model.n_levels

    def error(self, counts):
        return self.model.error(counts)


class _Coupled:
    """Non-separable toy: later levels also shrink what earlier ones left (product structure)."""

    n_levels = 3

    def error(self, counts):
        m = effective_counts(np.asarray(counts, float))  # skipped levels learned with the next used one
        return float(0.01 + m[0] ** -0.8 * (1.0 + 5.0 / m[1]) / (1.0 + 0.01 * m[2]) + 0.3 * m[1] ** -1.1
                     + 0.05 / m[2])


def test_surrogate_path_recovers_the_exact_power_law_optimum():
    model = PowerLawErrorModel([1.0, 0.3, 0.05], [0.9, 1.2, 1.0], floor=0.002)
    c = [1.0, 4.0, 16.0]
    exact = optimize_allocation(model, c, 600.0)
    surrogate = optimize_allocation(_Wrapped(model), c, 600.0)
    assert surrogate.method == "surrogate+local-search"
    np.testing.assert_allclose(surrogate.continuous_counts, exact.continuous_counts, rtol=1e-4)
    assert surrogate.predicted_error == pytest.approx(exact.predicted_error, rel=1e-9)


def test_surrogate_path_is_locally_optimal_on_a_coupled_model():
    model, c, budget = _Coupled(), np.array([1.0, 3.0, 8.0]), 80.0
    alloc = optimize_allocation(model, c, budget)
    assert alloc.cost <= budget and alloc.integer_status == "local"
    best, best_e = _brute_force(model, c, budget)
    x = alloc.counts
    # no single-sample transfer (or leftover fill) improves it
    for i, j in itertools.permutations(range(3), 2):
        y = x.copy()
        y[i] -= 1
        left = budget - np.dot(c, y)
        y[j] += int(np.floor(left / c[j]))
        if y[i] >= 0 and y[2] >= 1 and (y[i] == 0 or y[i] >= 1):
            assert model.error(y) >= alloc.predicted_error * (1 - 1e-12)
    assert alloc.predicted_error <= 1.05 * best_e  # close to the global optimum here
    assert alloc.predicted_error <= single_level_allocation(model, c, budget).predicted_error


@pytest.mark.parametrize("costs, budget, match", [
    ([1.0, 2.0, 4.0], 3.0, "minimum budget needed is 4"),
    ([1.0, np.nan, 4.0], 100.0, "finite"),
    ([1.0, -2.0, 4.0], 100.0, "> 0"),
    ([1.0, 2.0], 100.0, "one entry per level"),
    ([1.0, 2.0, 4.0], -1.0, "budget must be finite and > 0"),
])
def test_bad_input_raises(costs, budget, match):
    model = PowerLawErrorModel([1.0, 0.3, 0.05], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=match):
        optimize_allocation(model, costs, budget)


def test_minimum_budget_and_bad_model():
    assert minimum_budget([1.0, 2.0, 4.0], min_samples=3) == 12.0
    with pytest.raises(ValueError, match="minimum budget needed is 12"):
        optimize_allocation(PowerLawErrorModel([1.0] * 3, [1.0] * 3), [1.0, 2.0, 4.0], 11.0, min_samples=3)
    with pytest.raises(TypeError, match="ErrorModel"):
        optimize_allocation(object(), [1.0], 10.0)
    with pytest.raises(ValueError, match="max_samples"):
        optimize_allocation(PowerLawErrorModel([1.0] * 2, [1.0] * 2), [1.0, 2.0], 10.0, max_samples=[1, 0])


@pytest.mark.parametrize("seed", range(3))
def test_branch_and_bound_fallback_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    model = PowerLawErrorModel(rng.uniform(0.05, 2.0, 3), rng.uniform(0.5, 2.0, 3))
    c = np.sort(rng.uniform(0.5, 6.0, 3))
    budget = float(rng.uniform(15.0, 60.0))
    terms = Terms.from_groups(model.merged(np.ones(3, bool)))
    sol = branch_and_bound(terms, c, budget, np.ones(3), np.full(3, np.inf))
    ranges = [range(1, int(budget // ci) + 1) for ci in c]
    best = min(terms.total(np.array(x, float)) for x in itertools.product(*ranges) if np.dot(x, c) <= budget)
    assert sol.status == "optimal" and sol.value == pytest.approx(best, rel=1e-12)


# --- power laws: more levels, large counts, KKT of the cvxpy solution ---------------------------

@pytest.mark.parametrize("seed", range(4))
def test_four_levels_match_brute_force(seed):
    rng = np.random.default_rng(200 + seed)
    model = PowerLawErrorModel(rng.uniform(0.05, 2.0, 4), rng.uniform(0.5, 2.0, 4), floor=0.003)
    c = np.sort(rng.uniform(0.5, 5.0, 4))
    budget = float(rng.uniform(20.0, 40.0))
    alloc = optimize_allocation(model, c, budget)
    best, best_e = _brute_force(model, c, budget)
    assert alloc.integer_status == "optimal" and alloc.cost <= budget
    assert alloc.predicted_error == pytest.approx(best_e, rel=1e-12)


def test_four_levels_with_min_samples_and_cap_match_brute_force():
    model = PowerLawErrorModel([1.5, 0.4, 0.2, 0.02], [0.8, 1.3, 0.9, 1.6])
    c = np.array([0.3, 1.0, 2.5, 6.0])
    alloc = optimize_allocation(model, c, 40.0, min_samples=2, max_samples=12)
    _, best_e = _brute_force(model, c, 40.0, min_samples=2, max_samples=12)
    assert alloc.predicted_error == pytest.approx(best_e, rel=1e-12)
    assert np.all((alloc.counts == 0) | ((alloc.counts >= 2) & (alloc.counts <= 12)))


def _full_terms(model):
    return Terms.from_groups(model.merged(np.ones(model.n_levels, bool)))


def test_two_levels_at_large_counts_match_exhaustive_enumeration():
    # every N_1 in 1..B/c_1 with N_2 = floor((B - c_1 N_1) / c_2) (g decreases in N_2): exhaustive
    model = PowerLawErrorModel([1.3, 0.07], [0.9, 1.4])
    c, budget = np.array([0.7, 3.1]), 3e5
    terms = _full_terms(model)
    sol = exact_integer(terms, c, budget, np.ones(2), np.full(2, np.inf))
    n1 = np.arange(1, int((budget - c[1]) // c[0]) + 1, dtype=float)
    n2 = np.floor((budget - c[0] * n1) / c[1])
    e = 1.3 * n1 ** -0.9 + 0.07 * n2 ** -1.4
    assert sol.status == "optimal"
    assert sol.value == pytest.approx(e.min(), rel=1e-12)
    assert np.dot(c, sol.x) <= budget


@pytest.mark.parametrize("seed", range(2))
def test_box_search_and_branch_and_bound_agree_at_large_counts(seed):
    rng = np.random.default_rng(seed)
    model = PowerLawErrorModel(rng.uniform(0.05, 2.0, 3), rng.uniform(0.5, 2.0, 3))
    c = np.sort(rng.uniform(0.5, 6.0, 3))
    budget = 2e5
    terms = _full_terms(model)
    lo = np.ones(3)
    hi = np.floor((budget - (np.sum(c * lo) - c * lo)) / c)
    x_c, bound, _ = solve_continuous_dual(terms, c, budget, lo, hi)
    box = box_search(terms, c, budget, lo, hi, x_c, bound, terms.total(np.floor(x_c)))
    bb = branch_and_bound(terms, c, budget, lo, hi)
    assert not isinstance(box, str) and box.status == "optimal"  # the box path, not the fallback
    assert bb.status == "optimal" and box.x.min() > 100             # large counts
    assert box.value == pytest.approx(bb.value, rel=1e-12)
    # the optimiser also tries skipping levels: never worse than the all-levels optimum
    assert optimize_allocation(model, c, budget).predicted_error <= bb.value * (1 + 1e-12)


def _kkt_residuals(terms, c, budget, lo, hi, x, lam):
    """Primal/dual feasibility, complementarity, and stationarity with bound multipliers:
    -g'(x_m) = lam c_m inside the box, >= at an upper bound, <= at a lower bound."""
    slopes = terms.slopes(x)
    at_hi, at_lo = np.isclose(x, hi, rtol=1e-6), np.isclose(x, lo, rtol=1e-6)
    inside = ~(at_hi | at_lo)
    scale = max(lam * c.max(), np.max(slopes))
    return {
        "budget": float(np.dot(c, x) - budget) / budget,
        "bounds": float(max(np.max(lo - x), np.max(x - hi))),
        "lam": lam,
        "complementarity": lam * (budget - float(np.dot(c, x))) / (scale * budget),
        "stationarity": float(np.max(np.abs(slopes - lam * c)[inside], initial=0.0)) / scale,
        "upper": float(np.min((slopes - lam * c)[at_hi], initial=0.0)) / scale,
        "lower": float(np.max((slopes - lam * c)[at_lo], initial=0.0)) / scale,
        "inside": int(inside.sum()),
    }


def test_cvxpy_solution_satisfies_kkt_with_both_bounds_active():
    terms = Terms.from_groups([(np.array([3.0]), np.array([1.0])), (np.array([0.2, 0.1]), np.array([1.3, 0.6])),
                              (np.array([1e-4]), np.array([0.8])), (np.array([0.05]), np.array([1.1]))])
    c, budget = np.array([1.0, 3.0, 10.0, 20.0]), 800.0
    lo, hi = np.array([2.0, 2.0, 5.0, 2.0]), np.array([60.0, 1e9, 1e9, 1e9])
    x, value, lam, status = solve_continuous_cvxpy(terms, c, budget, lo, hi)
    r = _kkt_residuals(terms, c, budget, lo, hi, x, lam)
    assert status == "optimal" and value == pytest.approx(terms.total(x), rel=1e-12)
    assert x[0] == pytest.approx(60.0, rel=1e-7) and x[2] == pytest.approx(5.0, rel=1e-6)  # cap / floor active
    assert r["inside"] == 2 and r["lam"] > 0
    assert r["budget"] <= 1e-8 and r["bounds"] <= 1e-6
    assert abs(r["complementarity"]) <= 1e-6
    assert r["stationarity"] <= 1e-4 and r["upper"] >= -1e-4 and r["lower"] <= 1e-4


def test_cvxpy_solution_kkt_when_the_budget_does_not_bind():
    terms = Terms.from_groups([(np.array([1.0]), np.array([1.0])), (np.array([0.5]), np.array([0.7]))])
    c, budget = np.array([1.0, 4.0]), 1000.0
    lo, hi = np.ones(2), np.array([30.0, 40.0])  # everything at the caps costs 190 < 1000
    x, _, lam, status = solve_continuous_cvxpy(terms, c, budget, lo, hi)
    assert status == "optimal"
    np.testing.assert_allclose(x, hi, rtol=1e-7)
    assert abs(lam) <= 1e-8 * terms.slopes(x).max()  # complementarity: slack budget, zero multiplier


# --- baselines under the sample cap; unspent budget -----------------------------------------

def test_baselines_respect_max_samples_and_say_what_is_unspent():
    model = PowerLawErrorModel([1.0, 0.3, 0.05], [1.0, 1.0, 1.0])
    c = np.array([1.0, 10.0, 20.0])
    single = single_level_allocation(model, c, 3000.0, max_samples=20)
    assert single.counts.tolist() == [0, 0, 20] and single.cost == 400.0
    assert single.unspent == 2600.0 and single.unspent_reason.startswith("sample cap: level(s) 3")
    assert single.predicted_error == pytest.approx(1.35 / 20, rel=1e-12)
    equal = equal_split_allocation(model, c, 3000.0, max_samples=20)
    assert equal.counts.tolist() == [20, 20, 20] and equal.capped_levels == (1, 2, 3)
    assert equal.unspent == 3000.0 - 20 * 31 and equal.unspent_reason.startswith("sample cap")
    best = optimize_allocation(model, c, 3000.0, max_samples=20)
    assert best.counts.tolist() == [20, 20, 20] and best.unspent_reason.startswith("sample cap")
    assert best.predicted_error <= single.predicted_error
    d = single.to_dict()
    assert d["unspent_seconds"] == 2600.0 and d["max_samples"] == [20, 20, 20] and d["capped_levels"] == [3]
    np.testing.assert_allclose(np.sum(d["share_of_budget"]), 400.0 / 3000.0, rtol=1e-15)
    np.testing.assert_allclose(np.sum(d["share_of_spend"]), 1.0, rtol=1e-15)
    assert d["share"] == d["share_of_budget"]


def test_unspent_reasons_without_a_cap():
    model = PowerLawErrorModel([1.0, 0.3, 0.05], [1.0, 1.0, 1.0])
    single = single_level_allocation(model, [1.0, 4.0, 16.0], 1000.0)  # 62 * 16 = 992: 8 s < one sample
    assert single.unspent == 8.0 and single.unspent_reason == (
        "indivisible: what the rule leaves at level(s) 3 (8 s) is less than one more sample there (16 s)")
    # equal split of 1000 s over costs [1, 8, 32]: 333 + 41 * 8 + 10 * 32 = 981; levels 2 and 3 keep 5.33 s and 13.3 s
    equal = equal_split_allocation(model, [1.0, 8.0, 32.0], 1000.0)
    assert equal.counts.tolist() == [333, 41, 10] and equal.unspent_reason == (
        "indivisible: what the rule leaves at level(s) 1, 2, 3 (0.333333, 5.33333, 13.3333 s) is less than "
        "one more sample there (1, 8, 32 s)")
    assert single.max_samples is not None and np.all(np.isinf(single.max_samples)) and single.capped_levels == ()
    useless = PowerLawErrorModel([0.0, 1.0], [1.0, 1.0])  # level 1's samples change nothing
    best = optimize_allocation(useless, [1.0, 10.0], 25.0)
    assert best.counts[-1] == 2 and best.unspent_reason.startswith("no gain")
    full = optimize_allocation(model, [1.0, 4.0, 16.0], 1000.0)
    assert full.unspent == 0.0 and full.unspent_reason == "none"


# --- non-separable models: the surrogate path ------------------------------------------------

def test_neighbours_are_feasible_and_include_structural_moves():
    c, budget, hi = np.array([1.0, 3.0, 8.0]), 60.0, np.array([40.0, 40.0, 6.0])
    x = np.array([10.0, 0.0, 5.0])  # 50 s spent, level 2 skipped
    rows = neighbours(x, c, budget, 2, hi)
    assert len(rows) == len(np.unique(rows, axis=0))
    assert np.all(rows @ c <= budget * (1 + 1e-12)) and np.all(rows <= hi) and np.all(rows[:, -1] >= 2)
    assert np.all((rows == 0) | (rows >= 2)) and np.all(rows == np.round(rows))
    assert any(r[1] >= 2 for r in rows)                       # level 2 opened
    assert any(r[0] == 0 for r in rows)                       # level 1 dropped
    assert [20.0, 0.0, 5.0] in rows.tolist()                  # leftover filled into level 1
    assert [10.0, 0.0, 6.0] in rows.tolist()                  # leftover into level 3, up to its cap
    assert [2.0, 0.0, 6.0] in rows.tolist()                   # 8 s taken from level 1 -> level 3 (cap)


def test_local_search_reports_the_evaluation_limit():
    model, c = _Coupled(), np.array([1.0, 3.0, 8.0])
    lo, hi = np.ones(3), np.full(3, np.inf)
    assert optimize_surrogate(model, c, 80.0, lo, hi).integer_status == "local"
    cut = optimize_surrogate(model, c, 80.0, lo, hi, max_evals=3)
    assert cut.integer_status == "eval_limit"
    assert np.dot(c, cut.counts) <= 80.0


@pytest.fixture(scope="module")
def spectral_model():
    """The real spectral estimator: NTK of mlp-relu-3 on a 60-point pool, 3 paired levels (by seed)."""
    from ntk_mlft.estimators.pilot import Pilot
    from ntk_mlft.studies.error_model import build_error_model

    cache = {}

    def build(seed):
        if seed not in cache:
            rng = np.random.default_rng(seed)
            x = rng.normal(size=(60, 3))
            u = np.sin(1.5 * x[:, :1])
            ys = [u]
            for l in (1, 2):
                u = u + 0.3 ** l * np.cos((l + 1) * x[:, 1:2] + x[:, 2:3])
                ys.append(u)
            cache[seed] = build_error_model(Pilot(x, np.stack(ys)), "mlp-relu-3", 1e-3).model
        return cache[seed]
    return build


# the last three were missed (by 3.6 %, 2.2 %, 0.4 %) before the search tried every set of used
# levels and the drop / open / power-of-two moves
@pytest.mark.parametrize("seed, costs, budget", [
    (1, (1.0, 2.0, 4.0), 30.0),    # level 2 skipped at the optimum
    (1, (1.0, 4.0, 5.0), 50.0),
    (3, (1.0, 4.0, 5.0), 90.0),
    (4, (1.0, 4.0, 5.0), 90.0),
    (8, (1.0, 2.0, 4.0), 90.0),
])
def test_surrogate_matches_brute_force_on_the_spectral_estimator(spectral_model, seed, costs, budget):
    model, c, cap = spectral_model(seed), np.array(costs), 30
    alloc = optimize_allocation(model, c, budget, max_samples=cap)
    best, best_e = _brute_force(model, c, budget, max_samples=cap)
    assert alloc.method == "surrogate+local-search" and alloc.integer_status == "local"
    assert alloc.cost <= budget and alloc.counts.max() <= cap
    assert alloc.predicted_error == pytest.approx(best_e, rel=1e-9)
    assert alloc.predicted_error <= single_level_allocation(model, c, budget, max_samples=cap).predicted_error


class _Trap:
    """Two levels whose coarse samples only pay off jointly at (N_1, N_2) >= (500, 50): every move
    of the local search from the cold start raises the error, so only a warm start finds the well."""

    n_levels = 2

    def error(self, counts):
        n1, n2 = (float(v) for v in counts)
        well = n1 >= 500 and n2 >= 50
        return 1.0 / max(n2, 1.0) + (0.0 if well else 0.1 + 1e-4 * n1)


def test_warm_start_reaches_what_the_local_search_cannot():
    model, c = _Trap(), [1.0, 10.0]
    cold = optimize_allocation(model, c, 1000.0)
    assert cold.predicted_error > 0.1  # the cold search ends outside the well
    warm = optimize_allocation(model, c, 1000.0, warm_start=[500, 50])
    assert warm.counts.tolist() == [500, 50] and warm.predicted_error == pytest.approx(0.02)


def test_warm_start_is_never_beaten_by_the_result(spectral_model):
    """With ``warm_start`` the result is at most the start's exact error, for random feasible
    starts on the real spectral estimator (the search only accepts improvements)."""
    model, c, budget = spectral_model(2), np.array([1.0, 2.0, 4.0]), 60.0
    rng = np.random.default_rng(5)
    for _ in range(6):
        start = np.array([rng.integers(0, 15), rng.integers(0, 8), rng.integers(1, 8)])
        best = optimize_allocation(model, c, budget, max_samples=20, warm_start=start)
        assert best.predicted_error <= float(model.error(start)) * (1 + 1e-12)
        assert np.dot(c, best.counts) <= budget and best.counts.max() <= 20


@pytest.mark.parametrize("start, match", [
    ([1, 1], "3 integer counts"), ([1.5, 1, 1], "3 integer counts"), ([1, 1, 0], "finest level"),
    ([1, 1, 30], "max_samples"), ([-1, 1, 1], "finest level"), ([20, 20, 10], "more than the budget"),
])
def test_warm_start_errors(spectral_model, start, match):
    with pytest.raises(ValueError, match=match):
        optimize_allocation(spectral_model(2), [1.0, 2.0, 4.0], 60.0, max_samples=20, warm_start=start)


def test_optimal_curve_never_rises_with_the_budget(spectral_model):
    from ntk_mlft.reports.curves import budget_curves

    curves = budget_curves(spectral_model(3), [1.0, 2.0, 4.0], np.geomspace(8, 400, 9), max_samples=30)
    err = np.array([a.predicted_error for a in curves.optimal])
    assert np.all(np.diff(err) <= 1e-12 * err[:-1])
