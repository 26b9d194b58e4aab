"""The periodic transfer testbeds: exact Fourier solves against manufactured solutions (closed-form
derivatives, randomized family), input distributions, psi, Helmholtz redraws, bad input, caching."""

import numpy as np
import pytest

from ntk_mlft.problems import generate, get_problem
from ntk_mlft.problems._periodic import N_COEF, join_inputs, solve_periodic, split_inputs
from ntk_mlft.problems.periodic_systems import _diffusion_ratio, advection_diffusion_ratio

SYSTEMS = ("poisson-aniso-2d", "advdiff-2d", "helmholtz-2d", "transfer-mixture")


def _manufactured(rng, n, n_modes=6, max_k=10, reaction=True):
    """Random trig polynomial u, coefficients and f = L u from closed-form derivatives."""
    x = np.arange(n) / n
    xx, yy = np.meshgrid(x, x, indexing="ij")
    a = rng.normal(size=(2, 2))
    d = 0.01 * (a @ a.T + 0.1 * np.eye(2))
    b = rng.normal(size=2)
    c = rng.uniform(0.1, 3.0) if reaction else 0.0
    u = np.zeros((n, n))
    f = np.zeros((n, n))
    for _ in range(n_modes):
        k = rng.integers(-max_k, max_k + 1, size=2)
        if not k.any() and not reaction:
            continue
        amp, phase = rng.normal(), rng.uniform(0, 2 * np.pi)
        theta = 2 * np.pi * (k[0] * xx + k[1] * yy) + phase
        u += amp * np.cos(theta)
        f += amp * (4 * np.pi ** 2 * (k @ d @ k) * np.cos(theta) - 2 * np.pi * (b @ k) * np.sin(theta)
                    - c * np.cos(theta))
    coef = np.array([d[0, 0], d[0, 1], d[1, 1], b[0], b[1], c])
    return f, coef, u


@pytest.mark.parametrize("reaction", [True, False])
def test_fourier_solve_is_exact_for_band_limited_data(reaction):
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(20):                                   # randomized family of operators and solutions
        f, coef, u = _manufactured(rng, 32, reaction=reaction)
        got = solve_periodic(f[None], coef[None], 32, 32)[0]
        errors.append(np.max(np.abs(got - u)) / np.max(np.abs(u)))
        # finer solve grid (zero-padded spectrum) and a finer output grid give the same function
        fine = solve_periodic(f[None], coef[None], 64, 64)[0]
        errors.append(np.max(np.abs(fine[::2, ::2] - u)) / np.max(np.abs(u)))
    assert max(errors) < 1e-12, (np.median(errors), np.percentile(errors, 90), max(errors))


def test_truncated_level_drops_only_modes_beyond_its_nyquist():
    rng = np.random.default_rng(1)
    f, coef, u = _manufactured(rng, 32, max_k=15)
    low = solve_periodic(f[None], coef[None], 8, 32)[0]       # keeps |k_i| <= 3
    spec_u = np.fft.fft2(u) / u.size
    k = np.fft.fftfreq(32, 1 / 32)
    keep = (np.abs(k)[:, None] <= 3) & (np.abs(k)[None, :] <= 3)
    expected = np.fft.ifft2(np.where(keep, spec_u, 0) * u.size).real
    np.testing.assert_allclose(low, expected, atol=1e-12 * np.abs(u).max())


@pytest.mark.parametrize("name", SYSTEMS)
def test_default_hierarchy_shapes_and_grid_levels_agree(name):
    p = get_problem(name, levels=2, n_coarse=64, n_input=128, n_output=64)
    x = p.sample_inputs(np.random.default_rng(2), 8)
    assert x.shape == (8, 128 * 128 + N_COEF)
    y1, y2 = p.solve(x, 1), p.solve(x, 2)
    assert y1.shape == (8, 64, 64)
    # the source's Fourier tail beyond the 64^2 Nyquist frequency is below 1e-8 relative
    assert np.max(np.abs(y2 - y1)) < 1e-8 * np.max(np.abs(y2))
    assert get_problem(name).grid(1) == 64 and get_problem(name).n_levels == 1


