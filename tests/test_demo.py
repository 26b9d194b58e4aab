"""``ntk-mlft demo`` on tiny settings: the practical model (pilot + unlabeled inputs), the pilot
cost as a fraction of the budget, the cap (``studies.error_model.sample_cap`` of the pool), the Monte-Carlo
check on an independent pool (fresh inputs, the quantity predicted; whole pool kept in the
report), the measured gain, and the report files."""

import json

import numpy as np

from ntk_mlft.cli import main
from ntk_mlft.studies.error_model import sample_cap


def test_demo_practical_pipeline(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--levels", "2", "--pilot-size", "24", "--n-unlabeled", "160",
                 "--check-size", "120", "--budget-samples", "40", "--trials", "2", "--n-budgets", "3",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    c = np.array(r["cost_seconds"])
    assert r["pool_size"] == 184 and r["max_samples_per_level"] == sample_cap(184) == 36
    assert r["pilot_cost_fraction_of_budget"] == np.float64(24 * c.sum() / r["budget_seconds"])
    assert r["budget_seconds"] == np.float64(40 * c[-1])
    for key, a in r["allocations"].items():
        assert a["cost_seconds"] <= r["budget_seconds"] * (1 + 1e-12)
        assert max(a["counts"]) <= 36
        p, m = r["prediction"][key], r["monte_carlo"][key]
        assert p["lower90"] <= p["error"] <= p["upper90"]
        assert m["fresh_mean"] > 0 and m["pool_mean"] > 0 and m["fresh_stderr"] > 0
    assert r["monte_carlo"]["single"]["fresh_mean"] / r["monte_carlo"]["optimal"]["fresh_mean"] == \
        np.float64(r["gain_over_single_level_measured"])
    assert r["gain_over_single_level_measured_stderr"] > 0
    assert r["monte_carlo_sets"] == "disjoint"                      # every row fits the check pool
    for name in ("summary.md", "report.json", "curves.csv", "costs.csv"):
        assert (out / name).stat().st_size > 0
    for fig in ("error_vs_budget", "allocation", "learning_curves", "predicted_vs_measured"):
        assert (out / f"{fig}.png").stat().st_size > 0 and (out / f"{fig}.pdf").stat().st_size > 0
    summary = (out / "summary.md").read_text()
    assert "What this does and does not show" in summary and "fresh inputs" in summary
    assert "Predicted vs Monte-Carlo fresh-input error" in summary
    assert "24 paired pilot solves" in summary
    cov = sum(r["allocations"]["optimal"]["counts"]) / 184
    assert r["coverage_of_pool"] == np.float64(cov)
    assert ("of the estimator's pool (184 inputs); above 50% the fresh-input prediction" in summary) == (cov > 0.5)
    unspent = [k for k, a in r["allocations"].items() if a["unspent_reason"] != "none" and a["unspent_seconds"] > 0]
    assert ("Unspent budget:" in summary) == bool(unspent)
    for key in unspent:
        assert f"- {key}: " in summary and r["allocations"][key]["unspent_reason"] in summary
    assert "± nan" not in summary
    warnings = r["diagnostics"]["warnings"]                         # 24 pilot pairs: thin pilot
    assert warnings and all(f"- WARNING: {w}." in summary for w in warnings)
    check = r["self_check"]                                         # pilot-scale Monte-Carlo
    assert len(check["counts"]) == len(r["allocations"]) and len(check["monte_carlo"]) == len(check["counts"])
    assert ("the pilot): agrees within 25%" in summary) == check["agrees"]
    assert ("the pilot): disagrees within 25%" in summary) != check["agrees"]
    assert all(f"- WARNING: {w}." in summary for w in check["warnings"])
