"""``ntk_mlft.kernels._atan.atan2`` against ``numpy.arctan2`` (independent libm oracle)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ntk_mlft.kernels._atan import atan2


@pytest.mark.parametrize("scale", [1e-12, 1e-4, 1.0, 1e4, 1e12])
def test_matches_numpy_over_magnitudes_and_signs(scale):
    rng = np.random.default_rng(int(np.log10(scale)) + 20)
    y = rng.standard_normal(200_000) * scale
    x = rng.standard_normal(200_000)
    got = np.asarray(jax.jit(atan2)(y, x))
    ref = np.arctan2(y, x)
    assert got.dtype == np.float64
    assert np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)) <= 4e-16 * 4


def test_reduction_boundaries_and_axes():
    a = np.concatenate([np.linspace(0.0, 1.0, 100_001), [0.66, np.nextafter(0.66, 1)]])
    np.testing.assert_allclose(np.asarray(atan2(a, np.ones_like(a))), np.arctan(a),
                               rtol=4e-16, atol=0)
    pts = [(0.0, 1.0), (0.0, -1.0), (1.0, 0.0), (-1.0, 0.0), (0.0, 0.0), (1.0, 1.0),
           (-1.0, -1.0), (1.0, -1.0), (-3.0, 2.0)]
    for y, x in pts:
        assert float(atan2(np.float64(y), np.float64(x))) == pytest.approx(np.arctan2(y, x),
                                                                          rel=1e-15, abs=0)


def test_float32_stays_float32_and_accurate():
    rng = np.random.default_rng(3)
    y, x = rng.standard_normal((2, 50_000)).astype(np.float32)
    got = np.asarray(atan2(jax.numpy.asarray(y, np.float32), jax.numpy.asarray(x, np.float32)))
    assert got.dtype == np.float32
    assert np.max(np.abs(got - np.arctan2(y.astype(float), x.astype(float)))) <= 1e-6
