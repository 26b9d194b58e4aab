"""Per-layer re-training predictions vs brute force: kernels from full Jacobians, KRR vs the primal fit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntk_mlft.transfer.layer_retraining import retrain, sgs_metrics, spectrum
from ntk_mlft.transfer.layers import (
    _krr_error,
    centre_value,
    centred_points,
    group_kernels,
    predict_layer_errors,
    resolve_layer_sets,
    sgs_cnn,
)


def _net(dims=1, grid=8):
    init, apply, _ = sgs_cnn(dims, depth=3, width=4, kernel=3)
    _, params = init(jax.random.key(1), (1,) + (grid,) * dims + (1,))
    return apply, params


def _jacobian_rows(apply, params, x, snap, pos, group_leaves):
    """Brute force: d f(x_snap)[pos] / d (leaves of the group), one row per point (one jacrev)."""
    leaves, treedef = jax.tree.flatten(params)

    def out(sub):
        full = list(leaves)
        for j, v in zip(group_leaves, sub):
            full[j] = v
        return apply(jax.tree.unflatten(treedef, full), x)

    jac = jax.jacrev(out)([leaves[j] for j in group_leaves])      # list of (n, *grid, 1, *leaf)
    rows = []
    for i, p in zip(snap, pos):
        rows.append(np.concatenate([np.ravel(g[(i, *p, 0)]) for g in jac]))
    return np.stack(rows)


@pytest.mark.parametrize("dims", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_group_kernels_equal_brute_force_jacobians_at_any_position(dims):
    apply, params = _net(dims, grid=6)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, *(6,) * dims, 1))
    snap = np.array([0, 0, 1, 2])
    pos = rng.integers(0, 6, size=(4, dims))
    block = 4 if dims == 1 else 3                        # the slow 2-D case also exercises the blocks
    kernels = group_kernels(apply, params, centred_points(x, snap, pos), block=block)
    from ntk_mlft.empirical import resolve_groups
    for name, members in resolve_groups(params).items():
        j = _jacobian_rows(apply, params, jnp.asarray(x), snap, pos, members)
        np.testing.assert_allclose(kernels[name], j @ j.T, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # ~12 s
def test_krr_prediction_equals_the_primal_ridge_fit_of_the_linearised_layer():
    apply, params = _net()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 8, 1))
    snap = np.repeat(np.arange(4), 5)
    pos = rng.integers(0, 8, size=(20, 1))
    r = rng.standard_normal(20)
    y = r + 0.5 * rng.standard_normal(20)
    tr, te = np.arange(12), np.arange(12, 20)
    from ntk_mlft.empirical import resolve_groups
    name, members = list(resolve_groups(params).items())[1]
    k = group_kernels(apply, params, centred_points(x, snap, pos))[name]
    j = _jacobian_rows(apply, params, jnp.asarray(x), snap, pos, members)
    lam = 1e-2 * np.mean(np.diag(k[np.ix_(tr, tr)]))
    delta = np.linalg.solve(j[tr].T @ j[tr] + lam * np.eye(j.shape[1]), j[tr].T @ r[tr])   # primal
    expected = np.sum((r[te] - j[te] @ delta) ** 2) / np.sum(y[te] ** 2)
    assert _krr_error(k, tr, te, r, y, 1e-2) == pytest.approx(expected, rel=1e-8)


def test_centre_value_and_points_agree_with_rolling():
    x = np.arange(2 * 6 * 6).reshape(2, 6, 6, 1).astype(float)
    pts = centred_points(x, np.array([1]), np.array([[4, 1]]))
    assert pts[0, 3, 3, 0] == x[1, 4, 1, 0]
    assert centre_value(x, np.array([1]), np.array([[4, 1]]))[0] == x[1, 4, 1, 0]


@pytest.mark.slow  # ~11 s
def test_prediction_recovers_a_change_of_the_linear_output_layer():
    """The output layer enters linearly: targets made by perturbing it are fitted exactly by re-training it
    alone (predicted error ~ 0), not by re-training the first layer."""
    apply, params = _net()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 8, 1))
    moved = list(params)
    moved[-1] = jax.tree.map(lambda w: w + 0.3 * jnp.asarray(rng.standard_normal(w.shape)), params[-1])
    y = np.asarray(apply(tuple(moved), jnp.asarray(x)))
    pred = predict_layer_errors(apply, params, x, y, [0, -1], n_train=6, positions=8, n_test=4,
                                test_positions=8, n_boot=2, ridge=1e-9)
    assert pred.errors.shape == (2, 2)
    assert np.all(pred.errors[:, 1] < 1e-6)
    assert np.all(pred.errors[:, 0] > 100 * pred.errors[:, 1])
    assert np.all(pred.no_retraining > 1e-3)
    assert list(pred.best_probability) == [0.0, 1.0]
    assert pred.to_dict()["sets"] == ["layer_00_Conv", "layer_04_Conv"]


def test_bad_layer_sets_list_the_groups():
    _, params = _net()
    with pytest.raises(ValueError, match=r"unknown layer 'conv9'.*layer_00_Conv"):
        resolve_layer_sets(params, ["conv9"])
    with pytest.raises(ValueError, match=r"index 3 is out of range.*3 groups"):
        resolve_layer_sets(params, [3])
    with pytest.raises(ValueError, match="nothing is trainable"):
        resolve_layer_sets(params, [()])


def test_retrain_moves_only_the_chosen_layer():
    apply, params = _net()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 8, 1))
    new = retrain(apply, params, x, np.roll(x, 1, axis=1), ["layer_02_Conv"], steps=5)
    for i, (a, b) in enumerate(zip(params, new)):
        same = all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
        assert same == (i != 2)


def test_metrics_parseval_and_perfect_prediction():
    rng = np.random.default_rng(4)
    t = rng.standard_normal((3, 8, 8, 1))
    assert spectrum(t[..., 0]).sum() == pytest.approx(np.mean(t ** 2), rel=1e-12)
    m = sgs_metrics(t, t)
    assert m == {"rel_mse": 0.0, "corr": pytest.approx(1.0), "spectrum_error": 0.0}
    assert sgs_metrics(2 * t, t)["spectrum_error"] == pytest.approx(3.0)   # power x4: corr misses it
