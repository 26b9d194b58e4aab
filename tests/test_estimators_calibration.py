"""Surrogate calibration and the self-check against the Monte-Carlo reference.

Kernel: the ReLU NTK recursion in numpy (independent of ``stax``), on unit-circle inputs
(d = 2, near ridge-less: where the diagonal deterministic equivalent under-predicts the error
several-fold, docs/theory.md section 9) and on Gaussian inputs in d = 32 (where it is right).
Measured on these pools (64 MC trials, s.e. 7-18 % on the circle, 3-4 % in d = 32), rows ROWS:
circle raw closed form 0.51, 0.21, 0.44 x MC, calibrated 0.88, 0.65, 0.90 x MC; d = 32 raw 1.05,
1.05, 1.00 and calibrated 1.05, 1.07, 1.01 x MC."""

import numpy as np
import pytest

from ntk_mlft.estimators.calibration import PoolModes, calibrate
from ntk_mlft.estimators.montecarlo import montecarlo_error
from ntk_mlft.estimators.selfcheck import SelfCheck, pilot_warnings, self_check


def relu_ntk(x, depth=1):
    """NTK of a ReLU MLP (W_std^2 = 2, b_std^2 = 0.01, NTK parameterisation) by the
    arc-cosine recursion."""
    s = x @ x.T / x.shape[1] + 0.01
    q = np.diag(s).copy()
    theta = s.copy()
    for _ in range(depth):
        norm = np.sqrt(np.outer(q, q))
        c = np.clip(s / norm, -1, 1)
        t = np.arccos(c)
        s = norm * (np.sin(t) + (np.pi - t) * c) / np.pi + 0.01
        theta = theta * (np.pi - t) / np.pi + s
        q = np.diag(s).copy()
    return theta


def _problem(d, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x = x / np.linalg.norm(x, axis=1, keepdims=True) if d == 2 else x / np.sqrt(d)
    fine = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2
    coarse = fine + 0.3 * np.sin(6 * x[:, 1])
    return relu_ntk(x), np.stack([coarse, fine])[:, :, None]


ROWS = np.array([[40, 20], [0, 30], [20, 15]])


@pytest.fixture(scope="module")
def circle():
    k, u = _problem(2, 300)
    ridge = 1e-6 * np.trace(k) / 300
    modes = PoolModes.from_kernel(k)
    mc = montecarlo_error(k, u, ROWS, ridge=ridge, n_trials=64, seed=3, sets="disjoint")
    return k, u, ridge, modes, mc


def test_calibration_moves_toward_monte_carlo_where_the_closed_form_fails(circle):
    k, u, ridge, modes, mc = circle
    est = modes.spectral(u, ridge, 0.0)
    cal = calibrate(est, modes, modes.coefficients(u), ROWS, ridge=ridge, n_draws=6, seed=1)
    raw = cal.model / mc.fresh_mean
    fixed = cal.corrected / mc.fresh_mean
    assert np.all(raw < 0.6)                   # the failure the calibration exists for
    assert np.all(np.abs(np.log(fixed)) < 0.5 * np.abs(np.log(raw)))
    assert np.all(cal.corrected_stderr > 0) and cal.n_draws == 6


def test_self_check_flags_a_wrong_model_with_the_numbers(circle):
    k, u, ridge, modes, mc = circle
    est = modes.spectral(u, ridge, 0.0)
    check = self_check(est, modes, modes.coefficients(u), ROWS, ridge=ridge, seed=2)
    assert isinstance(check, SelfCheck)
    assert not check.agrees and not check.ok
    assert any(f"{check.model[0]:.4g}" in w and f"{check.checked[0]:.4g}" in w
               for w in check.warnings)
    text = "\n".join(check.render())
    assert "WARNING" in text and "single level" in text
    assert check.as_dict()["agrees"] is False


def test_self_check_passes_where_the_closed_form_holds():
    k, u = _problem(32, 250, seed=1)
    ridge = 1e-3 * np.trace(k) / 250
    modes = PoolModes.from_kernel(k)
    est = modes.spectral(u, ridge, 0.0)
    check = self_check(est, modes, modes.coefficients(u), ROWS, ridge=ridge, seed=4)
    mc = montecarlo_error(k, u, ROWS, ridge=ridge, n_trials=32, seed=5, sets="disjoint")
    assert np.all(np.abs(check.model / mc.fresh_mean - 1) < 0.1)
    assert check.agrees, check.render()


def test_pilot_warnings_name_the_diagnostic_and_the_remedy():
    assert pilot_warnings([5, 8], [0.1, 0.2]) == ()
    w = pilot_warnings([1, 8, 1, 3], [0.06, 0.83, 0.1, 0.79])
    assert "level(s) [1, 3]" in w[0] and "pilot pairs" in w[0]
    assert "level(s) [2, 4]" in w[1] and "unlabeled" in w[1]


def test_bad_input_is_named(circle):
    k, u, ridge, modes, _ = circle
    est = modes.spectral(u, ridge, 0.0)
    with pytest.raises(ValueError, match="n_draws"):
        calibrate(est, modes, modes.coefficients(u), ROWS, ridge=ridge, n_draws=1)
    with pytest.raises(ValueError, match="coefs"):
        calibrate(est, modes, modes.coefficients(u)[:, :10], ROWS, ridge=ridge)
    with pytest.raises(ValueError, match="tolerance"):
        self_check(est, modes, modes.coefficients(u), ROWS, ridge=ridge, tolerance=0)
    with pytest.raises(ValueError, match="rows"):
        self_check(est, modes, modes.coefficients(u), ROWS[:2], ridge=ridge)
