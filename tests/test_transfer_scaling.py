"""Samples-saved curves, the factor at a target error, the (N_pre, N) error model and the
pre-training allocation, on curves with known answers."""

import numpy as np
import pytest

from ntk_mlft.transfer.scaling import (
    TransferErrorModel,
    factor_at_error,
    pretraining_plan,
    scaling_curve,
    scratch_equivalent,
)


def test_scratch_equivalent_of_power_laws_is_exact():
    n = np.geomspace(10, 10000, 30).round()
    scratch = 2.0 / n                                   # power law: log-log interpolation exact
    finetune = 2.0 / (n + 100)
    equiv, cens = scratch_equivalent(n, scratch, finetune)
    inside = cens == 0
    np.testing.assert_allclose(equiv[inside], (n + 100)[inside], rtol=1e-10)
    assert np.all(cens[~inside] == 1)                   # beyond the scratch range: lower bound
    # finetune: not a power law
    assert factor_at_error(n, finetune, scratch, 2.0 / 500) == pytest.approx(500 / 400, rel=3e-3)
    assert np.isnan(factor_at_error(n, finetune, scratch, 1e-9))
    worse = scratch_equivalent(n, scratch, 3.0 / n)[1]  # worse than scratch at the smallest N
    assert worse[0] == -1


def test_scaling_curve_fields_and_bad_input():
    n = np.array([10, 20, 40, 80])
    c = scaling_curve("x", 100, n, 1.0 / (n + 30), 1.0 / n, 0.5)
    assert c.target_error == pytest.approx(1.0 / 10)    # scratch at the N nearest n_max / 10
    np.testing.assert_allclose(c.factor[:2], ((n + 30) / n)[:2])
    assert c.to_dict()["n_down"] == [10, 20, 40, 80]
    with pytest.raises(ValueError, match="strictly increasing"):
        scaling_curve("x", 1, [10, 10, 20], [1, 1, 1], [1, 1, 1], 0.5)


def _model():
    n_pre = np.array([0.0, 10, 100, 1000])
    n = np.geomspace(1, 1000, 12)
    err = 0.5 / (1 + n_pre[:, None] / 50) / n[None] ** 0.5 + 0.05 / n[None]
    return TransferErrorModel(n_pre, n, err), err


def test_error_model_interpolates_the_grid():
    model, err = _model()
    assert model.error([100, model.n_down[4]]) == pytest.approx(err[2, 4], rel=1e-12)
    assert model.error([0, 1]) == pytest.approx(err[0, 0])
    mid = model.error([30, 10])
    assert err[2, 4] < mid < err[1, 0]
    with pytest.raises(ValueError, match="start at 0"):
        TransferErrorModel(np.array([1.0, 10]), np.array([1.0, 2]), np.ones((2, 2)))


def test_pretraining_plan_buys_cheap_source_data():
    model, _ = _model()
    plan = pretraining_plan(model, [0.1, 1.0], [20.0, 200.0])
    assert np.all(plan.n_pre * 0.1 + plan.n_down * 1.0 <= plan.budgets + 1e-9)
    assert np.all(plan.error <= plan.scratch_error) and np.all(plan.n_pre > 0)
    with pytest.raises(ValueError, match="strictly increasing"):
        pretraining_plan(model, [1.0, 0.1], [20.0])
    with pytest.raises(ValueError, match="at least one target sample"):
        pretraining_plan(model, [0.1, 1.0], [0.5])


def test_mlp_kernel_of_flattened_features_equals_the_image_kernel():
    # predict_scaling feeds mlp-* kernels flattened rows (study._kernel_inputs): same kernel
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.transfer.study import _kernel_inputs, kernel_matrix

    x = np.random.default_rng(0).normal(size=(6, 4, 4, 7))
    kernel = get_architecture("mlp-relu-3", output_dim=16, width=1).kernel_fn
    flat, _ = _kernel_inputs("mlp-relu-3", x, np.zeros((6, 16)))
    assert flat.shape == (6, 112) and _kernel_inputs("cnn-relu-2", x, x)[0].shape == x.shape
    np.testing.assert_allclose(kernel_matrix(kernel, flat), kernel_matrix(kernel, x), rtol=1e-12, atol=0)
