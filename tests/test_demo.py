"""``ntk-mlft demo`` on tiny settings: the practical model (pilot + unlabeled inputs), the pilot
cost as a fraction of the budget, the cap, the Monte-Carlo check on an independent pool (whole
pool and fresh inputs), and the report files."""

import json

import numpy as np

from ntk_mlft.cli import main


def test_demo_practical_pipeline(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--levels", "2", "--pilot-size", "24", "--n-unlabeled", "160",
                 "--check-size", "120", "--budget-samples", "40", "--trials", "2", "--n-budgets", "3",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    c = np.array(r["cost_seconds"])
    assert r["pool_size"] == 184 and r["max_samples_per_level"] == 80
    assert r["pilot_cost_fraction_of_budget"] == np.float64(24 * c.sum() / r["budget_seconds"])
    assert r["budget_seconds"] == np.float64(40 * c[-1])
    for key, a in r["allocations"].items():
        assert a["cost_seconds"] <= r["budget_seconds"] * (1 + 1e-12)
        assert max(a["counts"]) <= 80
        p, m = r["prediction"][key], r["monte_carlo"][key]
        assert p["lower90"] <= p["error"] <= p["upper90"]
        assert m["mean"] > 0 and m["fresh_mean"] >= m["mean"] * 0.5
    assert r["monte_carlo"]["single level"]["mean"] / r["monte_carlo"]["optimal"]["mean"] == \
        np.float64(r["gain_over_single_level_measured"])
    for name in ("summary.md", "report.json", "curves.csv", "costs.csv"):
        assert (out / name).stat().st_size > 0
    for fig in ("error_vs_budget", "allocation", "learning_curves", "predicted_vs_measured"):
        assert (out / f"{fig}.png").stat().st_size > 0 and (out / f"{fig}.pdf").stat().st_size > 0
    summary = (out / "summary.md").read_text()
    assert "What this does and does not show" in summary and "fresh inputs" in summary
    assert "24 paired pilot solves" in summary
