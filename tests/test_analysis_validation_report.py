"""The validation report (analysis/validation.py) states its conclusions from the numbers: a
synthetic result whose gains and width trend are known, written, merged and re-read."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ntk_mlft.studies.trained_networks import ValidationResult, ValidationRow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def analysis():
    spec = importlib.util.spec_from_file_location("analysis_validation", ROOT / "analysis" / "validation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(problem: str, gain: float, seeds=(0, 1)) -> ValidationResult:
    """NTK errors 0.1 (optimal) and 0.1 * gain (single, equal); excess measured - NTK = 1 / width
    plus a seed offset 1e-4 s, so the excess slope is close to -1 and the measured gain at the largest width is
    known."""
    rows, widths = [], (64, 256)
    for a, counts, ntk in (("optimal", (40, 2), 0.1), ("single", (0, 8), 0.1 * gain), ("equal", (20, 4), 0.1 * gain)):
        for w in widths:
            for s in seeds:
                rows.append(ValidationRow(allocation=a, budget=8.0, counts=counts, width=w, seed=s,
                                          measured_error=ntk + 1.0 / w + 1e-4 * s, ntk_error=ntk,
                                          predicted_error=ntk, train_seconds=1.0, max_stage_steps=100))
    return ValidationResult(problem=problem, architecture="mlp-relu-3", optimizer="curveball", costs=(0.1, 1.0),
                            budgets=(8.0,), widths=widths, seeds=tuple(seeds), n_test=10, error_model="test",
                            ridge=0.1, rows=tuple(rows), settings={"max_steps": 600})


def test_conclusions_follow_the_numbers(analysis):
    heads = analysis.headline([_result("wins", 3.0), _result("loses", 0.5)])
    slope = np.log((1 / 256 + 5e-5) / (1 / 64 + 5e-5)) / np.log(4.0)  # excess 1/w + mean seed offset
    assert heads[0]["excess_slope"] == pytest.approx(slope, rel=1e-10)
    expected = (0.3 + 1 / 256 + 5e-5) / (0.1 + 1 / 256 + 5e-5)
    assert heads[0]["budgets"][0]["gain_measured"] == pytest.approx(expected, rel=1e-12)
    text = analysis.conclusions(heads)
    assert "beats single-level at every budget" in text[0] and "shrinks with width" in text[0]
    assert "CONTRADICTS the claim" in text[1]


def test_outputs_merge_runs_with_different_settings(analysis, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    analysis.write_outputs([_result("p1", 2.0)], {"widths": "64,256", "seeds": 2}, 0, 60.0, str(a))
    analysis.write_outputs([_result("p2", 2.0, seeds=(0,))], {"widths": "64,256", "seeds": 1}, 0, 30.0, str(b))
    results, settings, seconds = analysis.load_results([str(a / "validation.json"), str(b / "validation.json")])
    assert [r.problem for r in results] == ["p1", "p2"] and seconds == 90.0
    assert settings == {"runs": [{"problems": ["p1"], "widths": "64,256", "seeds": 2},
                                 {"problems": ["p2"], "widths": "64,256", "seeds": 1}]}
    same, settings_same, _ = analysis.load_results([str(a / "validation.json")] * 2)
    assert len(same) == 2 and settings_same == {"widths": "64,256", "seeds": 2}
    md = (a / "validation.md").read_text()
    assert "## Conclusions" in md and "p1" in md
    assert json.loads((a / "validation.json").read_text())["headline"][0]["problem"] == "p1"
    headline = analysis.headline([_result("one-seed", 2.0, seeds=(0,))])
    assert np.isnan(headline[0]["budgets"][0]["measured"]["optimal"][1])
