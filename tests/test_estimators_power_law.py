"""Power-law fits: exact recovery on synthetic curves; fitted error models from the spectral
estimator with their fit quality."""

import numpy as np
import pytest

from ntk_mlft.estimators.base import PowerLawErrorModel
from ntk_mlft.estimators.power_law import fit_error_model, fit_power_law
from ntk_mlft.estimators.spectral import SpectralEstimator


def test_recovers_exact_power_law():
    ns = np.geomspace(10, 2000, 15)
    fit = fit_power_law(ns, 3.0 * ns ** -0.7 + 0.01)
    assert fit.coef == pytest.approx(3.0, rel=1e-5)
    assert fit.exponent == pytest.approx(0.7, rel=1e-5)
    assert fit.floor == pytest.approx(0.01, rel=1e-4)
    assert fit.max_rel < 1e-6
    nofloor = fit_power_law(ns, 2.0 / ns, with_floor=False)
    assert nofloor.exponent == pytest.approx(1.0, rel=1e-8) and nofloor.floor == 0.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="> 0"):
        fit_power_law([1, 2, 3], [1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="equal length"):
        fit_power_law([1, 2, 3], [1.0, 0.5])


def test_fit_error_model_from_spectral(rng):
    """Fits of the spectral per-level curves; the reported fit quality is recomputed here from the
    fitted parameters (max and RMS relative deviation on the curve, and the separable model vs
    the full estimator at the documented random allocations)."""
    x = rng.normal(size=(300, 5))
    k = np.exp(-0.1 * ((x[:, None] - x[None]) ** 2).sum(-1))
    base = np.sin(x[:, 0]) + 0.5 * x[:, 1] ** 2
    u = np.stack([base + 0.3 * np.cos(2 * x[:, 2]), base + 0.1 * np.sin(3 * x[:, 3]), base])
    est = SpectralEstimator.from_kernel(k, u, ridge=1e-3)
    ns = np.geomspace(10, 60, 8).round()
    model, fits, quality = fit_error_model(est, ns, n_check=50, seed=3)
    assert isinstance(model, PowerLawErrorModel) and model.n_levels == 3
    for lvl, f in enumerate(fits, start=1):
        curve = est.level_curve(lvl, ns)
        rel = (f.floor + f.coef * ns ** -f.exponent) / curve - 1
        assert f.max_rel == pytest.approx(np.max(np.abs(rel)), rel=1e-9)
        assert f.rel_rms == pytest.approx(np.sqrt(np.mean(rel ** 2)), rel=1e-9)
    assert fits[0].rel_rms < 0.1                    # the dominant level is close to a power law
    draw = np.random.default_rng(3)
    counts = np.round(np.exp(draw.uniform(np.log(10), np.log(60), (50, 3))))
    rel = model.error_many(counts) / est.error_many(counts) - 1
    assert quality["rel_rms"] == pytest.approx(np.sqrt(np.mean(rel ** 2)), rel=1e-9)
    assert quality["max_rel"] == pytest.approx(np.max(np.abs(rel)), rel=1e-9)
