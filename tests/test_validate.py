"""Validation and the pilot → estimator workflow.

Oracles: the NTK column recomputed by an explicit chained kernel-ridge formula (numpy solves,
independent of ``multilevel``); the predicted column recomputed from the pilot with the spectral
estimator built by hand; allocation baselines by their closed forms; aggregates by hand.
"""

import json

import numpy as np
import pytest

from ntk_mlft._seeds import derived_seed
from ntk_mlft.studies.trained_networks import ValidationResult, ValidationRow

# a small instance of the problem keeps the runs short (64 inputs, 16 outputs, coarse grid 16)
_SMALL = {"n_coarse": 16, "n_input": 64, "n_output": 16}
_SMALL_ARGS = [a for k, v in _SMALL.items() for a in ("--param", f"{k}={v}")]


def _chained_krr(kernel_fn, levels, x_test, lam):
    """f_l = f_{l-1} + Θ(·, X_l)(Θ(X_l, X_l) + λI)⁻¹(Y_l − f_{l-1}(X_l)), f_0 = 0, empty levels skipped;
    one kernel matrix on all points, explicit solves level by level."""
    used = [(x, y) for x, y in levels if len(x)]
    z = np.concatenate([x for x, _ in used] + [x_test])
    k = np.asarray(kernel_fn(z, None, get="ntk"))
    f = np.zeros((len(z), used[-1][1].shape[1]))
    start = 0
    for x, y in used:
        idx = np.arange(start, start + len(x))
        alpha = np.linalg.solve(k[np.ix_(idx, idx)] + lam * np.eye(len(x)), y - f[idx])
        f = f + k[:, idx] @ alpha
        start += len(x)
    return f[start:]


def test_workflow_estimator_is_the_spectral_estimator_with_relative_ridge(rng):
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators import Pilot, SpectralEstimator
    from ntk_mlft.studies.error_model import absolute_ridge, build_error_model

    x = rng.normal(size=(30, 6))
    ys = np.stack([np.sin(x[:, :2]), np.sin(x[:, :2]) + 0.1 * np.cos(x[:, 2:4])])     # (L=2, n, 2)
    setup = build_error_model(Pilot(x=x, ys=ys), "mlp-erf-2", 1e-2)
    k = setup.kernel
    np.testing.assert_allclose(k, get_architecture("mlp-erf-2", output_dim=2).kernel_fn(x, x, get="ntk"),
                               rtol=1e-12)
    lam = 1e-2 * np.trace(k) / 30
    assert absolute_ridge(k, 1e-2) == pytest.approx(lam, rel=1e-12)
    assert setup.ridge_absolute == pytest.approx(lam, rel=1e-12)
    by_hand = SpectralEstimator.from_kernel(k, ys, ridge=lam)
    counts = np.array([[10, 3], [0, 5], [4, 1]], float)
    np.testing.assert_allclose(setup.model.error_many(counts), by_hand.error_many(counts), rtol=1e-12)
    assert setup.pool_size == 30
    with pytest.raises(ValueError, match="ridge"):
        absolute_ridge(k, -1.0)
    with pytest.raises(ValueError, match="square"):
        absolute_ridge(k[:3], 0.1)


def _row(a, w, s, m, k, p, counts=(1, 2)):
    return ValidationRow(allocation=a, budget=10.0, counts=counts, width=w, seed=s, measured_error=m,
                         ntk_error=k, predicted_error=p, train_seconds=0.0)


