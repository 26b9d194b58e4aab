"""CurveBall against dense matrices (independent oracle), brute force, and np.linalg.lstsq."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from ntk_mlft.optim import curveball, mse_loss, quadratic_model


def _tiny_model(params, x):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"]


def _tiny_params(rng):
    return {"w1": jnp.asarray(rng.normal(size=(3, 4))), "b1": jnp.asarray(rng.normal(size=(4,))),
            "w2": jnp.asarray(rng.normal(size=(4, 2)))}


def _softplus_loss(y, t):
    # a non-quadratic convex loss in the outputs: exercises the generic H_L path
    return jnp.mean(jnp.logaddexp(0.0, y - t) + 0.3 * (y - t) ** 2)


def _dense_pieces(params, z, loss, x, t):
    """Dense J (n_out, P), H_L (n_out, n_out), g (n_out,) via jacfwd / jax.hessian."""
    flat, unravel = ravel_pytree(params)
    y0 = _tiny_model(params, x)
    jac = np.asarray(jax.jacfwd(lambda w: _tiny_model(unravel(w), x).ravel())(flat))

    def lossf(yv):
        return loss(yv.reshape(y0.shape), t)
    h = np.asarray(jax.hessian(lossf)(y0.ravel()))
    g = np.asarray(jax.grad(lossf)(y0.ravel()))
    zf = np.asarray(ravel_pytree(z)[0])
    return jac, h, g, zf, unravel


@pytest.mark.parametrize("loss", ["mse", _softplus_loss])
def test_delta_z_and_system_match_dense_ggn(rng, loss):
    params = _tiny_params(rng)
    x = jnp.asarray(rng.normal(size=(5, 3)))
    t = jnp.asarray(rng.normal(size=(5, 2)))
    z = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
    lam = 0.7
    dense_loss = mse_loss if loss == "mse" else loss
    jac, h, g, zf, _ = _dense_pieces(params, z, dense_loss, x, t)
    qm = quadratic_model(_tiny_model, loss, params, z, lam, (x, t))
    ggn = jac.T @ h @ jac
    dz_ref = ggn @ zf + lam * zf + jac.T @ g
    dz = np.asarray(ravel_pytree(qm.delta_z)[0])
    np.testing.assert_allclose(dz, dz_ref, rtol=1e-10, atol=1e-12)
    basis = np.stack([dz_ref, zf], axis=1)          # columns Δz, z
    a_ref = basis.T @ (ggn + lam * np.eye(len(zf))) @ basis
    b_ref = basis.T @ jac.T @ g
    np.testing.assert_allclose(np.asarray(qm.a), a_ref, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(qm.b), b_ref, rtol=1e-10)
    assert float(qm.loss) == pytest.approx(float(dense_loss(_tiny_model(params, x), t)), rel=1e-12)


def test_proximal_term_matches_dense_and_solves_ridge_regression(rng):
    params = _tiny_params(rng)
    anchor = jax.tree.map(lambda p: p + 0.2 * jnp.asarray(rng.normal(size=p.shape)), params)
    x = jnp.asarray(rng.normal(size=(5, 3)))
    t = jnp.asarray(rng.normal(size=(5, 2)))
    z = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
    lam, mu = 0.7, 0.4
    jac, h, g, zf, _ = _dense_pieces(params, z, mse_loss, x, t)
    shift = np.asarray(ravel_pytree(params)[0] - ravel_pytree(anchor)[0])
    qm = quadratic_model(_tiny_model, "mse", params, z, lam, (x, t), mu, anchor)
    curv = jac.T @ h @ jac + (lam + mu) * np.eye(len(zf))       # GGN + damping + proximal Hessian
    grad = jac.T @ g + mu * shift                                # gradient of L + mu/2 |w - a|^2
    dz_ref = curv @ zf + grad
    np.testing.assert_allclose(np.asarray(ravel_pytree(qm.delta_z)[0]), dz_ref, rtol=1e-10, atol=1e-12)
    basis = np.stack([dz_ref, zf], axis=1)
    np.testing.assert_allclose(np.asarray(qm.a), basis.T @ curv @ basis, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(qm.b), basis.T @ grad, rtol=1e-10)
    loss_ref = float(mse_loss(_tiny_model(params, x), t)) + 0.5 * mu * float(shift @ shift)
    assert float(qm.loss) == pytest.approx(loss_ref, rel=1e-12)
    # linear model: the optimum of mean((Xw - y)^2) + mu/2 |w - w0|^2 is ridge regression
    xl, yl = rng.normal(size=(8, 12)), rng.normal(size=(8, 1))        # under-determined: ridge matters
    w0 = rng.normal(size=(12, 1))
    n = yl.size
    w_ref = w0 + np.linalg.solve(2 * xl.T @ xl / n + mu * np.eye(12), 2 * xl.T @ (yl - xl @ w0) / n)
    init, update = curveball(lambda w, xx: xx @ w, "mse", lambda_init=0.1, l2=mu)
    step = jax.jit(update)
    w, state = jnp.asarray(w0), init(jnp.asarray(w0))
    for _ in range(80):
        w, state, _ = step(w, state, (jnp.asarray(xl), jnp.asarray(yl)))
    np.testing.assert_allclose(np.asarray(w), w_ref, rtol=1e-8, atol=1e-10)


def test_rho_beta_minimise_quadratic_model_brute_force(rng):
    params = _tiny_params(rng)
    x = jnp.asarray(rng.normal(size=(6, 3)))
    t = jnp.asarray(rng.normal(size=(6, 2)))
    lam = 0.3
    init, update = curveball(_tiny_model, "mse", lambda_init=lam, auto_lambda=False)
    state = init(params)
    state = state._replace(z=jax.tree.map(lambda p: 0.1 * jnp.asarray(rng.normal(size=p.shape)), params))
    jac, h, g, zf, _ = _dense_pieces(params, state.z, mse_loss, x, t)
    ggn_damped = jac.T @ h @ jac + lam * np.eye(len(zf))
    qm = quadratic_model(_tiny_model, "mse", params, state.z, lam, (x, t))
    dz = np.asarray(ravel_pytree(qm.delta_z)[0])

    def model(rho, beta):
        s = rho * zf - beta * dz
        return g @ (jac @ s) + 0.5 * s @ ggn_damped @ s

    _, _, info = update(params, state, (x, t))
    rho, beta = float(info.rho), float(info.beta)
    best = model(rho, beta)
    assert float(info.predicted_change) == pytest.approx(best, rel=1e-9)
    # brute force: a grid around (rho, beta) at several scales never goes lower
    for scale in (1e-3, 1e-1, 1.0):
        for dr, db in itertools.product(np.linspace(-scale, scale, 11), repeat=2):
            assert model(rho + dr, beta + db) >= best - 1e-12 * abs(best)


def test_first_step_with_zero_z_is_finite_and_optimum_is_fixed_point(rng):
    params = _tiny_params(rng)
    x = jnp.asarray(rng.normal(size=(4, 3)))
    t = _tiny_model(params, x)                      # already at a zero-loss optimum
    init, update = curveball(_tiny_model, "mse")
    state = init(params)
    new_params, new_state, info = update(params, state, (x, t))   # A == 0 entirely
    for a, b in zip(jax.tree.leaves(new_params), jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    t2 = t + 1.0                                    # z = 0: singular A, only β determined
    _, s2, info2 = update(params, state, (x, t2))
    assert np.isfinite(float(info2.beta)) and float(info2.rho) == 0.0
    assert float(info2.predicted_change) < 0


def test_converges_to_lstsq_solution(rng):
    x = rng.normal(size=(40, 6))
    y = rng.normal(size=(40, 2))
    w_ref = np.linalg.lstsq(x, y, rcond=None)[0]
    init, update = curveball(lambda w, xx: xx @ w, "mse", lambda_init=1.0)
    step = jax.jit(update)
    w = jnp.zeros((6, 2))
    state = init(w)
    for _ in range(60):
        w, state, info = step(w, state, (jnp.asarray(x), jnp.asarray(y)))
    np.testing.assert_allclose(np.asarray(w), w_ref, rtol=1e-8, atol=1e-10)


def test_lambda_adapts_and_is_jittable(rng):
    # a nonlinear model with a non-quadratic loss: the model's prediction is inexact, λ moves by ω^{±1}
    init, update = curveball(_tiny_model, _softplus_loss, lambda_init=10.0, lambda_interval=1)
    params = _tiny_params(rng)
    x = jnp.asarray(rng.normal(size=(8, 3)))
    t = jnp.asarray(rng.normal(size=(8, 2)))
    step = jax.jit(update)
    state = init(params)
    lams, losses = [], []
    for _ in range(30):
        params, state, info = step(params, state, (x, t))
        lams.append(float(state.lam))
        losses.append(float(info.loss))
    assert len(set(lams)) > 1                        # λ actually adapts
    assert losses[-1] < losses[0]
    omega = 0.999
    ratios = np.asarray(lams[1:]) / np.asarray(lams[:-1])
    assert np.all(np.isclose(ratios, 1.0) | np.isclose(ratios, omega) | np.isclose(ratios, 1 / omega))


def _rosenbrock_residuals(w, scale):
    return jnp.stack([10.0 * scale * (w[1] - w[0] ** 2), 1.0 - w[0]])


def _sum_sq(y, t):
    return jnp.sum((y - t) ** 2)


def test_lambda_rule_at_default_interval():
    # every 5th step (count 0, 5, 10, ...) λ follows the ratio r = (actual change)/(predicted
    # change), computed here independently from the loss at the returned params; never in between
    init, update = curveball(_rosenbrock_residuals, _sum_sq, lambda_init=1.0)
    omega = 0.999 ** 5
    batch = (1.0, jnp.zeros(2))
    w = jnp.array([-1.5, 2.0])
    state = init(w)
    step = jax.jit(update)
    branches = set()
    for i in range(40):
        new_w, new_state, info = step(w, state, batch)
        assert int(state.count) == i and float(info.lam) == float(state.lam)
        lam = float(state.lam)
        if i % 5:
            expected, branch = lam, "between"
        else:
            actual = float(_sum_sq(_rosenbrock_residuals(new_w, 1.0), 0.0)) - float(info.loss)
            pred = float(info.predicted_change)
            r = actual / pred if pred < 0 else 1.0
            expected, branch = ((lam / omega, "up") if r < 0.5 else (lam * omega, "down") if r > 1.5
                                else (lam, "keep"))
        assert float(new_state.lam) == pytest.approx(expected, rel=1e-12), (i, branch)
        branches.add(branch)
        w, state = new_w, new_state
    assert branches == {"between", "up", "down", "keep"}              # every branch exercised
    assert float(_sum_sq(_rosenbrock_residuals(w, 1.0), 0.0)) < 1e-8    # and it converges


def test_optax_transformation_in_chain_follows_curveball(rng):
    import optax

    from ntk_mlft.optim import curveball_transformation

    params = _tiny_params(rng)
    batch = (jnp.asarray(rng.normal(size=(6, 3))), jnp.asarray(rng.normal(size=(6, 2))))
    init, update = curveball(_tiny_model, "mse", lambda_init=0.5)
    tx = optax.chain(curveball_transformation(_tiny_model, "mse", lambda_init=0.5), optax.scale(1.0))
    p_ref, s_ref = params, init(params)
    p_tx, s_tx = params, tx.init(params)
    for _ in range(5):
        p_ref, s_ref, _ = update(p_ref, s_ref, batch)
        step, s_tx = tx.update(p_tx, s_tx, p_tx, batch=batch)
        p_tx = optax.apply_updates(p_tx, step)
    for a, b in zip(jax.tree.leaves(p_tx), jax.tree.leaves(p_ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-15)
    assert float(s_tx[0].lam) == float(s_ref.lam)
    single = curveball_transformation(_tiny_model)
    with pytest.raises(ValueError, match="needs params"):
        single.update(params, single.init(params), batch=batch)
    with pytest.raises(ValueError, match="needs batch"):
        single.update(params, single.init(params), params)


def test_bad_arguments():
    with pytest.raises(ValueError, match="loss_fn must be"):
        curveball(_tiny_model, "mae")
    with pytest.raises(TypeError, match="model_fn must be callable"):
        curveball(3, "mse")
    with pytest.raises(ValueError, match="lambda_factor must be in"):
        curveball(_tiny_model, lambda_factor=1.5)
    with pytest.raises(ValueError, match="lambda_high must exceed"):
        curveball(_tiny_model, lambda_low=2.0, lambda_high=1.0)
    with pytest.raises(ValueError, match="lambda_init must be finite"):
        curveball(_tiny_model, lambda_init=-1.0)
