"""Training masks use the per-layer NTK's partition: re-training only group g is kernel (ridge)
regression with Θ_g = empirical_ntk_by_group(...)[g] at initialisation — exactly for the
read-out layer (the model is linear in it), up to the finite-width gap for a hidden layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntk_mlft.architectures import get_architecture
from ntk_mlft.empirical import empirical_ntk_by_group, resolve_groups
from ntk_mlft.predict.multilevel import mlft_predict
from ntk_mlft.training import FitOptions, fit, make_mask, max_ntk_eigenvalue, parameter_groups, relative_mse, train_mlft


def _data(rng, n, d=3, k=2):
    x = rng.normal(size=(n, d))
    return x, np.sin(x @ rng.normal(size=(d, k)))


def _group_kernels(apply_fn, params, x, xt, groups):
    """``{g: (Θ_g(X, X), Θ_g(x*, X))}`` at ``params`` (outputs traced), from one kernel call."""
    n = len(x)
    theta = empirical_ntk_by_group(apply_fn, params, jnp.asarray(np.concatenate([x, xt])), groups=groups)
    return {g: (np.asarray(k)[:n, :n], np.asarray(k)[n:, :n]) for g, k in theta.items()}


def _krr(kernels, y, ridge=0.0):
    k_xx, k_tx = kernels
    return k_tx @ np.linalg.solve(k_xx + ridge * np.eye(len(k_xx)), y)


def test_groups_are_resolve_groups_and_errors(rng):
    arch = get_architecture("mlp-relu-3", output_dim=2, width=8)
    _, params = arch.init_fn(jax.random.key(0), (-1, 3))
    assert parameter_groups(params) == tuple(resolve_groups(params))
    custom = {"hidden": [1, 3, 5], "readout": [7]}
    assert parameter_groups(params, custom) == ("hidden", "readout")
    mask = make_mask(params, ["readout"], custom)
    assert [bool(m) for m in jax.tree.leaves(mask)] == [False] * 6 + [True] * 2   # W, b of params[7]
    with pytest.raises(ValueError, match=r"unknown group\(s\) \['layer1'\]; allowed: \['layer_01_Dense'"):
        make_mask(params, ["layer1"])
    with pytest.raises(TypeError, match="sequence of group names; got the string"):
        make_mask(params, "layer_01_Dense")
    with pytest.raises(ValueError, match="at least one group"):
        make_mask(params, [])
    with pytest.raises(ValueError, match="groups do not cover"):
        fit(arch.apply_fn, params, *_data(rng, 4), FitOptions(groups={"readout": [7]}, trainable=["readout"]))


def test_restricted_lambda_max_is_that_of_the_group_kernel(rng):
    x, _ = _data(rng, 6)
    arch = get_architecture("mlp-erf-2", output_dim=1, width=16)
    _, params = arch.init_fn(jax.random.key(1), (-1, 3))
    last = parameter_groups(params)[-1]
    theta = np.asarray(empirical_ntk_by_group(arch.apply_fn, params, jnp.asarray(x))[last])
    lam = max_ntk_eigenvalue(arch.apply_fn, params, jnp.asarray(x), iterations=300, trainable=[last])
    assert lam == pytest.approx(np.linalg.eigvalsh(theta)[-1], rel=1e-9)


@pytest.mark.parametrize("optimizer,ridge", [("curveball", 0.0), ("curveball", 0.3), ("gd", 0.3)])
def test_readout_only_is_kernel_regression_with_its_group_kernel(rng, optimizer, ridge):
    # f is linear in the read-out (W, b): training only that group (centred) is exactly kernel
    # (ridge) regression with Θ_readout at initialisation, for any width
    x, y = _data(rng, 10)
    xt = rng.normal(size=(7, 3))
    arch = get_architecture("mlp-erf-2", output_dim=2, width=32)
    _, params = arch.init_fn(jax.random.key(0), (-1, 3))
    last = parameter_groups(params)[-1]
    kern = _group_kernels(arch.apply_fn, params, x, xt, {"body": [1, 3], last: [5]})
    ref = _krr(kern[last], y, ridge)
    res = train_mlft(arch, [(x, y)], FitOptions(optimizer=optimizer, trainable=[last], ridge=ridge, max_steps=6000,
                                                rtol=1e-15, lr_factor=0.95, chunk=100), x_test=xt, y_test=ref)
    np.testing.assert_allclose(res.test_predictions, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())
    ref_full = _krr([a + b for a, b in zip(kern[last], kern["body"])], y, ridge)
    assert relative_mse(ref_full, ref) > 1e-3                       # the restriction matters
    for i, (new, old) in enumerate(zip(res.params, params)):        # frozen layers bitwise
        if i != 5:
            for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old)):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_two_level_readout_only_is_chained_regression_with_group_kernel(rng):
    x1, y1 = _data(rng, 9)
    x2, y2 = x1[:4], y1[:4] + 0.3 * np.cos(x1[:4, :2])
    xt = rng.normal(size=(6, 3))
    arch = get_architecture("mlp-relu-3", output_dim=2, width=24)
    _, params = arch.init_fn(jax.random.key(2), (-1, 3))
    custom = {"body": [1, 3, 5], "readout": [7]}                     # any resolve_groups spec
    ridge = 0.2
    z = np.concatenate([x1, x2, xt])
    theta = np.asarray(empirical_ntk_by_group(arch.apply_fn, params, jnp.asarray(z),
                                              groups=custom)["readout"])
    index = {z[i].tobytes(): i for i in range(len(z))}

    def kernel_fn(a, b=None, get=None):                 # Θ_readout on rows of z (mlft_predict's calls)
        ia = [index[r.tobytes()] for r in np.asarray(a)]
        ib = ia if b is None else [index[r.tobytes()] for r in np.asarray(b)]
        return theta[np.ix_(ia, ib)]
    ref = mlft_predict(kernel_fn, [x1, x2], [y1, y2], xt, ridge=ridge)
    res = train_mlft(arch, [(x1, y1), (x2, y2)],
                     FitOptions(optimizer="curveball", trainable=["readout"], groups=custom, ridge=ridge,
                                max_steps=3000, rtol=1e-15, chunk=100), x_test=xt, y_test=ref, seed=2)
    np.testing.assert_allclose(res.test_predictions, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())


@pytest.mark.slow  # ~7 s
def test_wide_hidden_layer_only_approaches_its_group_kernel_regression(rng):
    # a hidden layer's Θ_g changes during training, by O(1/sqrt(width)): the trained net is
    # close to kernel regression with Θ_g at initialisation, much closer than with the full Θ
    x, y = _data(rng, 8, k=1)
    xt = rng.normal(size=(12, 3))
    arch = get_architecture("mlp-erf-2", output_dim=1, width=1024)
    _, params = arch.init_fn(jax.random.key(3), (-1, 3))
    group = "layer_03_Dense"
    kern = _group_kernels(arch.apply_fn, params, x, xt, {"rest": [1, 5], group: [3]})
    ref = _krr(kern[group], y)
    ref_full = _krr([a + b for a, b in zip(kern[group], kern["rest"])], y)
    res = train_mlft(arch, [(x, y)], FitOptions(optimizer="curveball", trainable=[group], max_steps=400, rtol=0.0,
                                                atol=1e-14, chunk=10), x_test=xt, y_test=ref, seed=3)
    assert res.levels[0].losses[-1] < 1e-12 * res.levels[0].losses[0]        # interpolates
    assert res.test_error < 1e-3
    assert relative_mse(ref_full, ref) > 30 * res.test_error