def test_sources_and_poisson_tensor_distribution():
    p = get_problem("poisson-aniso-2d", range=(2.0, 3.0))
    f, coef = split_inputs(p.sample_inputs(np.random.default_rng(3), 200), 64)
    np.testing.assert_allclose(f.mean(axis=(1, 2)), 0, atol=1e-14)
    assert np.all(coef[:, 3:] == 0)
    k = coef[:, [0, 1, 1, 2]].reshape(-1, 2, 2) / 0.01
    ev = np.linalg.eigvalsh(k)
    np.testing.assert_allclose(ev[:, 0], 1.0, rtol=1e-12)
    assert np.all((ev[:, 1] >= 2.0 - 1e-12) & (ev[:, 1] <= 3.0 + 1e-12))
    h = get_problem("helmholtz-2d")
    fh, _ = split_inputs(h.sample_inputs(np.random.default_rng(4), 50), 64)
    np.testing.assert_allclose(np.abs(fh).max(axis=(1, 2)), 1.0)   # max-normalised, mean kept


def test_advdiff_psi_is_the_documented_term_ratio():
    p = get_problem("advdiff-2d", range=(0.5, 0.7))
    x = p.sample_inputs(np.random.default_rng(5), 100)
    f, coef = split_inputs(x, 64)
    lam = np.hypot(coef[:, 3], coef[:, 4])                   # |lam v| = lam
    k_entries = coef[:, :3] / (0.01 * (1 - lam[:, None]))
    psi = lam / (1 - lam) * _diffusion_ratio(f, k_entries, coef[:, 3:5] / lam[:, None])
    assert np.all((psi > 0.5 - 1e-9) & (psi < 0.7 + 1e-9))
    actual = advection_diffusion_ratio(x, 64)                 # on u instead of u0: smaller, same order
    assert np.all(actual > 0.1) and np.all(actual < 1.0)


def test_helmholtz_redraws_near_resonant_samples_and_counts_them():
    p = get_problem("helmholtz-2d", range=(1, 10))
    x, redrawn = p.sample_counting_redraws(np.random.default_rng(6), 100)
    omega = x[:, -1]
    assert set(np.unique(omega)) <= set(range(1, 11)) and redrawn > 0
    assert np.max(np.abs(p.solve(x, 1))) <= 2.0 + 1e-12
    with pytest.raises(ValueError, match="resonant"):
        get_problem("helmholtz-2d", max_amplitude=1e-6, max_redraws=5).sample_inputs(np.random.default_rng(0), 2)


@pytest.mark.parametrize("name, kwargs, match", [
    ("poisson-aniso-2d", dict(range=(5.0, 1.0)), "inverted"),
    ("poisson-aniso-2d", dict(range=(2.0, 2.0)), "empty"),
    ("advdiff-2d", dict(range=(float("nan"), 1.0)), "finite"),
    ("advdiff-2d", dict(range=(-1.0, 1.0)), r"lie in \[0"),
    ("helmholtz-2d", dict(range=(1.5, 4.0)), "integer"),
    ("poisson-aniso-2d", dict(range=3.0), "pair"),
    ("transfer-mixture", dict(weights=(1.0, -1.0, 1.0)), "weights"),
    ("transfer-mixture", dict(helmholtz_range=(4.0, 2.0)), "inverted"),
])
def test_bad_ranges_are_refused(name, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        get_problem(name, **kwargs)


def test_mixture_draws_every_system_with_its_range():
    p = get_problem("transfer-mixture", n_input=32, n_output=32)
    _, coef = split_inputs(p.sample_inputs(np.random.default_rng(7), 90), 32)
    helm = coef[:, 5] > 0
    adv = np.hypot(coef[:, 3], coef[:, 4]) > 0
    assert helm.sum() > 15 and adv.sum() > 15 and (~helm & ~adv).sum() > 15
    assert np.all(coef[helm, 5] <= 10)


def test_generate_caches_and_prefixes(tmp_path):
    p = get_problem("poisson-aniso-2d", n_input=32, n_output=16)
    a = generate(p, [40], seed=0, cache_dir=tmp_path)
    b = generate(p, [40], seed=0, cache_dir=tmp_path)
    c = generate(p, [20], seed=0)
    np.testing.assert_array_equal(a.outputs[0], b.outputs[0])
    np.testing.assert_array_equal(a.inputs[0][:20], c.inputs[0])
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_join_split_round_trip_and_shape_error():
    rng = np.random.default_rng(8)
    f, coef = rng.normal(size=(3, 8, 8)), rng.normal(size=(3, N_COEF))
    f2, c2 = split_inputs(join_inputs(f, coef), 8)
    np.testing.assert_array_equal(f2, f) and np.testing.assert_array_equal(c2, coef)
    with pytest.raises(ValueError, match="entries per sample"):
        split_inputs(np.zeros((2, 10)), 8)
