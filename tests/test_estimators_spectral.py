"""Spectral closed form vs the Monte-Carlo reference on the same pool (the accuracy target:
within 10% (+2 MC standard errors) for every N >= 20, single- and 3-level, ReLU MLP and CNN NTKs, 3 targets of
different smoothness), plus algebraic checks of the closed form and bad-input errors."""

import numpy as np
import pytest

from ntk_mlft.architectures import get_architecture
from ntk_mlft.estimators.montecarlo import montecarlo_error
from ntk_mlft.estimators.spectral import SpectralEstimator, solve_kappa

N_POOL = 400


def _pool(rng, n_x=16):
    """White-noise input fields on a periodic grid of n_x points: inputs (n, n_x, 1)."""
    return rng.normal(size=(N_POOL, n_x, 1))


def _levels(x, kind):
    """Three levels u_1, u_2, u_3 of a target; coarse levels are perturbed versions."""
    z = x[:, :, 0]
    m = z.mean(1)
    base = {"smooth": np.sin(1.5 * m + z[:, 0]),
            "medium": np.sin(4 * z[:, 0]) * np.cos(2 * z[:, 4]),
            "rough": np.sign(z[:, 0] + 0.3 * z[:, 8]) * np.abs(z[:, 2]) ** 0.5}[kind]
    out = np.stack([base + 0.3 * np.cos(2 * z[:, 1]), base + 0.1 * np.sin(3 * z[:, 5]), base])
    return out[:, :, None] * np.array([1.0, -0.5])            # two output components


@pytest.fixture(scope="module")
def kernels():
    rng = np.random.default_rng(3)
    x = _pool(rng)
    ks = {}
    for name in ("mlp-relu-3", "cnn-relu-2"):
        arch = get_architecture(name, output_dim=1)
        ks[name] = np.asarray(arch.kernel_fn(x, None, get="ntk"), dtype=np.float64)
    return x, ks


SINGLE = [[0, 0, 20], [0, 0, 50], [0, 0, 100]]
MULTI = [[100, 40, 20], [60, 0, 25]]


@pytest.mark.parametrize("arch", ["mlp-relu-3", "cnn-relu-2"])
@pytest.mark.parametrize("kind", ["smooth", "medium", "rough"])
def test_spectral_matches_montecarlo(kernels, arch, kind):
    x, ks = kernels
    u = _levels(x, kind)
    counts = np.array(SINGLE + MULTI)
    ridge = 1e-3 * np.trace(ks[arch]) / N_POOL
    mc = montecarlo_error(ks[arch], u, counts, ridge=ridge, n_trials=10, seed=1)
    sp = SpectralEstimator.from_kernel(ks[arch], u, ridge=ridge).error_many(counts)
    # 10% of the truth, plus two Monte-Carlo standard errors (the reference is itself noisy)
    assert np.all(np.abs(sp - mc.mean) <= 0.10 * mc.mean + 2 * mc.stderr), (
        arch, kind, np.round(sp / mc.mean - 1, 3), np.round(mc.stderr / mc.mean, 3))


def test_ridgeless_and_kappa(kernels):
    _, ks = kernels
    k = ks["mlp-relu-3"]
    est = SpectralEstimator.from_kernel(k, _levels(kernels[0], "smooth"))
    n = np.array([20.0, 100.0])
    for lam in (0.0, 0.5):
        kap = solve_kappa(est.eta, n, lam, est.mult)
        resid = kap - lam - kap * (est.mult * est.eta / (n[:, None] * est.eta + kap[:, None])).sum(1)
        np.testing.assert_allclose(resid, 0, atol=1e-10 * kap.max())
    u = _levels(kernels[0], "medium")
    mc = montecarlo_error(k, u, [[100, 30, 20], [0, 0, 40]], n_trials=10)
    sp = SpectralEstimator.from_kernel(k, u).error_many([[100, 30, 20], [0, 0, 40]])
    assert np.all(np.abs(sp - mc.mean) <= 0.10 * mc.mean + 2 * mc.stderr)


def test_closed_form_identities(kernels):
    """Single level reproduces Canatar's formula; skipping equals merging; breakdown sums."""
    x, ks = kernels
    u = _levels(x, "smooth")
    est = SpectralEstimator.from_kernel(ks["cnn-relu-2"], u, ridge=0.1, compress=0)
    n = 40.0
    kap = solve_kappa(est.eta, np.array([n]), 0.1)[0]
    m = est.cross.sum((0, 1))                                  # mode powers of u_L
    gam = (n * est.eta ** 2 / (n * est.eta + kap) ** 2).sum()
    canatar = (kap ** 2 * m / (n * est.eta + kap) ** 2).sum() / (1 - gam) / est.norm
    np.testing.assert_allclose(est.single_level_error(n), canatar, rtol=1e-12)
    merged = SpectralEstimator(est.eta, np.stack([np.stack([est.cross[:2, :2].sum((0, 1)),
                               est.cross[:2, 2].sum(0)]), np.stack([est.cross[2, :2].sum(0),
                               est.cross[2, 2]])]), est.norm, np.zeros(2), np.full(2, 0.1))
    np.testing.assert_allclose(est.error([0, 50, 20]), merged.error([50, 20]), rtol=1e-12)
    b = est.breakdown([100, 30, 20])
    np.testing.assert_allclose(b.contributions.sum() + b.noise, est.error([100, 30, 20]),
                               rtol=1e-12)
    assert b.single_level == est.single_level_error(20)


