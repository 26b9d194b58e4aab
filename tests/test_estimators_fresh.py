"""The fresh-input step (``estimators.fresh``): membership moments against brute-force enumeration
of membership patterns, the inversion's round trip, the one-level closed form against an
independent kappa, and bad inputs. Its accuracy against Monte-Carlo is in
``test_estimators_spectral.py`` (same MC runs as the pool error)."""

import itertools

import numpy as np
import pytest
from scipy.optimize import brentq

from ntk_mlft.estimators.fresh import fresh_second_moments, membership_moments
from ntk_mlft.estimators.spectral import SpectralEstimator


def _enumerated(q, a):
    """E[b_j b_k^T] by summing over all 2^L membership patterns; b from the pointwise recursion
    e_k(x) = e_k^out(x) + delta_k(x) with delta_k = delta_{k-1} outside S_k and
    delta_k = (1 - a_k)(e_k^out + delta_{k-1}) + a_k eps_k - e_k^out inside (fresh module, step 2)."""
    n_levels = q.size
    size = 2 * n_levels
    out = np.zeros((n_levels, n_levels, size, size))
    for pattern in itertools.product((0, 1), repeat=n_levels):
        prob = np.prod(np.where(pattern, q, 1 - q))
        delta = np.zeros(size)
        b = []
        for k, inside in enumerate(pattern):
            e_out = np.eye(size)[k]
            if inside:
                delta = (1 - a[k]) * (e_out + delta) + a[k] * np.eye(size)[n_levels + k] - e_out
            b.append(e_out + delta)
        out += prob * np.einsum("ja,kb->jkab", np.array(b), np.array(b))
    return out


def test_membership_moments_match_enumeration(rng):
    q = rng.uniform(0, 0.6, size=(5, 4))
    a = rng.uniform(0.2, 1.0, size=(5, 4))
    q[1, 2] = 0.0                                                 # a skipped level
    got = membership_moments(q, a)
    for row in range(5):
        np.testing.assert_allclose(got[row], _enumerated(q[row], a[row]), rtol=1e-12, atol=1e-14)


def test_inversion_round_trip(rng):
    """Pool moments built from a known fresh G (and noise) by the enumerated moments are mapped
    back to G."""
    n_levels = 3
    q = rng.uniform(0.05, 0.4, size=(4, n_levels))
    a = rng.uniform(0.3, 1.0, size=(4, n_levels))
    noise = np.array([0.2, 0.05, 0.01])
    root = rng.normal(size=(4, n_levels, n_levels))
    g = root @ np.swapaxes(root, 1, 2) + 0.1 * np.eye(n_levels)
    aug = np.zeros((4, 2 * n_levels, 2 * n_levels))
    aug[:, :n_levels, :n_levels] = g
    aug[:, n_levels:, n_levels:] = np.diag(noise)
    pi = np.stack([np.einsum("jkab,ab->jk", _enumerated(q[r], a[r]), aug[r]) for r in range(4)])
    np.testing.assert_allclose(fresh_second_moments(pi, q, a, noise), g, rtol=1e-10)


def test_single_level_closed_form(rng):
    """One level: fresh = (pool - q a^2 sigma^2) / (1 - q a (2 - a)), a = 1 - lambda / kappa with
    kappa found here by bracketing; ridge-less and noiseless: fresh = pool / (1 - q)."""
    x = rng.normal(size=(120, 3))
    k = np.exp(-0.5 * ((x[:, None] - x[None]) ** 2).sum(-1))
    u = (np.sin(2 * x[:, 0]) + 0.3 * x[:, 1])[None, :, None]
    eta = np.maximum(np.linalg.eigvalsh(k), 0) / 120
    for lam, sig2 in ((0.05, 0.0), (0.3, 0.02), (0.0, 0.0)):
        est = SpectralEstimator.from_kernel(k, u, ridge=lam, noise=sig2, normalize="none", compress=0)
        for n in (10.0, 40.0):
            f = lambda kap: lam + kap * np.sum(eta / (n * eta + kap)) - kap    # noqa: E731
            kap = brentq(f, max(lam, 1e-12), lam + eta.sum() + 1.0, xtol=1e-15, rtol=1e-14)
            a, q = 1 - lam / kap, n / 120
            pool = est.error([n], target="pool")
            noise = q * a ** 2 * sig2 / np.mean(u ** 2)
            np.testing.assert_allclose(est.error([n]), (pool - noise) / (1 - q * a * (2 - a)), rtol=1e-8)
            if lam == 0:
                np.testing.assert_allclose(est.error([n]), pool / (1 - q), rtol=1e-8)


def test_no_pool_size_means_no_atoms(rng):
    x = rng.normal(size=(60, 2))
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1))
    est = SpectralEstimator.from_kernel(k, np.sin(x[:, :1])[None], ridge=1e-3)
    free = SpectralEstimator(est.eta, est.cross, est.norm, est.noise, est.ridge, mult=est.mult,
                             gram=est.gram, weight=est.weight)
    np.testing.assert_allclose(free.error([20]), est.error([20], target="pool"), rtol=1e-12)
    assert est.error([20]) > est.error([20], target="pool")


def test_bad_inputs(rng):
    x = rng.normal(size=(40, 2))
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1))
    est = SpectralEstimator.from_kernel(k, np.sin(x[:, :1])[None], ridge=1e-3)
    with pytest.raises(ValueError, match="pool size 40"):
        est.error([41])
    with pytest.raises(ValueError, match="target"):
        est.error([10], target="test")
    with pytest.raises(ValueError, match="target"):
        SpectralEstimator.from_kernel(k, np.sin(x[:, :1])[None], target="held-out")
    with pytest.raises(ValueError, match="covers"):
        fresh_second_moments(np.ones((1, 1, 1)), np.ones((1, 1)), np.ones((1, 1)), np.zeros(1))
