"""The seeded fast tier of the estimator-accuracy suite (``benchmarks/estimator_suite.py --fast``:
20 randomized cases on 160-point pools, 50 pilot pairs, Monte-Carlo truth with up to 32 trials,
the experimental surrogate calibration skipped), run end to end, JSON and markdown checked.

Thresholds are the measured fast-tier distribution with a margin, not the issue's targets (which
the estimator does not meet on this family; ``analysis/results/estimator_accuracy.md``). Measured
(seed 0): spectral |rel err| median 5.1 %, p90 35 %, worst 99 % (case 3, d = 2, warned); pilot
median 14 %, p90 50 %; pilot 90 % interval coverage 90 %; the closed form's optimum no worse than
the best baseline in 20 of 20; failures the self-check does not warn about: spectral [12]
(helmholtz-oscillatory inputs, Erf NTK, -57 %), pilot [0, 12, 17]."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "estimator_suite.py"


@pytest.fixture(scope="module")
def fast_tier(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("estimator_suite", SUITE)
    estimator_suite = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("estimator_suite", estimator_suite)     # dataclasses look it up
    spec.loader.exec_module(estimator_suite)
    out = tmp_path_factory.mktemp("suite")
    assert estimator_suite.main(["--fast", "--out", str(out)]) == 0
    return json.loads((out / "estimator_accuracy.json").read_text()), \
        (out / "estimator_accuracy.md").read_text()


def test_fast_tier_distribution(fast_tier):
    data, _ = fast_tier
    s = data["summary"]
    assert s["n_cases"] == 20 and s["n_failed"] == 0
    assert s["spectral"]["median"] <= 0.10
    assert s["pilot"]["median"] <= 0.25
    assert s["pilot_coverage"] >= 0.8
    assert s["optimum_ok"] >= 0.9
    assert len(s["spectral_silent_failures"]) <= 2      # measured: 1 (case 12, -57 %)
    worst = max(data["cases"], key=lambda r: abs(r["spectral"] / r["mc"] - 1))
    assert worst["check"]["warned"]                     # the worst case is never silent


def test_fast_tier_report(fast_tier):
    data, md = fast_tier
    assert "| spectral closed form (the estimator) |" in md and "## Failures" in md
    for r in data["cases"]:
        assert r["mc"] > 0 and r["mc_se"] >= 0 and r["trials"] >= 16
        assert set(r["ranking"]["names"]) == {"optimum", "single", "equal"}
    assert data["meta"]["peak_mb"] > 0 and len(data["meta"]["load"]) == 3
