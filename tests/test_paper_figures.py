"""The paper-figure scripts run end to end on tiny settings and write what their docstrings name."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"paper_figures_{name}", ROOT / "paper_figures" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~10 s: the script end to end
def test_error_vs_budget_script(tmp_path, capsys):
    out = tmp_path / "fig"
    argv = ["--levels", "2", "--pilot-size", "16", "--n-unlabeled", "64", "--check-size", "160",
            "--max-budget-samples", "20", "--n-budgets", "4", "--trials", "2", "--out", str(out)]
    assert _script("error_vs_budget").main(argv) == 0
    for stem in ("error_vs_budget", "allocation"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.pdf").stat().st_size > 0
    summary = json.loads((out / "error_vs_budget.json").read_text())
    assert summary["max_samples_per_level"] == 16  # sample_cap(16 + 64)
    counts = summary["measured_counts"]
    assert len(counts) == 4 and max(max(row) for row in counts) <= 16
    # the measured fresh-input error and the prediction are both relative MSEs of the same allocations
    for measured, predicted in zip(summary["measured_fresh_mean"], summary["predicted_at_measured"]):
        assert 0.0 < measured < 2.0 and 0.0 < predicted < 2.0


@pytest.mark.slow
def test_validation_script_quick(tmp_path):
    out = tmp_path / "val"
    assert _script("validation").main(["--quick", "--out", str(out), "--widths", "8,16",
                                          "--cache-dir", str(tmp_path / "cache")]) == 0
    d = json.loads((out / "validation.json").read_text())
    assert d["settings"]["widths"] == "8,16" and len(d["results"]) == 1
    problem = d["results"][0]["problem"]
    for stem in ("validation", f"{problem}-measured_vs_predicted", f"{problem}-error_vs_budget"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.pdf").stat().st_size > 0
