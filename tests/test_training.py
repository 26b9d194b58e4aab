"""Finite-width training vs analytic-NTK kernel regression; MLFT vs chained residual regression;
masks freeze bitwise; λ_max vs the dense empirical NTK."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from ntk_mlft.architectures import get_architecture
from ntk_mlft.training import (
    FitOptions,
    fit,
    make_mask,
    max_ntk_eigenvalue,
    parameter_groups,
    relative_mse,
    train_mlft,
    train_mlft_ensemble,
)


def _data(rng, n, d=3):
    x = rng.normal(size=(n, d))
    return x, np.sin(x @ np.array([[1.0], [-0.7], [0.4]]))


def _kreg(kernel_fn, x_train, y_train):
    """Kernel regression with the analytic NTK: x ↦ Θ(x, X) Θ(X, X)⁻¹ Y."""
    alpha = np.linalg.solve(np.asarray(kernel_fn(x_train, x_train, get="ntk")), y_train)
    return lambda x: np.asarray(kernel_fn(x, x_train, get="ntk")) @ alpha


@pytest.mark.slow  # 10-15 s unloaded; the ridge/linear and two-level tests cover the fast path
def test_wide_gd_matches_kernel_regression_and_gap_shrinks(rng):
    x, y = _data(rng, 8)
    xt = rng.normal(size=(15, 3))
    gaps = []
    for width in (64, 512):
        arch = get_architecture("mlp-erf-2", output_dim=1, width=width)
        predict = _kreg(arch.kernel_fn, x, y)
        res = train_mlft(arch, [(x, y)], FitOptions(max_steps=3000, lr_factor=0.9), x_test=xt,
                         y_test=predict(xt), seed=1)
        assert res.levels[0].losses[-1] < 1e-10          # converged (interpolates)
        assert np.all(np.diff(res.levels[0].losses) <= 1e-15)   # GD at η < 2/λ_max is monotone
        gaps.append(res.test_error)
    assert gaps[1] < 0.01
    assert gaps[1] < 0.5 * gaps[0]


def test_mlft_two_levels_equals_chained_residual_regression(rng):
    x1, y1 = _data(rng, 10)
    x2, y2f = _data(rng, 5)
    y2 = y2f + 0.2 * np.cos(x2[:, :1])                  # the fine level differs from the coarse one
    xt = rng.normal(size=(15, 3))
    arch = get_architecture("mlp-erf-2", output_dim=1, width=512)
    f1 = _kreg(arch.kernel_fn, x1, y1)
    k22 = np.asarray(arch.kernel_fn(x2, x2, get="ntk"))
    chained = f1(xt) + np.asarray(arch.kernel_fn(xt, x2, get="ntk")) @ np.linalg.solve(k22, y2 - f1(x2))
    only_fine = np.asarray(arch.kernel_fn(xt, x2, get="ntk")) @ np.linalg.solve(k22, y2)
    res = train_mlft(arch, [(x1, y1), (x2, y2)], FitOptions(max_steps=2000, lr_factor=0.9), x_test=xt,
                     y_test=chained)
    assert res.test_error < 0.01
    assert relative_mse(only_fine, chained) > 10 * res.test_error   # the oracle discriminates
    assert [r.level for r in res.levels] == [1, 2] and res.levels[0].n_train == 10


def test_masks_freeze_bitwise_and_groups(rng):
    x, y = _data(rng, 6)
    arch = get_architecture("mlp-relu-3", output_dim=1, width=16)
    _, params = arch.init_fn(jax.random.key(0), (-1, 3))
    assert parameter_groups(params) == ("layer_01_Dense", "layer_03_Dense", "layer_05_Dense",
                                        "layer_07_Dense")       # = empirical.resolve_groups
    for optimizer in ("gd", "adam", "curveball"):
        res = fit(arch.apply_fn, params, x, y,
                  FitOptions(optimizer=optimizer, max_steps=20, chunk=10, trainable=["layer_03_Dense"],
                             learning_rate=None if optimizer != "adam" else 1e-2))
        for i, (new, old) in enumerate(zip(res.params, params)):
            for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old)):
                if i == 3:                               # stax index of the 2nd Dense layer
                    assert not np.array_equal(np.asarray(a), np.asarray(b))
                else:
                    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert res.losses[-1] < res.losses[0]
    with pytest.raises(ValueError, match="unknown group"):
        make_mask(params, ["layer2"])


@pytest.mark.slow  # ~7 s
def test_max_ntk_eigenvalue_matches_dense_jacobian(rng):
    x, _ = _data(rng, 7)
    arch = get_architecture("mlp-relu-3", output_dim=2, width=12)
    _, params = arch.init_fn(jax.random.key(3), (-1, 3))
    flat, unravel = ravel_pytree(params)
    jac = np.asarray(jax.jacfwd(lambda w: arch.apply_fn(unravel(w), x).ravel())(flat))
    ref = np.linalg.eigvalsh(jac @ jac.T)[-1]
    assert max_ntk_eigenvalue(arch.apply_fn, params, jnp.asarray(x), iterations=300) == pytest.approx(ref, rel=1e-8)


@pytest.mark.slow  # 10-15 s unloaded; the ridge/linear and two-level tests cover the fast path
def test_curveball_reaches_interpolant_and_ensemble(rng):
    x, y = _data(rng, 8)
    xt = rng.normal(size=(10, 3))
    arch = get_architecture("mlp-erf-2", output_dim=1, width=32)
    ens = train_mlft_ensemble(arch, [(x, y)], FitOptions(optimizer="curveball", max_steps=100, chunk=20, rtol=0.0),
                              x_test=xt, y_test=np.sin(xt[:, :1]), seeds=(0, 1))
    for r in ens.results:
        assert r.levels[0].losses[-1] < 1e-8 * r.levels[0].losses[0]
    preds = np.stack([r.test_predictions for r in ens.results])
    np.testing.assert_allclose(ens.prediction_mean, preds.mean(0))
    assert ens.test_errors.shape == (2,) and ens.results[0].seed == 0


def test_float32_and_bad_input(rng):
    x, y = _data(rng, 6)
    arch = get_architecture("mlp-erf-2", output_dim=1, width=16)
    res = train_mlft(arch, [(x, y)], FitOptions(max_steps=50), dtype="float32")
    assert jax.tree.leaves(res.params)[0].dtype == jnp.float32
    assert res.levels[0].losses[-1] < res.levels[0].losses[0]
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train_mlft(arch, [(x, y)], FitOptions(optimizer="lbfgs"))
    with pytest.raises(ValueError, match="finest level must have"):
        train_mlft(arch, [(x, y), (x[:0], y[:0])])
    with pytest.raises(ValueError, match="max_steps_per_level must have one entry per level"):
        train_mlft(arch, [(x, y)], max_steps_per_level=[1, 2])


@pytest.mark.parametrize("optimizer", ["gd", "curveball"])
def test_ridge_fit_of_linear_model_is_kernel_ridge_regression(rng, optimizer):
    # f(w; x) = x @ w is its own linearisation: the proximal-ridge optimum is exactly
    # w0 + Xᵀ (X Xᵀ + λ I)⁻¹ (Y − X w0), i.e. kernel ridge regression with Θ = X Xᵀ
    x, y = rng.normal(size=(6, 10)), rng.normal(size=(6, 2))
    w0 = {"w": jnp.asarray(rng.normal(size=(10, 2)))}
    lam = 0.8
    w_ref = np.asarray(w0["w"]) + x.T @ np.linalg.solve(x @ x.T + lam * np.eye(6), y - x @ np.asarray(w0["w"]))
    res = fit(lambda p, xx: xx @ p["w"], w0, x, y,
              FitOptions(optimizer=optimizer, ridge=lam, max_steps=4000, rtol=1e-14, chunk=50, lr_factor=0.9))
    np.testing.assert_allclose(np.asarray(res.params["w"]), w_ref, rtol=1e-7, atol=1e-9)
    without = fit(lambda p, xx: xx @ p["w"], w0, x, y, FitOptions(optimizer=optimizer, max_steps=200, chunk=50))
    assert np.max(np.abs(np.asarray(without.params["w"]) - w_ref)) > 1e-2   # the ridge is what matters
    with pytest.raises(ValueError, match="ridge"):
        fit(lambda p, xx: xx @ p["w"], w0, x, y, FitOptions(ridge=-1.0))


def test_stopping_rule_rising_loss_is_not_convergence(rng):
    x, y = rng.normal(size=(8, 5)), rng.normal(size=(8, 1))
    w0 = {"w": jnp.zeros((5, 1))}

    def model(p, xx):
        return xx @ p["w"]
    limit = y.size / np.linalg.eigvalsh(x @ x.T)[-1]          # GD stability limit N K / λ_max(Θ)
    with pytest.raises(FloatingPointError, match="diverged"):  # not stopped="tol" after 1 chunk
        fit(model, w0, x, y, FitOptions(learning_rate=3.0 * limit, max_steps=2000, chunk=50, rtol=1e-3))
    # interpolation to the round-off floor, where the loss fluctuates: this run's last chunk
    # rises (4.6e-33 -> 1.3e-32) yet it is converged, "tol", not max_steps
    r2 = np.random.default_rng(2)
    xw, yw = r2.normal(size=(4, 5)), r2.normal(size=(4, 1))
    p0 = {"w": jnp.asarray(r2.normal(size=(5, 6))), "v": jnp.asarray(r2.normal(size=(6, 1)))}
    res = fit(lambda p, xx: jnp.tanh(xx @ p["w"]) @ p["v"], p0, xw, yw,
              FitOptions(optimizer="curveball", max_steps=20000, chunk=20, rtol=1e-12))
    assert res.stopped == "tol" and res.steps < 1000 and res.losses[-1] < 1e-28


def test_max_steps_is_exact_when_the_chunk_does_not_divide_it(rng):
    x, y = _data(rng, 6)
    arch = get_architecture("mlp-relu-3", output_dim=1, width=16)
    _, params = arch.init_fn(jax.random.key(0), (-1, 3))
    res = fit(arch.apply_fn, params, x, y, FitOptions(optimizer="gd", max_steps=25, chunk=10, rtol=0.0))
    assert res.steps == 25 and res.losses.size == 26 and res.stopped == "max_steps"
