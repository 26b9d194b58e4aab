"""Validation: chained kernel regression against closed forms; a tiny end-to-end run through the CLI."""

import json

import numpy as np
import pytest

from ntk_mlft.validation import chained_kernel_regression


def _rbf(x1, x2=None, get=None):
    x2 = x1 if x2 is None else x2
    d = np.sum((np.asarray(x1)[:, None, :] - np.asarray(x2)[None, :, :]) ** 2, axis=-1)
    return np.exp(-d / 2.0)


def test_chained_regression_closed_forms(rng):
    x1, x2, xt = rng.normal(size=(12, 2)), rng.normal(size=(5, 2)), rng.normal(size=(7, 2))
    y1, y2 = rng.normal(size=(12, 3)), rng.normal(size=(5, 3))
    # fine-tuning on the same inputs: the result is plain regression on the finest targets
    same = chained_kernel_regression(_rbf, [(x1, y1), (x1, y2[:1].repeat(12, 0))], xt)
    direct = _rbf(xt, x1) @ np.linalg.solve(_rbf(x1, x1), y2[:1].repeat(12, 0))
    np.testing.assert_allclose(same, direct, rtol=1e-8, atol=1e-10)
    # the last level is interpolated; the first level's fit survives away from X_2
    f = chained_kernel_regression(_rbf, [(x1, y1), (x2, y2)], np.concatenate([x2, xt]))
    np.testing.assert_allclose(f[:5], y2, rtol=1e-8, atol=1e-9)
    f1 = _rbf(xt, x1) @ np.linalg.solve(_rbf(x1, x1), y1)
    corr = _rbf(xt, x2) @ np.linalg.solve(_rbf(x2, x2), y2 - _rbf(x2, x1) @ np.linalg.solve(_rbf(x1, x1), y1))
    np.testing.assert_allclose(f[5:], f1 + corr, rtol=1e-8, atol=1e-10)
    # an empty (skipped) level changes nothing
    skip = chained_kernel_regression(_rbf, [(x1[:0], y1[:0]), (x2, y2)], xt)
    np.testing.assert_allclose(skip, _rbf(xt, x2) @ np.linalg.solve(_rbf(x2, x2), y2), rtol=1e-8)
    with pytest.raises(ValueError, match="at least one non-empty level"):
        chained_kernel_regression(_rbf, [(x1[:0], y1[:0])], xt)


# a small instance of the problem keeps the run short (64 inputs, 16 outputs, coarse grid 16)
_SMALL = ["--param", "n_coarse=16", "--param", "n_input=64", "--param", "n_output=16"]


def test_validate_cli_end_to_end(tmp_path, capsys):
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.cli import main
    from ntk_mlft.costs import CostTable
    from ntk_mlft.problems import get_problem
    from ntk_mlft.training import relative_mse
    from ntk_mlft.validation import _level_data

    costs = tmp_path / "costs.csv"
    CostTable.from_costs([1.0, 2.0, 4.0]).to_csv(costs)
    out = tmp_path / "val"
    rc = main(["validate", "--problem", "elliptic-rough", "--levels", "3", *_SMALL, "--arch", "mlp-erf-2",
               "--budget", "24", "--widths", "16", "--allocations", "optimal,single", "--seeds", "1", "--max-steps", "50",
               "--n-test", "20", "--n-pilot", "16", "--costs", str(costs), "--out", str(out), "--json",
               "--quiet"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    summ = report["summary"]
    assert {d["allocation"] for d in summ} == {"optimal", "single"}
    for d in summ:
        assert np.dot(d["counts"], [1.0, 2.0, 4.0]) <= 24 + 1e-9 and d["counts"][-1] >= 1
    assert next(d for d in summ if d["allocation"] == "single")["counts"] == [0, 0, 6]
    saved = json.loads((out / "validation.json").read_text())
    assert len(saved["rows"]) == 2
    assert (out / "measured_vs_predicted.png").exists() and (out / "error_vs_budget.png").exists()
    # the NTK column is recomputed independently from the same seeded data
    problem = get_problem("elliptic-rough", levels=3, n_coarse=16, n_input=64, n_output=16)
    row = saved["rows"][0]
    from ntk_mlft.problems import generate
    test = generate(problem, [1, 1, 20], seed=0 + 7)
    levels = _level_data(problem, row["counts"], 0 + 1000 * (row["seed"] + 1))
    kf = get_architecture("mlp-erf-2", output_dim=test.outputs[-1].shape[1]).kernel_fn
    pred = chained_kernel_regression(kf, levels, test.inputs[-1])
    assert row["ntk_error"] == pytest.approx(relative_mse(pred, test.outputs[-1]), rel=1e-8)
    assert all(np.isfinite(r["measured_error"]) for r in saved["rows"])
