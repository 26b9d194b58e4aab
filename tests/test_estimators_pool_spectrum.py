"""PoolSpectrum / dense_pool_spectrum: the spectrum reconstructs the normalised kernel, the
derived fields match their definitions, bad input is named."""

import numpy as np
import pytest

from ntk_mlft.estimators import PoolSpectrum, dense_pool_spectrum


@pytest.mark.parametrize("normalize", ["diagonal", "none"])
def test_dense_spectrum_reconstructs_kernel(normalize):
    rng = np.random.default_rng(3)
    for _ in range(3):                                   # random pools, dimensions, scales
        n, d = rng.integers(20, 60), rng.integers(1, 6)
        x = rng.normal(size=(n, d)) * rng.uniform(0.3, 3, size=d)
        k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / 2) * (1 + (x ** 2).sum(1))[:, None] \
            * (1 + (x ** 2).sum(1))[None]                # non-constant diagonal
        n_p = int(rng.integers(1, n))
        s = dense_pool_spectrum(k, n_p, normalize=normalize)
        omega = np.diag(k) / np.diag(k).mean() if normalize == "diagonal" else np.ones(n)
        k_hat = k / np.sqrt(np.outer(omega, omega))
        np.testing.assert_allclose((s.basis * (s.eta * n)) @ s.basis.T, k_hat,
                                   atol=1e-10 * np.abs(k_hat).max())
        assert np.all(np.diff(s.eta) <= 0) and s.size == n and s.rank == n
        np.testing.assert_allclose(s.omega, omega, rtol=1e-13)
        np.testing.assert_allclose(s.phi, np.sqrt(n) * s.basis[:n_p], rtol=1e-13)
        np.testing.assert_allclose(s.w_modes, s.basis.T @ np.diag(omega) @ s.basis, atol=1e-12)
        assert s.inv_mean == pytest.approx(np.mean(1 / omega))
        hats = np.abs(rng.normal(size=(4, n)))           # self terms against their definition
        brute = np.stack([hats @ (s.w_modes * np.outer(p, p)) @ hats.T for p in s.phi])
        np.testing.assert_allclose(s.self_terms(s.phi, hats), brute, atol=1e-9 * np.abs(brute).max())


def test_pool_spectrum_bad_input():
    k = np.eye(5)
    with pytest.raises(ValueError, match="normalize"):
        dense_pool_spectrum(k, 2, normalize="bogus")
    with pytest.raises(ValueError, match="positive semi-definite"):
        dense_pool_spectrum(k - 2 * np.eye(5), 2)
    with pytest.raises(ValueError, match="n_pilot"):
        dense_pool_spectrum(k, 0)
    with pytest.raises(ValueError, match="omega"):
        PoolSpectrum(np.ones(5), np.eye(5), np.ones(4), 2, "none")
