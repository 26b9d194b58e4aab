"""Budget allocation: MLMC closed form, KKT conditions, brute-force integer optimality, skipping,
baselines, the surrogate path for non-separable models, and input errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ntk_mlft._allocation_separable import Terms, branch_and_bound, solve_continuous_cvxpy, solve_continuous_dual
from ntk_mlft.allocation import (equal_split_allocation, minimum_budget, mlmc_allocation, optimize_allocation,
                                 single_level_allocation)
from ntk_mlft.costs import CostTable
from ntk_mlft.error_models import PowerLawErrorModel, effective_counts


def _brute_force(model, costs, budget, min_samples=1, max_samples=10**9):
    """Best integer allocation by enumeration (0 or >= min_samples below the finest level)."""
    costs = np.asarray(costs, float)
    ranges = []
    for l, c in enumerate(costs):
        top = min(int(np.floor(budget / c)), max_samples)
        vals = list(range(min_samples, top + 1))
        ranges.append(vals if l == len(costs) - 1 else [0, *vals])
    best, best_e = None, np.inf
    for counts in itertools.product(*ranges):
        if np.dot(counts, costs) <= budget * (1 + 1e-12):
            e = model.error(counts)
            if e < best_e:
                best, best_e = counts, e
    return np.array(best), best_e


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