def test_bad_inputs(kernels):
    x, ks = kernels
    k = ks["mlp-relu-3"]
    u = _levels(x, "smooth")
    with pytest.raises(ValueError, match="smallest eigenvalue"):
        SpectralEstimator.from_kernel(k - 0.5 * np.abs(k).max() * np.eye(N_POOL), u)
    with pytest.raises(ValueError, match="same shape"):
        SpectralEstimator.from_kernel(k, [u[0], u[1][:10], u[2]])
    bad = u.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        SpectralEstimator.from_kernel(k, bad)
    with pytest.raises(ValueError, match="identically zero"):
        SpectralEstimator.from_kernel(k, 0 * u)
    with pytest.raises(ValueError, match="pool size"):
        montecarlo_error(k, u, [0, 0, N_POOL + 1])
    est = SpectralEstimator.from_kernel(k, u)
    with pytest.raises(ValueError, match="finest"):
        est.error([10, 10, 0])
    with pytest.raises(ValueError, match="resolved kernel modes"):
        est.error([0, 0, 10 * N_POOL])


@pytest.mark.parametrize("arch", ["mlp-relu-3", "cnn-relu-2"])
def test_compressed_spectrum_matches_exact(kernels, arch):
    """Merging modes within a factor 1 + rtol changes E by O(rtol): checked against the
    uncompressed recursion at random 3-level allocations (skipped levels included)."""
    x, ks = kernels
    u = _levels(x, "rough")
    exact = SpectralEstimator.from_kernel(ks[arch], u, ridge=1e-3, compress=0)
    rng = np.random.default_rng(7)
    counts = np.round(np.exp(rng.uniform(0, np.log(300), (60, 3))))
    counts[::4, 0] = 0
    ref = exact.error_many(counts)
    for rtol, bound in ((0.03, 2e-3), (0.1, 1e-2)):
        comp = exact.compressed(rtol)
        assert comp.eta.size < exact.eta.size and comp.mult.sum() == exact.eta.size
        np.testing.assert_allclose((comp.mult * comp.eta).sum(), exact.eta.sum(), rtol=1e-12)
        np.testing.assert_allclose(comp.cross.sum(-1), exact.cross.sum(-1), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(comp.error_many(counts), ref, rtol=bound)
        assert comp.compressed(rtol).eta.size <= comp.eta.size
    with pytest.raises(ValueError, match="rtol"):
        exact.compressed(0.0)


def test_ridgeless_duplicated_inputs_null_space(rng):
    """Ridge 0 with every input duplicated (different labels on the copies): the kernel is
    singular; MC uses the documented pseudo-inverse (minimum-norm interpolant: the copies get
    the mean of their labels) and the spectral form keeps the null-space power as unlearnable."""
    from ntk_mlft.multilevel import chained_regression

    x = rng.normal(size=(150, 3))
    x = np.concatenate([x, x])
    k = np.exp(-np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)))    # Laplace kernel
    u = np.sin(x[:, 0]) + 0.3 * rng.normal(size=300)             # label noise differs on copies
    u = np.stack([u, u])[:, :, None]
    est = SpectralEstimator.from_kernel(k, u, compress=0)
    assert np.sum(est.eta == 0) >= 150
    np.testing.assert_allclose(est.cross.sum(-1)[0, 0], np.mean(u[0] ** 2), rtol=1e-10)
    null_power = est.cross[1, 1][est.eta == 0].sum() + est.cross[0, 0][est.eta == 0].sum()
    assert null_power > 0.01 * np.mean(u[1] ** 2)
    counts = [[0, 20], [0, 50], [30, 20]]
    mc = montecarlo_error(k, u, counts, n_trials=30, seed=2)
    assert np.all(np.isfinite(mc.per_trial))
    sp = est.error_many(counts)
    assert np.all(np.abs(sp - mc.mean) <= 0.10 * mc.mean + 2 * mc.stderr), (sp / mc.mean - 1)
    pair = np.array([0, 150])                                     # one input and its copy
    f = chained_regression(k, [pair, pair], [u[0, pair], u[1, pair]])
    np.testing.assert_allclose(f[0], u[1, pair].mean(0), rtol=1e-6)
