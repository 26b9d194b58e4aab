"""The problem contract: registry, shapes, determinism, batch = rows solved alone, level
hierarchy, bad input, NaN reporting, input distributions. Level-difference rates at the default
hierarchies: tests/test_problems_rates.py."""

import pickle

import numpy as np
import pytest

from ntk_mlft.problems import (
    DEFAULT_PROBLEM,
    Problem,
    SolverError,
    available_problems,
    get_problem,
    problem_from_params,
)

# small hierarchies so the whole file runs in seconds
SMALL = {
    "elliptic-rough": dict(n_coarse=16, refinement=4, n_input=64, n_output=16),
    "schrodinger-ground-state": dict(n_coarse=64, refinement=2, n_input=64, n_output=16),
    "burgers-shock": dict(n_coarse=32, refinement=2, n_input=32, n_output=16, final_time=0.3),
    "helmholtz-oscillatory": dict(n_coarse=32, refinement=2, n_input=64, n_output=16, wavenumber=20.0),
    "darcy-2d": dict(n_coarse=8, refinement=2, n_input=16, n_output=8),
    **{name: dict(n_coarse=16, refinement=2, n_input=16, n_output=8, lattice=4, source_std=0.1)
       for name in ("poisson-aniso-2d", "advdiff-2d", "helmholtz-2d", "transfer-mixture")},
}


def test_registry_lists_the_problems_and_default():
    assert set(available_problems()) == set(SMALL)
    assert DEFAULT_PROBLEM == "elliptic-rough" and DEFAULT_PROBLEM in available_problems()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_contract_shapes_determinism_and_params(name):
    p = get_problem(name, levels=3, **SMALL[name])
    assert isinstance(p, Problem) and p.name == name and p.n_levels == 3
    assert [p.grid(lv) for lv in (1, 2, 3)] == [p.n_coarse * p.refinement ** k for k in range(3)]
    x = p.sample_inputs(np.random.default_rng(7), 3)
    assert x.shape == (3, *p.input_shape) and np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, p.sample_inputs(np.random.default_rng(7), 3))
    assert not np.allclose(x[0], x[1])
    for level in (1, 3):
        y = p.solve(x, level)
        assert y.shape == (3, *p.output_shape) and np.all(np.isfinite(y))
        for i in range(3):  # row i of a batch is bitwise sample i solved alone (chunking-independent data)
            np.testing.assert_array_equal(y[i:i + 1], p.solve(x[i:i + 1], level))
    q = problem_from_params(p.params)
    assert q == p and pickle.loads(pickle.dumps(p)) == p


def test_schrodinger_output_is_normalised_positive_ground_state():
    p = get_problem("schrodinger-ground-state", levels=2, **SMALL["schrodinger-ground-state"])
    x = p.sample_inputs(np.random.default_rng(0), 2)
    y = p.solve(x, 2)
    psi, energy = y[:, :-1], y[:, -1]
    np.testing.assert_allclose(np.mean(psi ** 2, axis=1), 1.0, rtol=0.05)  # output-grid quadrature
    assert np.all(psi > 0) and np.all(energy > x.min(axis=1))  # ground state positive; E_0 > min V


def test_darcy_default_hierarchy_and_values():
    p = get_problem("darcy-2d")
    assert [p.grid(lv) for lv in range(1, 5)] == [32, 64, 128, 256]
    x = p.sample_inputs(np.random.default_rng(0), 2)
    assert set(np.unique(x)) <= {3.0, 12.0}
    assert 0.2 < np.mean(x == 12.0) < 0.8


