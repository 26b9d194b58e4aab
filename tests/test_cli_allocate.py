"""``ntk-mlft allocate`` / ``curves`` / ``demo`` end to end on tiny inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ntk_mlft.allocation import mlmc_allocation, optimize_allocation
from ntk_mlft.cli import main
from ntk_mlft.error_models import PowerLawErrorModel

COSTS_CSV = "level,grid,cost_seconds\n1,32,0.5\n2,64,2.0\n3,128,8.0\n"
POWER_LAW = ["--power-law", "coef=1.0,0.3,0.05", "exponent=1,1,1"]


@pytest.fixture
def costs_csv(tmp_path):
    path = tmp_path / "costs.csv"
    path.write_text(COSTS_CSV)
    return str(path)


def test_allocate_json_matches_the_library(costs_csv, capsys):
    assert main(["allocate", "--costs", costs_csv, "--budget", "3600", *POWER_LAW, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    model = PowerLawErrorModel([1.0, 0.3, 0.05], [1.0, 1.0, 1.0])
    expected = optimize_allocation(model, [0.5, 2.0, 8.0], 3600.0)
    assert report["optimal"]["counts"] == expected.counts.tolist()
    assert report["optimal"]["cost_seconds"] <= 3600.0
    np.testing.assert_allclose(report["optimal"]["continuous_counts"],
                               mlmc_allocation([1.0, 0.3, 0.05], [0.5, 2.0, 8.0], 3600.0), rtol=1e-4)
    assert report["gain_over_single_level"] == pytest.approx(
        report["single_level"]["predicted_error"] / report["optimal"]["predicted_error"])
    assert report["grid"] == [32, 64, 128]


def test_allocate_table(costs_csv, capsys):
    assert main(["allocate", "--costs", costs_csv, "--budget", "3600", *POWER_LAW, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "cost/sample" in out and "predicted relative MSE" in out and "gain x" in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))]) == 3


def test_allocate_errors(costs_csv, capsys):
    assert main(["allocate", "--costs", costs_csv, "--budget", "4", *POWER_LAW]) == 2
    assert "minimum budget needed is 8" in capsys.readouterr().err
    assert main(["allocate", "--costs", costs_csv, "--budget", "100", "--power-law", "coef=1,2"]) == 2
    assert "exponent" in capsys.readouterr().err
    assert main(["allocate", "--costs", costs_csv, "--budget", "100", "--power-law", "coef=1,2", "exponent=1,1"]) == 2
    assert "one entry per level" in capsys.readouterr().err


def test_allocate_from_a_pilot_file(tmp_path, costs_csv, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4))
    u1 = np.sin(x[:, :1])
    ys = [u1, u1 + 0.1 * x[:, 1:2], u1 + 0.1 * x[:, 1:2] + 0.01 * x[:, 2:3] ** 2]
    pilot = tmp_path / "pilot.npz"
    np.savez(pilot, x=x, **{f"y_level{l}": y for l, y in enumerate(ys, start=1)})
    assert main(["allocate", "--costs", costs_csv, "--budget", "100", "--pilot", str(pilot), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kernel"] == "mlp-relu-3" and report["max_samples"] == 20
    assert max(report["optimal"]["counts"]) <= 20
    assert report["optimal"]["predicted_error"] <= report["single_level"]["predicted_error"]


def test_curves_writes_figures_and_csv(tmp_path, costs_csv, capsys):
    out = tmp_path / "curves"
    assert main(["curves", "--costs", costs_csv, *POWER_LAW, "--budgets", "20:2000:4", "--out", str(out),
                 "--quiet"]) == 0
    for name in ("error_vs_budget.png", "error_vs_budget.pdf", "allocation.png", "curves.csv", "curves.json"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "curves.json").read_text())
    assert len(summary["error_optimal"]) == 4


def test_demo_smoke(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--pilot-size", "40", "--trials", "2", "--n-budgets", "3",
                 "--budget-samples", "6", "--levels", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["allocations"]["optimal"]["cost_seconds"] <= report["budget_seconds"] * (1 + 1e-12)
    for name in ("summary.md", "report.json", "error_vs_budget.png", "allocation.png", "learning_curves.png",
                 "predicted_vs_measured.png"):
        assert (out / name).stat().st_size > 0
    assert "Monte-Carlo" in (out / "summary.md").read_text()


def test_allocate_from_a_pilot_file_with_unlabeled_inputs(tmp_path, capsys):
    from ntk_mlft.estimators.pilot import save_pilot

    rng = np.random.default_rng(1)
    x, xu = rng.normal(size=(30, 4)), rng.normal(size=(80, 4))
    u1 = np.sin(x[:, :1])
    pilot = save_pilot(tmp_path / "pilot.npz", x, [u1, u1 + 0.2 * x[:, 1:2]], x_unlabeled=xu)
    assert main(["allocate", "--costs", _two_level(tmp_path), "--budget", "50",
                 "--pilot", str(pilot), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_samples"] == 40  # half of the 80 unlabeled inputs
    assert report["optimal"]["cost_seconds"] <= 50.0


def _two_level(tmp_path):
    path = tmp_path / "costs2.csv"
    path.write_text("level,grid,cost_seconds\n1,32,0.5\n2,64,2.0\n")
    return str(path)
