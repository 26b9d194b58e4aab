"""studies.error_model: ``build_error_model`` on the pilot + unlabeled inputs of a built-in problem
(cap ``sample_cap`` of the pool, ridge relative to the NTK diagonal over the union, the
exact-eigenfunction path with k_pp, fresh-input target by default, the kernel kept once), the
pilot-only path, the cap rule, and the independent unlabeled input stream."""

import numpy as np
import pytest

from ntk_mlft.architectures import get_architecture
from ntk_mlft.estimators.pilot import Pilot, PilotEstimator
from ntk_mlft.problems import get_problem
from ntk_mlft.studies.error_model import (
    MAX_COVERAGE,
    ErrorModelSetup,
    build_error_model,
    pilot_from_problem,
    sample_cap,
    unlabeled_inputs,
)

COUNTS = np.array([[0, 10], [30, 10], [60, 40]])


@pytest.fixture(scope="module")
def problem():
    return get_problem("elliptic-rough", levels=2, n_input=64, n_coarse=32, n_output=16)


@pytest.fixture(scope="module")
def kernel_fn():
    return get_architecture("mlp-relu-3", output_dim=16).kernel_fn


def test_build_error_model_from_a_problem(problem, kernel_fn):
    pilot = pilot_from_problem(problem, 30, seed=4, n_unlabeled=120)
    setup = build_error_model(pilot, "mlp-relu-3", 1e-3, seed=4, n_boot=4)
    assert isinstance(setup, ErrorModelSetup)
    assert setup.n_pilot == 30 and setup.n_unlabeled == 120 and setup.max_samples == 30
    assert setup.pool_size == 150 and setup.kernel.shape == (150, 150) and setup.kernel.dtype == np.float64
    assert setup.model.pool_size == 150 and setup.model.n_levels == 2
    pilot = setup.pilot
    ref = pilot_from_problem(problem, 30, seed=4)                    # the paired solves
    np.testing.assert_array_equal(pilot.x, ref.x)
    np.testing.assert_array_equal(pilot.ys, ref.ys)
    np.testing.assert_array_equal(pilot.x_unlabeled, unlabeled_inputs(problem, 120, seed=4))
    union = np.concatenate([pilot.x, pilot.x_unlabeled])
    lam = 1e-3 * float(np.mean(np.diag(np.asarray(kernel_fn(union, None, get="ntk")))))
    assert setup.ridge_absolute == pytest.approx(lam, rel=1e-10) and setup.ridge_relative == 1e-3
    np.testing.assert_allclose(setup.kernel, np.asarray(kernel_fn(union, None, get="ntk")), rtol=1e-12)
    assert setup.diagnostics == setup.model.diagnostics()
    assert setup.coverage([30, 45]) == 0.5
    direct = PilotEstimator.from_pilot(kernel_fn, pilot, ridge=lam, n_boot=4, seed=4)
    np.testing.assert_allclose(setup.model.error_many(COUNTS), direct.error_many(COUNTS), rtol=1e-10)
    fresh, pool = setup.model.error_many(COUNTS), setup.model.error_many(COUNTS, target="pool")
    assert np.all(fresh > pool)                                       # the training atoms removed
    with pytest.raises(ValueError, match="pool size 150"):
        setup.model.error([200, 10])


def test_pilot_file_path_uses_the_pilot_kernel(problem, kernel_fn):
    """With x_unlabeled the file path builds the exact-eigenfunction estimator (k_pp given), and
    reports its pool n_p + m for the cap (as the problem path does); without, the spectral estimator on the pilot
    inputs (size n_p)."""
    base = pilot_from_problem(problem, 24, seed=1)
    pilot = Pilot(base.x, base.ys, unlabeled_inputs(problem, 60, seed=1))
    setup = build_error_model(pilot, "mlp-relu-3", 1e-3, seed=2)
    model, size = setup.model, setup.pool_size
    assert isinstance(model, PilotEstimator) and size == model.pool_size == 84
    union = np.concatenate([pilot.x, pilot.x_unlabeled])
    lam = 1e-3 * float(np.mean(np.diag(np.asarray(kernel_fn(union, None, get="ntk")))))
    direct = PilotEstimator.from_pilot(kernel_fn, pilot, ridge=lam, n_boot=30, seed=2)
    np.testing.assert_allclose(model.error_many(COUNTS[:2]), direct.error_many(COUNTS[:2]), rtol=1e-10)
    spectral = build_error_model(base, "mlp-relu-3", 1e-3)
    assert spectral.pool_size == 24 and spectral.model.pool_size == 24 and spectral.n_unlabeled == 0
    assert spectral.max_samples == sample_cap(24) and spectral.diagnostics == {}


def test_sample_cap():
    assert MAX_COVERAGE == 0.2
    assert sample_cap(150) == 30 and sample_cap(3120) == 624 and sample_cap(4) == 1
    for bad in (0, -3):
        with pytest.raises(ValueError, match="pool_size"):
            sample_cap(bad)
    with pytest.raises(TypeError, match="pool_size"):
        sample_cap(10.5)


def test_unlabeled_inputs_stream(problem):
    a = unlabeled_inputs(problem, 20, seed=0)
    np.testing.assert_array_equal(a, unlabeled_inputs(problem, 20, seed=0))
    assert not np.allclose(a, unlabeled_inputs(problem, 20, seed=1))
    pilot = pilot_from_problem(problem, 20, seed=0)
    assert not np.any(np.all(np.isclose(a[:, None], pilot.x[None]), axis=-1))
    with pytest.raises(ValueError, match="n_unlabeled"):
        unlabeled_inputs(problem, 0)
    with pytest.raises(ValueError, match="n_pilot"):
        pilot_from_problem(problem, 0)
    with pytest.raises(ValueError, match="ridge"):
        build_error_model(pilot_from_problem(problem, 12, n_unlabeled=20), "mlp-relu-3", -1.0)


def test_estimator_kernels_are_float64_even_with_x64_off():
    """The pilot kernel is computed in float64 inside ``jax.enable_x64`` whatever the global flag
    (a float32 NTK is asymmetric at ~1e-3 and the estimators reject it): same matrix either way."""
    import jax

    x = np.random.default_rng(3).normal(size=(30, 8))
    ys = [np.sin(x[:, :1]), np.sin(x[:, :1]) + 0.1 * x[:, 1:2]]
    pilot_only = Pilot(x, np.stack(ys))
    on = build_error_model(pilot_only, "mlp-relu-3", 1e-3)
    k64 = on.kernel
    with jax.enable_x64(False):
        off = build_error_model(pilot_only, "mlp-relu-3", 1e-3)
        k = off.kernel
        kernel_fn = get_architecture("mlp-relu-3", output_dim=1).kernel_fn
        pilot = Pilot(x[:10], np.stack(ys)[:, :10], x[10:])
        direct = PilotEstimator.from_pilot(kernel_fn, pilot, ridge=1.0, n_boot=5, seed=0)
    assert k.dtype == np.float64 and np.max(np.abs(k - k.T)) <= 1e-13 * np.max(np.abs(k))
    np.testing.assert_allclose(k, k64, rtol=1e-13, atol=0)
    np.testing.assert_allclose(off.model.error([10, 5]), on.model.error([10, 5]), rtol=1e-12)
    again = PilotEstimator.from_pilot(kernel_fn, pilot, ridge=1.0, n_boot=5, seed=0)  # x64 on
    np.testing.assert_allclose(direct.error_many([[4, 2]]), again.error_many([[4, 2]]), rtol=1e-12)