def test_unknown_problem_and_parameter():
    with pytest.raises(ValueError, match="available problems: elliptic-rough, "):
        get_problem("poisson")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['bogus'\].*allowed"):
        get_problem("darcy-2d", bogus=1)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(levels=0), ValueError, "levels must be >= 1"),
    (dict(levels=2.5), TypeError, "levels must be an integer"),
    (dict(refinement=1), ValueError, "refinement must be >= 2"),
    (dict(sigma=-1.0), ValueError, "sigma must be finite and > 0"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        get_problem("elliptic-rough", **kwargs)


def test_other_parameter_checks():
    with pytest.raises(ValueError, match="n_modes must be in 1..15"):
        get_problem("burgers-shock", n_input=32, n_modes=16)
    with pytest.raises(ValueError, match="depth_max must be >= depth_min"):
        get_problem("schrodinger-ground-state", depth_min=10.0, depth_max=5.0)
    with pytest.raises(ValueError, match="divide one another"):
        get_problem("darcy-2d", n_input=48)


def test_bad_level_inputs_and_counts():
    p = get_problem("elliptic-rough", levels=3, **SMALL["elliptic-rough"])
    x = p.sample_inputs(np.random.default_rng(0), 1)
    for level in (0, 4):
        with pytest.raises(ValueError, match=r"level must be in 1..3 for 'elliptic-rough'; got"):
            p.solve(x, level)
        with pytest.raises(ValueError, match="level must be in 1..3"):
            p.grid(level)
    with pytest.raises(TypeError, match="level must be an integer"):
        p.solve(x, 1.0)
    with pytest.raises(ValueError, match=r"inputs must have shape \(n, 64\)"):
        p.solve(np.ones((2, 65)), 1)
    with pytest.raises(ValueError, match="n must be >= 1"):
        p.sample_inputs(np.random.default_rng(0), 0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        p.sample_inputs(0, 1)


def test_nan_from_solver_names_the_sample():
    p = get_problem("elliptic-rough", levels=2, **SMALL["elliptic-rough"])
    x = p.sample_inputs(np.random.default_rng(0), 3)
    x[2, 5] = -1.0  # log of a negative coefficient: the solver produces NaN
    with pytest.raises(SolverError, match="sample 2 at level 1") as info:
        p.solve(x, 1)
    assert info.value.index == 2 and isinstance(info.value, ValueError)


# ----- input distributions: Monte-Carlo checks against the documented laws ----------------------
M = 4000  # samples; standard error of a correlation/variance estimate ~ 1/sqrt(M) ~ 0.016


def test_elliptic_log_coefficient_is_ornstein_uhlenbeck():
    p = get_problem("elliptic-rough", n_input=41, correlation_length=0.1, sigma=0.7)
    g = np.log(p.sample_inputs(np.random.default_rng(0), M))
    np.testing.assert_allclose(g.mean(axis=0), 0.0, atol=0.06)
    np.testing.assert_allclose(g.std(axis=0), 0.7, rtol=0.06)
    for lag in (1, 4, 10):  # corr(g(x), g(x + lag dx)) = exp(-lag dx / l), dx = 1/40
        r = np.corrcoef(g[:, 15], g[:, 15 + lag])[0, 1]
        assert abs(r - np.exp(-lag / 40 / 0.1)) < 0.06


def test_burgers_and_helmholtz_pointwise_variances():
    b = get_problem("burgers-shock", n_input=16, n_modes=3, amplitude=0.5)
    u0 = b.sample_inputs(np.random.default_rng(1), M)
    # Var u0(x) = amplitude^2 sum_k (cos^2 + sin^2) / k^2, the same at every x
    np.testing.assert_allclose(u0.var(axis=0), 0.25 * (1 + 1 / 4 + 1 / 9), rtol=0.1)
    h = get_problem("helmholtz-oscillatory", n_input=16, contrast=0.3)
    g = np.log(h.sample_inputs(np.random.default_rng(2), M)) / 0.3
    np.testing.assert_allclose(g.std(axis=0), 1.0, rtol=0.06)  # normalised to unit variance


def test_darcy_phases_balanced_in_expectation():
    p = get_problem("darcy-2d", n_input=16, levels=1, n_coarse=16)
    a = p.sample_inputs(np.random.default_rng(3), 400)
    assert abs(np.mean(a == 12.0) - 0.5) < 0.05  # mean-zero symmetric field: P(psi >= 0) = 1/2


def test_integer_and_scalar_parameter_types():
    with pytest.raises(TypeError, match="n_wells must be an integer"):
        get_problem("schrodinger-ground-state", n_wells=2.0)
    with pytest.raises(ValueError, match="n_modes must be >= 1"):
        get_problem("helmholtz-oscillatory", n_modes=0)
    with pytest.raises(ValueError, match="viscosity must be finite and >= 0"):
        get_problem("burgers-shock", viscosity=-1e-3)
    assert get_problem("burgers-shock", viscosity=0.0).viscosity == 0.0