def test_result_aggregates_by_hand_and_round_trip():
    rows = (_row("optimal", 8, 0, 0.2, 0.1, 0.12), _row("optimal", 8, 1, 0.4, 0.3, 0.12),
            _row("single", 8, 0, 0.6, 0.5, 0.3, (0, 3)), _row("single", 8, 1, 1.0, 0.7, 0.3, (0, 3)))
    res = ValidationResult(problem="p", architecture="a", optimizer="gd", costs=(1.0, 3.0), budgets=(10.0,),
                           widths=(8,), seeds=(0, 1), n_test=5, error_model="m", ridge=0.1, rows=rows)
    opt, single = res.summary()
    assert opt["measured_mean"] == pytest.approx(0.3) and opt["measured_se"] == pytest.approx(0.1)
    assert opt["relative_gap"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert single["counts"] == [0, 3] and single["ntk_mean"] == pytest.approx(0.6)
    (gain,) = res.gains()
    assert gain["measured_single_over_optimal"] == pytest.approx(0.8 / 0.3)
    assert gain["ntk_single_over_optimal"] == pytest.approx(0.6 / 0.2)
    assert gain["predicted_single_over_optimal"] == pytest.approx(0.3 / 0.12)
    (gap,) = res.gaps()
    assert gap["finite_width_gap"] == pytest.approx(np.mean([1.0, 1 / 3, 0.2, 3 / 7]))
    assert gap["excess_error"] == pytest.approx(0.15) and gap["excess_error_se"] == pytest.approx(
        np.std([0.1, 0.1, 0.1, 0.3], ddof=1) / 2)
    assert gap["log_ratio_to_predicted"] == pytest.approx(
        np.mean(np.abs(np.log([0.2 / 0.12, 0.4 / 0.12, 0.6 / 0.3, 1.0 / 0.3]))))
    back = ValidationResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back == res
    assert "| 10 | optimal | (1, 2) | 8 | 0.3 ± 0.1 |" in res.table()


def test_validate_columns_against_independent_formulas():
    """Default (practical) estimator path with untrained networks (max_steps=0): the centred net is
    identically 0, so its measured error is exactly 1; the predicted column is the pilot estimator
    rebuilt by hand from the kernel on pilot + unlabeled inputs, the NTK column the chained formula."""
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators.pilot import PilotEstimator
    from ntk_mlft.problems import generate, get_problem
    from ntk_mlft.studies.error_model import sample_cap, unlabeled_inputs
    from ntk_mlft.studies.trained_networks import level_data, validate
    from ntk_mlft.training import relative_mse

    problem = get_problem("elliptic-rough", levels=3, **_SMALL)
    res = validate(problem, architecture="mlp-erf-2", budgets=[24.0], allocations=["optimal", "single"],
                   widths=[8], seeds=[0], n_test=20, optimizer="adam", max_steps=0, ridge=0.05,
                   costs=[1.0, 2.0, 4.0], n_pilot=24, n_unlabeled=40, seed=3)
    kf = get_architecture("mlp-erf-2", output_dim=16).kernel_fn
    pilot = generate(problem, [24] * 3, seed=3, paired=True)
    union = np.concatenate([pilot.inputs[-1], unlabeled_inputs(problem, 40, seed=3)])
    k = np.asarray(kf(union, None, get="ntk"))
    lam = 0.05 * np.mean(np.diag(k))
    assert res.ridge == pytest.approx(lam, rel=1e-10)
    est = PilotEstimator.from_kernels(k[24:, 24:], k[:24, 24:], np.stack(pilot.outputs), k_pp=k[:24, :24],
                                      ridge=lam, n_boot=30, seed=3)
    test = generate(problem, [1, 1, 20], seed=derived_seed(3, "test set"))
    opt, single = res.rows
    cap = sample_cap(64)
    assert res.settings["max_samples"] == cap == 12
    assert single.counts == (0, 0, 6) and opt.allocation == "optimal"
    assert np.dot(opt.counts, [1.0, 2.0, 4.0]) <= 24 and max(opt.counts) <= cap
    for row in res.rows:
        assert row.measured_error == pytest.approx(1.0, abs=1e-12)
        assert row.predicted_error == pytest.approx(est.error(row.counts), rel=1e-10)
        levels = level_data(problem, row.counts, derived_seed(3, "level data", row.seed))
        assert [len(x) for x, _ in levels] == list(row.counts)
        pred = _chained_krr(kf, levels, test.inputs[-1], lam)
        assert row.ntk_error == pytest.approx(relative_mse(pred, test.outputs[-1]), rel=1e-8)
    assert opt.predicted_error <= single.predicted_error           # the optimiser used the estimator
    with pytest.raises(ValueError, match="allocations"):
        validate(problem, budgets=[24.0], allocations=["best"], costs=[1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="budgets"):
        validate(problem, budgets=[-1.0], costs=[1.0, 2.0, 4.0])


@pytest.mark.slow
def test_validate_cli_end_to_end(tmp_path, capsys):
    """Estimator path (default error model), single-level allocation: predicted and NTK columns
    recomputed independently from the same seeded data."""
    from ntk_mlft.allocation.costs import CostTable
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.cli import main
    from ntk_mlft.estimators import SpectralEstimator
    from ntk_mlft.problems import generate, get_problem
    from ntk_mlft.studies.trained_networks import level_data
    from ntk_mlft.training import relative_mse

    costs = tmp_path / "costs.csv"
    CostTable.from_costs([1.0, 2.0, 4.0]).to_csv(costs)
    out = tmp_path / "val"
    rc = main(["validate", "--problem", "elliptic-rough", "--levels", "3", *_SMALL_ARGS, "--arch", "mlp-erf-2",
               "--budget", "24", "--widths", "8", "--allocations", "single", "--seeds", "1", "--max-steps", "20",
               "--n-test", "20", "--n-pilot", "24", "--n-unlabeled", "0", "--ridge", "0.05", "--costs", str(costs),
               "--out", str(out),
               "--json", "--quiet"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    (summ,) = report["summary"]
    # floor(24 / 4) = 6 finest samples, capped at sample_cap(24) = 4 (the pilot-only estimator's pool)
    assert summ["allocation"] == "single" and summ["counts"] == [0, 0, 4]
    saved = ValidationResult.from_dict(json.loads((out / "validation.json").read_text()))
    (row,) = saved.rows
    assert (out / "measured_vs_predicted.png").exists() and (out / "error_vs_budget.png").exists()
    problem = get_problem("elliptic-rough", levels=3, **_SMALL)
    kf = get_architecture("mlp-erf-2", output_dim=16).kernel_fn
    pilot = generate(problem, [24] * 3, seed=0, paired=True)
    k = np.asarray(kf(pilot.inputs[-1], None, get="ntk"))
    lam = 0.05 * np.mean(np.diag(k))
    assert saved.ridge == pytest.approx(lam, rel=1e-10)
    est = SpectralEstimator.from_kernel(k, np.stack(pilot.outputs), ridge=lam)
    assert row.predicted_error == pytest.approx(est.error([0, 0, 4]), rel=1e-10)
    test = generate(problem, [1, 1, 20], seed=derived_seed(0, "test set"))
    levels = level_data(problem, row.counts, derived_seed(0, "level data", row.seed))
    assert [len(x) for x, _ in levels] == [0, 0, 4]
    pred = _chained_krr(kf, levels, test.inputs[-1], lam)
    assert row.ntk_error == pytest.approx(relative_mse(pred, test.outputs[-1]), rel=1e-8)
    assert np.isfinite(row.measured_error) and row.max_stage_steps == 20


@pytest.mark.slow
def test_validate_user_model_allocations_and_wide_nets_approach_ntk():
    """User-supplied power law: counts are the optimiser's and the baselines'; the three-level
    NTK column is the chained formula; wider nets are closer to it."""
    from ntk_mlft.allocation import equal_split_allocation, optimize_allocation
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators.base import PowerLawErrorModel
    from ntk_mlft.problems import generate, get_problem
    from ntk_mlft.studies.trained_networks import level_data, validate
    from ntk_mlft.training import relative_mse

    problem = get_problem("elliptic-rough", levels=3, **_SMALL)
    model = PowerLawErrorModel(coef=[1.0, 0.2, 0.05], exponent=[1.0, 1.0, 1.0])
    costs = np.array([1.0, 2.0, 4.0])
    res = validate(problem, architecture="mlp-erf-2", budgets=[60.0], widths=(16, 256), seeds=(0,), n_test=30,
                   max_steps=100, rtol=1e-6, ridge=0.05, costs=costs, error_model=model, n_pilot=24)
    counts = {d["allocation"]: tuple(d["counts"]) for d in res.summary()}
    assert counts["optimal"] == tuple(optimize_allocation(model, costs, 60.0).counts)
    assert counts["single"] == (0, 0, 15)
    assert counts["equal"] == tuple(equal_split_allocation(model, costs, 60.0).counts) == (20, 10, 5)
    assert res.error_model.startswith("user-supplied")
    kf = get_architecture("mlp-erf-2", output_dim=16).kernel_fn
    test = generate(problem, [1, 1, 30], seed=derived_seed(0, "test set"))
    row = next(r for r in res.rows if r.allocation == "equal")
    pred = _chained_krr(kf, level_data(problem, row.counts, derived_seed(0, "level data", 0)), test.inputs[-1],
                        res.ridge)
    assert row.ntk_error == pytest.approx(relative_mse(pred, test.outputs[-1]), rel=1e-8)
    assert row.predicted_error == pytest.approx(model.error(np.array(row.counts, float)), rel=1e-12)
    gap = {d["width"]: d["finite_width_gap"] for d in res.gaps()}
    assert gap[256] < gap[16]


@pytest.mark.slow  # ~20 s: trains networks twice; make test-all runs it
def test_checkpoint_resumes_skips_done_rows_and_separates_settings(tmp_path, monkeypatch):
    """An interrupted run keeps its finished rows; the re-run trains only the missing ones and
    returns the same result; other settings get another checkpoint file."""
    from ntk_mlft.estimators.base import PowerLawErrorModel
    from ntk_mlft.problems import get_problem
    from ntk_mlft.studies import trained_networks as validation

    problem = get_problem("elliptic-rough", levels=3, **_SMALL)
    kw = dict(architecture="mlp-erf-2", budgets=[24.0], allocations=["optimal", "single"], widths=[4, 8],
              seeds=[0], n_test=10, optimizer="adam", max_steps=3, ridge=0.05, costs=[1.0, 2.0, 4.0],
              error_model=PowerLawErrorModel(coef=[1.0, 0.3, 0.1], exponent=[1.0, 1.0, 1.0]),
              n_pilot=12, checkpoint_dir=tmp_path)
    real, calls = validation.train_mlft, []

    def counting(net, *args, **kwargs):
        calls.append(net)
        if len(calls) == 3:
            raise KeyboardInterrupt               # the run dies while training the third net
        return real(net, *args, **kwargs)

    monkeypatch.setattr(validation, "train_mlft", counting)
    with pytest.raises(KeyboardInterrupt):
        validation.validate(problem, **kw)
    (path,) = tmp_path.glob("validation-elliptic-rough-*.json")
    assert len(json.loads(path.read_text())["rows"]) == 2
    calls.clear()
    monkeypatch.setattr(validation, "train_mlft", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    first = validation.validate(problem, **kw)
    assert len(calls) == 2 and len(first.rows) == 4               # only the two missing nets trained
    calls.clear()
    again = validation.validate(problem, **kw)
    assert calls == [] and again.rows == first.rows
    validation.validate(problem, **{**kw, "max_steps": 2, "widths": [4], "allocations": ["single"]})
    assert len(list(tmp_path.glob("validation-elliptic-rough-*.json"))) == 2
    path.write_text("{not json")
    with pytest.raises(ValueError, match="checkpoint_dir"):
        validation.validate(problem, **kw)
