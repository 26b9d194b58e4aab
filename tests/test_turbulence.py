"""SGS testbeds: 2-D vorticity solver and 1-D Burgers against closed forms, SGS sign checks, cache, errors."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from ntk_mlft.problems._base import SolverError
from ntk_mlft.problems._vorticity import (
    Grid,
    coarse_grain,
    energy_spectrum,
    filter_spectral,
    jacobian_hat,
    linear_factor,
    run_segment,
    stream_hat,
)
from ntk_mlft.problems.burgers_sgs import burgers_run
from ntk_mlft.problems.sgs import get_sgs_system


def _mesh(n):
    x = np.arange(n) * 2 * np.pi / n
    return np.meshgrid(x, x, indexing="ij")


def _hat(f):
    return jnp.fft.rfft2(f, norm="forward")


def test_jacobian_matches_closed_form():
    n = 32
    X, Y = _mesh(n)
    psi = np.sin(X) * np.cos(2 * Y)
    w = np.cos(3 * X) * np.sin(Y)
    # J = psi_y w_x - psi_x w_y
    exact = (-2 * np.sin(X) * np.sin(2 * Y)) * (-3 * np.sin(3 * X) * np.sin(Y)) \
        - (np.cos(X) * np.cos(2 * Y)) * (np.cos(3 * X) * np.cos(Y))
    got = np.fft.irfft2(np.asarray(jacobian_hat(_hat(psi), _hat(w), Grid(n))), s=(n, n), norm="forward")
    np.testing.assert_allclose(got, exact, atol=1e-12)
    # streamfunction: omega = -Lap psi
    np.testing.assert_allclose(np.fft.irfft2(np.asarray(stream_hat(_hat(5 * psi), Grid(n))), s=(n, n),
                                             norm="forward"), psi, atol=1e-12)


def test_taylor_green_decays_at_the_viscous_rate():
    n, nu, t_end, kx, ky = 32, 0.05, 1.0, 2, 3
    X, Y = _mesh(n)
    w0 = np.sin(kx * X) * np.sin(ky * Y) * (kx ** 2 + ky ** 2)   # J(psi, omega) = 0 (omega = k^2 psi)
    k2 = kx ** 2 + ky ** 2
    errs = []
    for dt in (0.05, 0.025):
        steps = round(t_end / dt)
        w, _, ok = run_segment(_hat(w0), Grid(n), steps, dt, nu, 0.0, jnp.zeros((n, n // 2 + 1), complex))
        w = np.fft.irfft2(np.asarray(w), s=(n, n), norm="forward")
        # the scheme's own factor: to round-off (the nonlinear term of Taylor-Green vanishes)
        np.testing.assert_allclose(w, w0 * linear_factor(k2, dt, nu, 0.0) ** steps, atol=1e-12 * np.abs(w0).max())
        errs.append(np.abs(w - w0 * np.exp(-nu * k2 * t_end)).max() / np.abs(w0).max())
        assert bool(np.all(ok))
    assert errs[0] < 1e-4
    assert 3.5 < errs[0] / errs[1] < 4.5            # second order in dt


def test_filter_and_coarse_grain_of_one_mode():
    n, n_les = 64, 16
    X, Y = _mesh(n)
    f = np.cos(3 * X + 2 * Y)
    delta = 4 * np.pi / n_les
    got = np.asarray(coarse_grain(filter_spectral(_hat(f), Grid(n), n_les), n, n_les))
    Xl, Yl = _mesh(n_les)
    np.testing.assert_allclose(got, np.exp(-13 * delta ** 2 / 24) * np.cos(3 * Xl + 2 * Yl), atol=1e-13)


def test_energy_spectrum_sums_to_the_energy():
    n = 32
    X, Y = _mesh(n)
    psi = np.sin(X) * np.cos(2 * Y) + 0.3 * np.cos(4 * X + Y)
    w = 5 * np.sin(X) * np.cos(2 * Y) + 0.3 * 17 * np.cos(4 * X + Y)
    ks, e = energy_spectrum(_hat(w), Grid(n))
    energy = 0.5 * np.mean(psi * w)                       # E = <|u|^2>/2 = <psi omega>/2
    assert e.sum() == pytest.approx(energy, rel=1e-12)
    assert e[int(np.argmax(e))] > 0 and ks[int(np.argmax(e))] == 2


def test_burgers_matches_cole_hopf():
    n, nu, a, t_end = 128, 0.1, 2.0, 1.0
    x = np.arange(n) * 2 * np.pi / n

    def exact(t):
        return 2 * nu * np.exp(-nu * t) * np.sin(x) / (a + np.exp(-nu * t) * np.cos(x))

    errs = []
    for dt in (0.02, 0.01):
        uh, _, ok = burgers_run(jnp.fft.rfft(exact(0.0), norm="forward")[None], n, int(t_end / dt), dt, nu)
        errs.append(np.abs(np.fft.irfft(np.asarray(uh[0]), n=n, norm="forward") - exact(t_end)).max())
        assert bool(np.all(ok))
    assert errs[1] < 2e-8
    assert 3.5 < errs[0] / errs[1] < 4.5


def test_burgers_sgs_transfers_energy_forward():
    system = get_sgs_system("burgers-sgs-1d", n_dns=256, dt=0.004)
    data = system.generate(24, seed=0)
    assert data.inputs.shape == (24, 32, 1) and data.targets.shape == (24, 32, 1)
    transfer = np.mean(data.inputs[..., 0] * data.targets[..., 0], axis=1)   # <u_bar Pi> per sample
    assert transfer.mean() > 5 * transfer.std(ddof=1) / np.sqrt(transfer.size)


def _small_2d(**kw):
    params = {"n_dns": 48, "n_les": 12, "nu": 5e-3, "dt": 0.01, "spinup": 4.0, "interval": 0.5}
    return get_sgs_system("turbulence-sgs-2d", **{**params, **kw})


def test_2d_sgs_transfers_enstrophy_forward():
    data = _small_2d().generate(12, seed=0)
    psi, w, pi = data.inputs[..., 0], data.inputs[..., 1], data.targets[..., 0]
    enstrophy = np.mean(w * pi, axis=(1, 2))              # <omega_bar Pi> > 0: forward enstrophy cascade
    assert enstrophy.mean() > 5 * enstrophy.std(ddof=1) / np.sqrt(enstrophy.size)
    assert np.mean(psi * pi) < 0                          # backscatter of energy (reported, weaker)


def test_cache_key_covers_the_solver_module():
    from ntk_mlft.problems import _vorticity
    from ntk_mlft.problems.fingerprint import code_digest

    system = _small_2d()
    assert _vorticity.coarse_grain in system.solver_functions()
    assert code_digest(type(system), run_segment.__wrapped__) != code_digest(type(system))


def test_2d_cache_resumes_and_extends(tmp_path):
    system = _small_2d(spinup=1.0)
    full = system.generate(6, seed=3, chunk=2)
    first = system.generate(4, seed=3, cache_dir=tmp_path, chunk=2)
    np.testing.assert_array_equal(first.inputs, full.inputs[:4])
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 2
    files[1].write_bytes(b"corrupt")                      # regenerated from chunk 0's cached state
    again = system.generate(6, seed=3, cache_dir=tmp_path, chunk=2)
    np.testing.assert_array_equal(again.inputs, full.inputs)
    np.testing.assert_array_equal(again.targets, full.targets)
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_cfl_violation_and_nan_name_the_step():
    with pytest.raises(SolverError, match=r"CFL number .* at time step \d+ .*spin-up.*lower dt"):
        _small_2d(dt=0.2, spinup=1.0).generate(1, seed=0)
    system = _small_2d()
    bad = np.full((48, 25), np.nan, dtype=complex)
    with pytest.raises(SolverError, match=r"NaN/inf at time step 7 .*snapshot 2"):
        system.advance(bad, 3, first_step=7, snapshot=2)
    with pytest.raises(SolverError, match=r"CFL number .* sample 0"):
        get_sgs_system("burgers-sgs-1d", n_dns=128, dt=0.2, t_end=0.4).generate(2, seed=0)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown SGS system"):
        get_sgs_system("turbulence")
    with pytest.raises(TypeError, match="unknown parameter"):
        get_sgs_system("turbulence-sgs-2d", reynolds=10)
    with pytest.raises(ValueError, match="n_les"):
        get_sgs_system("turbulence-sgs-2d", n_les=100)
    with pytest.raises(ValueError, match="k_f"):
        get_sgs_system("turbulence-sgs-2d", k_f=60)


@pytest.mark.slow
def test_default_2d_spectrum_slope_in_range():
    """Energy spectrum of the default base system between 2 k_f and the filter scale: slope in [-5.5, -3]
    (k^-3 enstrophy cascade, steepened by the linear drag; measured -4.76 at 128^2)."""
    system = get_sgs_system("turbulence-sgs-2d")
    w = system.advance(system.initial_state(0), int(system.spinup / system.dt), first_step=0, snapshot=None)
    spectra = []
    for i in range(10):
        w = system.advance(w, 100, first_step=0, snapshot=i)
        spectra.append(energy_spectrum(np.asarray(w), system.grid)[1])
    ks = np.arange(1, system.n_dns // 2)
    sel = (ks >= 2 * system.k_f) & (ks <= 20)
    slope = np.polyfit(np.log(ks[sel]), np.log(np.mean(spectra, axis=0)[sel]), 1)[0]
    assert -5.5 < slope < -3.0
