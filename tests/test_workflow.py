"""workflow: the practical pilot + unlabeled construction of a built-in problem (cap
``sample_cap`` of the pool, ridge relative to the NTK diagonal over the union, the
exact-eigenfunction path with k_pp, fresh-input target by default), the pilot file path, the
cap rule, and the independent unlabeled input stream."""

import numpy as np
import pytest

from ntk_mlft.architectures import get_architecture
from ntk_mlft.estimators.pilot import Pilot, PilotEstimator
from ntk_mlft.problems import get_problem
from ntk_mlft.studies.error_model import (MAX_COVERAGE, estimator_from_pilot, estimator_from_pilot_file, pilot_from_problem,
                               pilot_kernel,
                               practical_estimator_from_problem, sample_cap, unlabeled_inputs)

COUNTS = np.array([[0, 10], [30, 10], [60, 40]])


@pytest.fixture(scope="module")
def problem():
    return get_problem("elliptic-rough", levels=2, n_input=64, n_coarse=32, n_output=16)


@pytest.fixture(scope="module")
def kernel_fn():
    return get_architecture("mlp-relu-3", output_dim=16).kernel_fn


def test_practical_estimator_from_problem(problem, kernel_fn):
    setup = practical_estimator_from_problem(problem, "mlp-relu-3", 1e-3, n_pilot=30,
                                             n_unlabeled=120, seed=4, n_boot=4)
    assert setup.n_pilot == 30 and setup.n_unlabeled == 120 and setup.max_samples == 30
    assert setup.model.pool_size == 150 and setup.model.n_levels == 2
    pilot = setup.pilot
    ref = pilot_from_problem(problem, 30, seed=4)                    # the paired solves
    np.testing.assert_array_equal(pilot.x, ref.x)
    np.testing.assert_array_equal(pilot.ys, ref.ys)
    np.testing.assert_array_equal(pilot.x_unlabeled, unlabeled_inputs(problem, 120, seed=4))
    union = np.concatenate([pilot.x, pilot.x_unlabeled])
    lam = 1e-3 * float(np.mean(np.diag(np.asarray(kernel_fn(union, None, get="ntk")))))
    assert setup.ridge == pytest.approx(lam, rel=1e-10)
    direct = PilotEstimator.from_pilot(kernel_fn, pilot, ridge=lam, n_boot=4, seed=4)
    np.testing.assert_allclose(setup.model.error_many(COUNTS), direct.error_many(COUNTS), rtol=1e-10)
    fresh, pool = setup.model.error_many(COUNTS), setup.model.error_many(COUNTS, target="pool")
    assert np.all(fresh > pool)                                       # the training atoms removed
    with pytest.raises(ValueError, match="pool size 150"):
        setup.model.error([200, 10])


def test_pilot_file_path_uses_the_pilot_kernel(problem, kernel_fn):
    """With x_unlabeled the file path builds the exact-eigenfunction estimator (k_pp given), and
    reports its pool n_p + m for the cap (as the problem path does); without, the spectral estimator on the pilot inputs (size n_p)."""
    base = pilot_from_problem(problem, 24, seed=1)
    pilot = Pilot(base.x, base.ys, unlabeled_inputs(problem, 60, seed=1))
    model, size = estimator_from_pilot_file(pilot, "mlp-relu-3", 1e-3, seed=2)
    assert isinstance(model, PilotEstimator) and size == model.pool_size == 84
    union = np.concatenate([pilot.x, pilot.x_unlabeled])
    lam = 1e-3 * float(np.mean(np.diag(np.asarray(kernel_fn(union, None, get="ntk")))))
    direct = PilotEstimator.from_pilot(kernel_fn, pilot, ridge=lam, n_boot=30, seed=2)
    np.testing.assert_allclose(model.error_many(COUNTS[:2]), direct.error_many(COUNTS[:2]), rtol=1e-10)
    spectral, size = estimator_from_pilot_file(base, "mlp-relu-3", 1e-3)
    assert size == 24 and spectral.pool_size == 24


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
        practical_estimator_from_problem(problem, "mlp-relu-3", 1e-3, n_pilot=0)
    with pytest.raises(ValueError, match="ridge"):
        practical_estimator_from_problem(problem, "mlp-relu-3", -1.0, n_pilot=12, n_unlabeled=20)


def test_estimator_kernels_are_float64_even_with_x64_off():
    """The pilot kernel is computed in float64 inside ``jax.enable_x64`` whatever the global flag
    (a float32 NTK is asymmetric at ~1e-3 and the estimators reject it): same matrix either way."""
    import jax

    x = np.random.default_rng(3).normal(size=(30, 8))
    ys = [np.sin(x[:, :1]), np.sin(x[:, :1]) + 0.1 * x[:, 1:2]]
    k64, t64 = pilot_kernel(x, ys, "mlp-relu-3")
    with jax.enable_x64(False):
        k, targets = pilot_kernel(x, ys, "mlp-relu-3")
        model = estimator_from_pilot(x, ys, "mlp-relu-3", 1e-3)
        kernel_fn = get_architecture("mlp-relu-3", output_dim=1).kernel_fn
        pilot = Pilot(x[:10], np.stack(ys)[:, :10], x[10:])
        direct = PilotEstimator.from_pilot(kernel_fn, pilot, ridge=1.0, n_boot=5, seed=0)
    assert k.dtype == np.float64 and np.max(np.abs(k - k.T)) <= 1e-13 * np.max(np.abs(k))
    np.testing.assert_allclose(k, k64, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(targets, t64)
    np.testing.assert_allclose(model.error([10, 5]), estimator_from_pilot(x, ys, "mlp-relu-3", 1e-3).error([10, 5]),
                               rtol=1e-12)
    again = PilotEstimator.from_pilot(kernel_fn, pilot, ridge=1.0, n_boot=5, seed=0)  # x64 on
    np.testing.assert_allclose(direct.error_many([[4, 2]]), again.error_many([[4, 2]]), rtol=1e-12)
