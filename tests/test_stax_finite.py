"""Monte-Carlo: the empirical NTK (Jacobian contraction written here with ``jax.jacrev``) and
the output covariance of wide random networks built from the same ``init_fn``/``apply_fn``
converge to the analytic kernels, with relative error falling roughly like width^-1/2."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ntk_mlft import stax


def _empirical_ntk_fn(init_fn, apply_fn, x):
    """seed -> Theta(x, x) = sum_params J J^T for the scalar output of one random network
    (init and Jacobian each compiled once, reused across seeds)."""
    init = jax.jit(lambda key: init_fn(key, x.shape)[1])
    jac_fn = jax.jit(jax.jacrev(lambda p: apply_fn(p, x)[:, 0]))

    def ntk(seed):
        leaves = jax.tree.leaves(jac_fn(init(jax.random.key(seed))))
        flat = [np.asarray(j).reshape(x.shape[0], -1) for j in leaves]
        return sum(j @ j.T for j in flat)

    return ntk


def _relative_errors(make, widths, x, seeds=3):
    errs = []
    for width in widths:
        init_fn, apply_fn, kernel_fn = make(width)
        ntk = np.asarray(kernel_fn(x, get="ntk"))
        empirical = _empirical_ntk_fn(init_fn, apply_fn, x)
        e = [np.linalg.norm(empirical(s) - ntk) / np.linalg.norm(ntk) for s in range(seeds)]
        errs.append(float(np.mean(e)))
    return errs


def _assert_converges(errs, widths, bound):
    """Error at the largest width is small and fell by at least half the sqrt(width) ratio."""
    ratio = np.sqrt(widths[-1] / widths[0])
    assert errs[-1] < bound, errs
    assert errs[0] / errs[-1] > ratio / 2, (errs, ratio)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_mlp_empirical_ntk_converges(rng, parameterization):
    x = rng.normal(size=(4, 3))

    def make(width):
        return stax.serial(
            stax.Dense(width, 1.5, 0.2, parameterization=parameterization), stax.Relu(),
            stax.Dense(width, 1.5, 0.2, parameterization=parameterization), stax.Erf(),
            stax.Dense(1, 1.0, 0.1, parameterization=parameterization))

    widths = [64, 1024]
    _assert_converges(_relative_errors(make, widths, x), widths, bound=0.08)


@pytest.mark.parametrize("readout, parameterization, bound", [
    ("Flatten", "ntk", 0.12), pytest.param("GlobalAvgPool", "ntk", 0.12, marks=pytest.mark.slow),
    pytest.param("GlobalAvgPool", "standard", 0.16, marks=pytest.mark.slow)])
def test_cnn_empirical_ntk_converges(rng, readout, parameterization, bound):
    x = rng.normal(size=(3, 8, 2))
    p = parameterization

    def make(width):
        return stax.serial(
            stax.Conv(width, (3,), padding="CIRCULAR", W_std=1.5, b_std=0.2, parameterization=p),
            stax.Relu(),
            stax.Conv(width, (3,), strides=(2,), padding="SAME", W_std=1.5, b_std=0.1,
                      parameterization=p),
            stax.Gelu(), getattr(stax, readout)(), stax.Dense(1, b_std=0.1, parameterization=p))

    widths = [16, 256]
    _assert_converges(_relative_errors(make, widths, x), widths, bound=bound)


def test_residual_block_empirical_ntk_converges(rng):
    x = rng.normal(size=(4, 3))

    def make(width):
        block = stax.serial(stax.FanOut(2),
                            stax.parallel(stax.serial(stax.Relu(), stax.Dense(width, 1.2, 0.1)),
                                          stax.Identity()),
                            stax.FanInSum())
        return stax.serial(stax.Dense(width, 1.0, 0.1), block, stax.Abs(), stax.Dense(1))

    widths = [64, 1024]
    _assert_converges(_relative_errors(make, widths, x), widths, bound=0.08)


def test_nngp_is_covariance_of_random_outputs(rng):
    """Outputs of many random wide Sin/LeakyRelu networks have covariance -> NNGP."""
    x = rng.normal(size=(3, 4))
    init_fn, apply_fn, kernel_fn = stax.serial(
        stax.Dense(512, 1.3, 0.2), stax.Sin(), stax.Dense(512, 1.3), stax.LeakyRelu(0.1),
        stax.Dense(256))
    samples = []
    for seed in range(8):
        _, params = init_fn(jax.random.key(seed), x.shape)
        samples.append(np.asarray(apply_fn(params, x)))
    f = np.concatenate(samples, axis=1)
    emp = f @ f.T / f.shape[1]
    nngp = np.asarray(kernel_fn(x, get="nngp"))
    assert np.linalg.norm(emp - nngp) / np.linalg.norm(nngp) < 0.1
