"""Budget curves: closed-form MLMC errors along the sweep, fitted and theoretical slopes, capped
baselines and unspent budget, measured points, CSV round trip, parsing."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ntk_mlft.allocation import optimize_allocation
from ntk_mlft.estimators.base import PowerLawErrorModel
from ntk_mlft.reports.curves import (
    Comparison,
    budget_curves,
    compare_measured,
    parse_budgets,
    predicted_learning_curves,
    read_measured_csv,
    theoretical_slope,
)

V, C = np.array([1.0, 0.3, 0.05]), np.array([1.0, 4.0, 16.0])


def test_optimal_curve_follows_the_mlmc_closed_form_and_slope():
    model = PowerLawErrorModel(V, np.ones(3))
    budgets = np.geomspace(2000.0, 50000.0, 5)
    curves = budget_curves(model, C, budgets, problem="toy", kernel="none")
    # integer optimum lies between the continuous optimum (sum sqrt(V c))^2 / B and rounding effects
    continuous = np.sum(np.sqrt(V * C)) ** 2 / budgets
    e = curves.errors("optimal")
    assert np.all(e >= continuous * (1 - 1e-9)) and np.all(e <= continuous * 1.01)
    assert curves.slope("optimal") == pytest.approx(-1.0, abs=0.01)
    np.testing.assert_allclose(curves.errors("single"), V.sum() / np.floor(budgets / 16.0), rtol=1e-12)
    assert np.all(curves.gain() >= 1.0)
    assert np.all(curves.errors("equal") >= e)


def test_csv_has_one_row_per_budget(tmp_path):
    model = PowerLawErrorModel(V, [1.0, 0.8, 1.2], floor=1e-3)
    curves = budget_curves(model, C, parse_budgets("20:2000:4"))
    path = curves.to_csv(tmp_path / "c.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert float(rows[-1]["error_optimal"]) == pytest.approx(curves.errors("optimal")[-1], rel=1e-15)
    assert [int(rows[0][f"n_level{l}"]) for l in (1, 2, 3)] == curves.optimal[0].counts.tolist()
    # equal split is infeasible below 3 * 16 s: NaN there
    assert np.isnan(curves.errors("equal")[0])


def test_max_samples_caps_every_rule_and_records_unspent_budget():
    model = PowerLawErrorModel(V, np.ones(3))
    curves = budget_curves(model, C, [200.0, 2000.0], max_samples=50)
    assert curves.max_samples == 50
    for rule in ("optimal", "single", "equal"):
        assert all(a.counts.max() <= 50 for a in getattr(curves, rule))
    # at 2000 s the single level would buy 125 finest samples: capped at 50, 1200 s unspent
    assert curves.single[1].counts.tolist() == [0, 0, 50]
    assert curves.errors("single")[1] == pytest.approx(V.sum() / 50, rel=1e-12)
    np.testing.assert_allclose(curves.unspent("single"), [200.0 - 12 * 16, 2000.0 - 50 * 16])
    assert curves.cap_bound("single").tolist() == [False, True]
    assert curves.cap_bound("optimal").tolist() == [False, True]  # 50 at every level costs 1050 < 2000


def test_slope_leaves_out_cap_bound_budgets():
    model = PowerLawErrorModel(V, np.ones(3))
    budgets = np.geomspace(100.0, 1e5, 12)
    capped = budget_curves(model, C, budgets, max_samples=1000)  # single level capped from 16000 s on
    assert capped.cap_bound("single").tolist() == [False] * 9 + [True] * 3
    # the single-level error is V_tot / floor(B / 16): slope ~ -1 on the points where the budget is spent
    ok = ~capped.cap_bound("single") & (budgets >= np.quantile(budgets, 0.5))
    assert ok.sum() == 3
    expected = np.polyfit(np.log(budgets[ok]), np.log(capped.errors("single")[ok]), 1)[0]
    assert capped.slope("single") == pytest.approx(expected, rel=1e-12)
    assert capped.slope("single") == pytest.approx(-1.0, abs=0.01)
    half = budgets >= np.quantile(budgets, 0.5)  # with the flat, capped points the fit would say ~ -0.4
    assert np.polyfit(np.log(budgets[half]), np.log(capped.errors("single")[half]), 1)[0] > -0.6


def test_theoretical_slope_power_law_and_mlmc():
    assert theoretical_slope(PowerLawErrorModel(V, np.ones(3)), None)[0] == -1.0
    slope, note = theoretical_slope(PowerLawErrorModel(V, [1.0, 0.8, 1.2]), None)
    assert slope == -0.8 and "min" in note
    # a level with coefficient 0 does not set the rate
    assert theoretical_slope(PowerLawErrorModel([0.0, 1.0], [0.3, 0.9]), None)[0] == -0.9


def test_fitted_slopes_approach_the_theoretical_slope():
    model = PowerLawErrorModel(V, [1.0, 0.8, 1.2])
    gaps = []
    for start in (1e5, 1e7, 1e9, 1e11):
        curves = budget_curves(model, C, np.geomspace(start, 100 * start, 3))
        assert curves.theory_slope == -0.8
        gaps.append([curves.slope(rule, tail=1.0) + 0.8 for rule in ("optimal", "single", "equal")])
    gaps = np.array(gaps)
    # every rule shares the asymptotic rate; the pre-asymptotic excess (B^-1 terms) dies out
    assert np.all(gaps < 0) and np.all(np.diff(gaps, axis=0) > 0) and np.all(gaps[-1] > -0.01)


class _Wrapped:
    """A power law behind the bare protocol: no level_curve, no exponents to read."""

    def __init__(self, model):
        self.model, self.n_levels = model, model.n_levels

    def error(self, counts):
        return self.model.error(counts)


class _Curves(_Wrapped):
    """... with per-level learning curves E_l(N) = coef_l N^-p_l, as the estimators have."""

    def level_curve(self, level, ns):
        return self.model.coef[level - 1] * np.asarray(ns, float) ** -self.model.exponent[level - 1]


def test_theoretical_slope_of_other_models():
    truth = PowerLawErrorModel(V, [0.8, 0.9, 1.1])
    alloc = optimize_allocation(truth, C, 5000.0)
    assert alloc.skipped_levels == ()  # each level carries one power law
    # local surrogate at the optimum: exact for a power law
    slope, note = theoretical_slope(_Wrapped(truth), alloc)
    assert slope == pytest.approx(-0.8, rel=1e-9) and "local" in note
    # per-level learning-curve fits
    slope, note = theoretical_slope(_Curves(truth), alloc, n_max=200)
    assert slope == pytest.approx(-0.8, rel=1e-4) and "learning-curve" in note and "1..200" in note


def test_measured_points_csv_and_comparison(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("allocation,budget,error,stderr\noptimal,1000,0.01,0.001\nsingle,1000,0.03,\n"
                    "equal,2000,0.008,0.0005\n")
    m = read_measured_csv(path)
    assert m.allocation == ("optimal", "single", "equal")
    np.testing.assert_allclose(m.budget, [1000, 1000, 2000])
    assert np.isnan(m.stderr[1]) and m.of("single").tolist() == [False, True, False]
    model = PowerLawErrorModel(V, np.ones(3))
    comp = compare_measured(model, C, m, problem="p", kernel="k")
    expected = [optimize_allocation(model, C, 1000.0).predicted_error,
                V.sum() / np.floor(1000.0 / 16.0),
                float(model.error(np.floor(2000.0 / (3 * C))))]
    np.testing.assert_allclose(comp.predicted, expected, rtol=1e-12)
    np.testing.assert_allclose(comp.measured, m.error)
    np.testing.assert_allclose(comp.budgets, m.budget)
    curves = budget_curves(model, C, [100.0, 1000.0], measured=m)
    assert curves.to_dict()["measured"]["allocation"] == ["optimal", "single", "equal"]


@pytest.mark.parametrize("text, match", [
    ("allocation,budget\noptimal,1\n", "lacks column"),
    ("allocation,budget,error\nbest,1,0.1\n", "one of"),
    ("allocation,budget,error\noptimal,x,0.1\n", "line 2"),
    ("allocation,budget,error\noptimal,10,-0.1\n", "> 0"),
    ("allocation,budget,error\n", "no rows"),
])
def test_measured_csv_errors(tmp_path, text, match):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_measured_csv(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_measured_csv(tmp_path / "missing.csv")


def test_parse_budgets_and_errors():
    np.testing.assert_allclose(parse_budgets("1:100:3"), [1.0, 10.0, 100.0])
    np.testing.assert_allclose(parse_budgets("5,1"), [1.0, 5.0])
    for bad in ("100:1:3", "a:b:c", "1:10:1", "-1,2"):
        with pytest.raises(ValueError, match="START:STOP:NUM"):
            parse_budgets(bad)
    with pytest.raises(ValueError, match="minimum budget 16"):
        budget_curves(PowerLawErrorModel(V, np.ones(3)), C, [10.0, 100.0])


def test_learning_curves_and_comparison():
    model = PowerLawErrorModel(V, [1.0, 0.5, 2.0])
    lc = predicted_learning_curves(model, [10, 10, 10], [1, 4, 16])
    # only level 2 varies in row 1: E = V1/10 + V2 n^-0.5 + V3/100
    np.testing.assert_allclose(lc.predicted[1], 0.1 + 0.3 / np.sqrt([1, 4, 16]) + 0.05 / 100, rtol=1e-14)
    comp = Comparison([0.1, 0.01], [0.1 * np.e, 0.01 / np.e], ("a", "b"))
    assert comp.log_ratio_rmse() == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError, match="same length"):
        Comparison([0.1], [0.1, 0.2])


def test_measured_points_csv_round_trip(tmp_path):
    from ntk_mlft.reports.curves import MeasuredPoints, read_measured_csv

    pts = MeasuredPoints(("optimal", "single"), np.array([10.0, 40.0]), np.array([0.1, 0.25]),
                         np.array([0.01, np.nan]))
    back = read_measured_csv(pts.to_csv(tmp_path / "measured.csv"))
    assert back.allocation == pts.allocation
    np.testing.assert_array_equal(back.budget, pts.budget)
    np.testing.assert_array_equal(back.error, pts.error)
    np.testing.assert_array_equal(back.stderr, pts.stderr)            # NaN (one seed) survives as an empty cell
