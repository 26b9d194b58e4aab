"""Budget curves: closed-form MLMC errors along the sweep, slopes, baselines, CSV round trip, parsing."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ntk_mlft.curves import Comparison, budget_curves, parse_budgets, predicted_learning_curves
from ntk_mlft.error_models import PowerLawErrorModel

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


def test_max_samples_drops_incomparable_baselines():
    model = PowerLawErrorModel(V, np.ones(3))
    curves = budget_curves(model, C, [200.0, 2000.0], max_samples=50)
    assert all(a.counts.max() <= 50 for a in curves.optimal)
    assert np.isnan(curves.errors("single")[1])  # 125 finest samples > 50


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
