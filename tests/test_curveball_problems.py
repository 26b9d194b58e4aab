"""CurveBall on the paper's toy problems (Henriques et al. 2019; benchmarks/curveball.py has the
full comparison): noisy Rosenbrock, where it succeeds in a few dozen steps while SGD + momentum
and Adam fail at every learning rate of a log grid, and the degenerate 2-layer linear net, whose
1e-5-scaled direction it resolves exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ntk_mlft.optim import curveball

STEPS = 40
LRS = jnp.logspace(-5, 0, 11)


def _resid(w, eps):
    return jnp.stack([10.0 * eps * (w[1] - w[0] ** 2), 1.0 - w[0]])


def _sq(y, t):
    return jnp.sum((y - t) ** 2)


def _start_and_noise(seed):
    k0, k1 = jax.random.split(jax.random.key(seed))
    return jnp.array([-0.25, -0.25]) + jax.random.uniform(k0, (2,)) - 0.5, jax.random.uniform(k1, (STEPS,))


def _best_clean_loss(make_step):
    """Lowest noise-free loss of each run, shape (learning rates, seeds 0..4): ``make_step(lr)``
    gives ``(init, step)`` for a (traced) learning rate; one compile for the whole grid."""
    def run(lr, w0, eps):
        init, step = make_step(lr)

        def body(carry, e):
            w, s = step(*carry, e)
            return (w, s), _sq(_resid(w, 1.0), 0.0)
        return jnp.min(jax.lax.scan(body, (w0, init(w0)), eps)[1])
    starts, noise = map(jnp.stack, zip(*(_start_and_noise(s) for s in range(5))))
    per_seed = jax.vmap(run, in_axes=(None, 0, 0))
    return np.asarray(jax.jit(jax.vmap(per_seed, in_axes=(0, None, None)))(LRS, starts, noise))


def _curveball_step(_):
    init, update = curveball(_resid, _sq, lambda_init=1.0)

    def step(w, s, eps):
        w, s, _ = update(w, s, (eps, jnp.zeros(2)))
        return w, s
    return init, step


def _optax_step(make):
    def make_step(lr):
        tx = make(lr)

        def step(w, s, eps):
            upd, s = tx.update(jax.grad(lambda w: _sq(_resid(w, eps), 0.0))(w), s, w)
            return optax.apply_updates(w, upd), s
        return tx.init, step
    return make_step


def test_noisy_rosenbrock_curveball_succeeds_where_tuned_first_order_fails():
    assert np.all(_best_clean_loss(_curveball_step)[0] < 1e-4)          # every seed, untuned λ₀
    for name, make in (("sgd", lambda lr: optax.sgd(lr, momentum=0.9)), ("adam", optax.adam)):
        best = _best_clean_loss(_optax_step(make))
        assert np.all(np.isnan(best) | (best > 1e-4)), (name, best.min(axis=1))  # no lr, no seed
        start = float(_sq(_resid(jnp.array([-0.25, -0.25]), 1.0), 0.0))
        assert np.nanmin(best) < 0.5 * start                              # but they do descend


def test_degenerate_linear_net_recovers_the_tiny_direction():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(1000, 6)))
    a = np.linspace(1.0, 1e-5, 10)[:, None] * rng.uniform(size=(10, 6))
    y = x @ a.T
    params = {"w1": jnp.asarray(2.0 / 16 * rng.normal(size=(6, 10))),
              "w2": jnp.asarray(1.0 / 10 * rng.normal(size=(10, 10)))}

    def model(p, xx):
        return xx @ p["w1"] @ p["w2"]

    def loss(yy, t):
        return jnp.mean(jnp.sum((yy - t) ** 2, axis=1))

    init, update = curveball(model, loss, lambda_init=1.0)

    @jax.jit
    def run(p):
        def body(carry, _):
            p, s, _ = update(*carry, (x, y))
            return (p, s), None
        return jax.lax.scan(body, (p, init(p)), None, length=1000)[0][0]

    trained = run(params)
    prod = np.asarray(trained["w1"] @ trained["w2"])                    # = Aᵀ at the optimum
    assert float(loss(model(params, x), y)) > 1.0                        # started far away
    col_err = np.linalg.norm(prod - a.T, axis=0) / np.linalg.norm(a.T, axis=0)
    assert col_err[-1] < 1e-6                                            # the 1e-5-scaled row of A
    assert np.all(col_err < 1e-6)
