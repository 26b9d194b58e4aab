"""Spectral closed form vs the Monte-Carlo reference on the same pool, and its algebra.

Accuracy targets (literal), ReLU MLP and CNN NTKs, three learnable targets of different
smoothness (analytic, Lipschitz kink, discontinuous), single- and 3-level allocations:
- pool error (``target="pool"`` vs ``MonteCarloResult.mean``): within 10% for every N >= 20 up
  to half the pool;
- fresh-input error (the default, vs ``fresh_mean``): within 10% for every allocation whose
  counts stay within the cap ``MAX_COVERAGE`` x pool (``studies.error_model.sample_cap``), single-level ones
  up to half the pool, with the levels' sets drawn independently (the MC default) and disjoint.
The MC reference has enough trials that its standard error is at most 2.5% of its mean
(asserted), so a pass is not bought with MC noise; measured deviations are in the test
docstrings. Closed forms are checked against independent re-derivations (kappa by bracketing,
the weighted error from the mean field in input space)."""

import numpy as np
import pytest
from scipy.optimize import brentq

from ntk_mlft.architectures import get_architecture
from ntk_mlft.estimators.montecarlo import montecarlo_error
from ntk_mlft.estimators.spectral import SpectralEstimator, solve_kappa
from ntk_mlft.studies.error_model import MAX_COVERAGE

N_POOL = 400
KINDS = ("smooth", "kink", "rough")
CAP = int(MAX_COVERAGE * N_POOL)


def _levels(x, kind):
    """Three levels u_1, u_2, u_3 (coarse = perturbed) of a target, two output components."""
    z = x[:, :, 0]
    base = {"smooth": np.sin(1.5 * z.mean(1) + z[:, 0]),                    # analytic
            "kink": np.abs(z[:, 0] + 0.5 * z[:, 3]),                        # Lipschitz, kinked
            "rough": np.sign(z[:, 0] + 0.3 * z[:, 8]) * np.abs(z[:, 2]) ** 0.5}[kind]   # jump
    out = np.stack([base + 0.3 * np.cos(2 * z[:, 1]), base + 0.1 * np.sin(3 * z[:, 5]), base])
    return out[:, :, None] * np.array([1.0, -0.5])


@pytest.fixture(scope="module")
def kernels():
    x = np.random.default_rng(3).normal(size=(N_POOL, 16, 1))      # white-noise input fields
    ks = {name: np.asarray(get_architecture(name, output_dim=1).kernel_fn(x, None, get="ntk"),
                           dtype=np.float64) for name in ("mlp-relu-3", "cnn-relu-2")}
    return x, ks


def _compare(k, u, counts, n_trials, sets="independent"):
    """Pool error (independent sets only: what the closed form computes) and fresh-input error
    of every row within the cap or single-level, each within 10% of one MC run."""
    ridge = 1e-3 * np.trace(k) / k.shape[0]
    if sets == "disjoint":                                        # the sets must fit the pool
        counts = counts[counts.sum(1) < k.shape[0]]
    mc = montecarlo_error(k, u, counts, ridge=ridge, n_trials=n_trials, seed=1, sets=sets)
    est = SpectralEstimator.from_kernel(k, u, ridge=ridge)
    fresh = (counts.max(1) <= CAP) | (counts[:, :-1].max(1) == 0)
    assert np.all(mc.fresh_stderr[fresh] <= 0.025 * mc.fresh_mean[fresh]), mc.fresh_stderr / mc.fresh_mean
    rel = est.error_many(counts[fresh]) / mc.fresh_mean[fresh] - 1
    assert np.all(np.abs(rel) <= 0.10), (counts[fresh].tolist(), np.round(rel, 3))
    if sets == "independent":
        assert np.all(mc.stderr <= 0.025 * mc.mean), mc.stderr / mc.mean
        rel = est.error_many(counts, target="pool") / mc.mean - 1
        assert np.all(np.abs(rel) <= 0.10), (counts.tolist(), np.round(rel, 3))


@pytest.mark.parametrize("arch", ["mlp-relu-3", "cnn-relu-2"])
@pytest.mark.parametrize("kind", KINDS)
def test_spectral_within_10_percent_of_montecarlo(kernels, arch, kind):
    """Fast tier: N = 20, 50, 80, 200 single-level, two 3-level allocations beyond the cap
    (pool error only) and two at it, 100 trials (measured: fresh within 4.3%, pool 3.4%)."""
    x, ks = kernels
    counts = np.array([[0, 0, 20], [0, 0, 50], [0, 0, 80], [0, 0, 200], [100, 40, 20],
                       [200, 80, 30], [80, 80, 20], [80, 30, 10]])
    _compare(ks[arch], _levels(x, kind), counts, n_trials=100)


@pytest.mark.parametrize("arch", ["mlp-relu-3", "cnn-relu-2"])
def test_fresh_within_10_percent_with_disjoint_sets(kernels, arch):
    """Fast tier: sets without shared points (inputs from a continuous distribution), every
    level at the cap and below, 100 trials (measured: within 5.6%)."""
    x, ks = kernels
    counts = np.array([[80, 80, 80], [80, 80, 20], [80, 0, 20], [40, 40, 40], [0, 0, 80]])
    _compare(ks[arch], _levels(x, "kink"), counts, n_trials=100, sets="disjoint")


@pytest.mark.slow
@pytest.mark.parametrize("sets", ["independent", "disjoint"])
@pytest.mark.parametrize("arch", ["mlp-relu-3", "cnn-relu-2"])
@pytest.mark.parametrize("kind", KINDS)
def test_spectral_within_10_percent_dense_sweep(kernels, arch, kind, sets):
    """Every N of a dense grid from 20 to n/2 and twelve 3-level allocations (skips included,
    coverage up to the cap and, for the pool error, beyond it), 200 trials. Measured: fresh
    within 9.1% (independent sets) and 9.6% (disjoint; CNN NTK, analytic target, every level at
    the cap), pool within 4.0%."""
    x, ks = kernels
    single = [[0, 0, n] for n in (20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200)]
    multi = [[100, 40, 20], [60, 0, 25], [200, 80, 30], [150, 50, 20], [200, 200, 20],
             [30, 20, 20], [0, 100, 20], [200, 0, 100], [80, 80, 80], [80, 80, 20], [80, 20, 5],
             [40, 40, 40]]
    _compare(ks[arch], _levels(x, kind), np.array(single + multi), n_trials=200, sets=sets)


def _kappa_bracketed(eta, n, lam):
    """kappa from F(kappa) = lam + kappa sum eta/(n eta + kappa) - kappa by brentq (independent)."""
    f = lambda kap: lam + kap * np.sum(eta / (n * eta + kap)) - kap    # noqa: E731
    return brentq(f, max(lam, 1e-14), lam + eta.sum() + 1.0, xtol=1e-15, rtol=1e-14)


def test_solve_kappa_matches_bracketing(kernels):
    _, ks = kernels
    eta = np.maximum(np.linalg.eigvalsh(ks["mlp-relu-3"]), 0) / N_POOL
    n = np.array([20.0, 100.0, 350.0])
    for lam in (0.0, 1e-4, 0.5):
        ref = [_kappa_bracketed(eta, v, lam) for v in n]
        np.testing.assert_allclose(solve_kappa(eta, n, lam), ref, rtol=1e-9)


def test_unnormalised_single_level_is_canatar(kernels):
    """normalize='none', one level: Canatar's E_g with kappa by bracketing and mode powers from
    an eigen-decomposition done here."""
    x, ks = kernels
    k, u = ks["cnn-relu-2"], _levels(x, "smooth")
    est = SpectralEstimator.from_kernel(k, u, ridge=0.1, compress=0, normalize="none")
    evals, vecs = np.linalg.eigh(k)
    eta = np.maximum(evals, 0) / N_POOL
    m = np.sum((vecs.T @ u[-1]) ** 2, axis=1) / N_POOL          # powers of u_L, outputs summed
    for n in (20.0, 150.0):
        kap = _kappa_bracketed(eta, n, 0.1)
        gam = np.sum(n * eta ** 2 / (n * eta + kap) ** 2)
        canatar = np.sum(kap ** 2 * m / (n * eta + kap) ** 2) / (1 - gam)
        np.testing.assert_allclose(est.error([0, 0, n], target="pool"),
                                   canatar / np.mean(np.sum(u[-1] ** 2, -1)), rtol=1e-9)


def test_weighted_error_equals_input_space_mean_field(kernels):
    """normalize='diagonal', one level, every mode kept: the estimator's Gram form equals the
    error assembled here in input space, mean_x omega(x) |m(x)|^2 + sum_rho W_rho F_rho, with the
    mean field m = -sum_rho s_rho t_rho phi_rho of the normalised problem."""
    x, ks = kernels
    k, u = ks["mlp-relu-3"], _levels(x, "kink")
    lam = 0.05
    est = SpectralEstimator.from_kernel(k, u[-1:], ridge=lam, compress=0)
    omega = np.diag(k) / np.mean(np.diag(k))
    khat = k / np.sqrt(np.outer(omega, omega))
    evals, vecs = np.linalg.eigh(khat)
    eta = np.maximum(evals, 0) / N_POOL
    t = vecs.T @ (u[-1] / np.sqrt(omega)[:, None]) / np.sqrt(N_POOL)          # (P, D)
    lam_hat = lam * np.mean(1 / omega)
    for n in (30.0, 180.0):
        kap = _kappa_bracketed(eta, n, lam_hat)
        s = kap / (n * eta + kap)
        v = n * eta ** 2 / (n * eta + kap) ** 2
        ebar = np.sum(s ** 2 * np.sum(t ** 2, 1)) / (1 - v.sum())
        field = np.sqrt(N_POOL) * vecs @ (-s[:, None] * t)                     # m(x), (n, D)
        w_diag = np.sum(vecs ** 2 * omega[:, None], axis=0)
        ref = np.mean(omega * np.sum(field ** 2, 1)) + np.sum(w_diag * v * ebar)
        np.testing.assert_allclose(est.error([n], target="pool"), ref / np.mean(np.sum(u[-1] ** 2, -1)),
                                   rtol=1e-9)


def test_constant_diagonal_normalisation_is_identity(rng):
    """A kernel with constant diagonal (Gaussian RBF): omega = 1, W = I, so both forms agree."""
    x = rng.normal(size=(150, 3))
    k = np.exp(-0.5 * ((x[:, None] - x[None]) ** 2).sum(-1))
    u = np.stack([np.sin(x[:, 0]), np.sin(x[:, 0]) + 0.2 * np.cos(3 * x[:, 1])])
    counts = [[0, 10], [40, 10], [80, 30], [0, 60]]
    a = SpectralEstimator.from_kernel(k, u, ridge=1e-3).error_many(counts)
    b = SpectralEstimator.from_kernel(k, u, ridge=1e-3, normalize="none").error_many(counts)
    np.testing.assert_allclose(a, b, rtol=1e-9)


@pytest.mark.parametrize("normalize", ["diagonal", "none"])
def test_skipping_equals_merging_and_breakdown(kernels, normalize):
    """A skipped level is the same as merging its difference into the next level; the breakdown
    sums to the total; its single-level entry is the estimator of u_L alone."""
    x, ks = kernels
    k, u = ks["cnn-relu-2"], _levels(x, "smooth")
    est = SpectralEstimator.from_kernel(k, u, ridge=0.1, normalize=normalize)
    merged = SpectralEstimator.from_kernel(k, u[1:], ridge=0.1, normalize=normalize)
    np.testing.assert_allclose(est.error([0, 50, 20]), merged.error([50, 20]), rtol=1e-10)
    b = est.breakdown([100, 30, 20])
    np.testing.assert_allclose(b.contributions.sum() + b.noise, est.error([100, 30, 20]), rtol=1e-10)
    alone = SpectralEstimator.from_kernel(k, u[-1:], ridge=0.1, normalize=normalize)
    np.testing.assert_allclose(b.single_level, alone.error([20]), rtol=1e-10)
    with_noise = SpectralEstimator.from_kernel(k, u, ridge=0.1, noise=0.05, normalize=normalize)
    bn = with_noise.breakdown([100, 30, 20])
    assert bn.noise > 0
    np.testing.assert_allclose(bn.contributions, b.contributions, rtol=1e-10)
    np.testing.assert_allclose(bn.total, with_noise.error([100, 30, 20]), rtol=1e-10)


@pytest.mark.slow
def test_label_noise_path_matches_montecarlo():
    """sigma^2 > 0 vs MC with N(0, sigma^2) label noise added; pool 1,200, N <= n/8, pool and
    fresh-input error from the same MC run (with ridge 1e-2 x mean diagonal the noise term
    overestimates MC when N grows: fresh +14% at N = n/5, +41% at n/3; with ridge >= 0.1 x it
    stays within 2.5% up to n/3, training errors far from zero included)."""
    x = np.random.default_rng(5).normal(size=(1200, 16, 1))
    k = np.asarray(get_architecture("mlp-relu-3", output_dim=1).kernel_fn(x, None, get="ntk"))
    u = _levels(x, "smooth")
    counts = np.array([[0, 0, 20], [0, 0, 60], [0, 0, 150], [100, 40, 20], [150, 60, 30]])
    for rel, noise in ((1e-2, 0.1), (1e-1, [0.3, 0.05, 0.01]), (1.0, 0.2)):
        ridge = rel * np.trace(k) / 1200
        mc = montecarlo_error(k, u, counts, ridge=ridge, noise=noise, n_trials=60, seed=2)
        clean = montecarlo_error(k, u, counts, ridge=ridge, n_trials=60, seed=2)
        assert np.all(mc.mean > clean.mean) and np.max(mc.mean / clean.mean) > 1.2   # visible
        est = SpectralEstimator.from_kernel(k, u, ridge=ridge, noise=noise)
        sp = est.error_many(counts, target="pool")
        assert np.all(np.abs(sp / mc.mean - 1) <= 0.10), (rel, noise, np.round(sp / mc.mean - 1, 3))
        fresh = est.error_many(counts)
        assert np.all(np.abs(fresh / mc.fresh_mean - 1) <= 0.10), (rel, noise,
                                                                   np.round(fresh / mc.fresh_mean - 1, 3))


def test_bad_inputs(kernels):
    x, ks = kernels
    k = ks["mlp-relu-3"]
    u = _levels(x, "smooth")
    with pytest.raises(ValueError, match="smallest eigenvalue"):
        SpectralEstimator.from_kernel(k - 0.5 * np.abs(k).max() * np.eye(N_POOL), u)
    with pytest.raises(ValueError, match="smallest eigenvalue"):
        montecarlo_error(k - 0.5 * np.eye(N_POOL), u, [0, 0, 20])
    with pytest.raises(ValueError, match="same shape"):
        SpectralEstimator.from_kernel(k, [u[0], u[1][:10], u[2]])
    bad = u.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        SpectralEstimator.from_kernel(k, bad)
    with pytest.raises(ValueError, match="identically zero"):
        SpectralEstimator.from_kernel(k, 0 * u)
    for ridge in (np.nan, -1.0, [0.1, 0.1]):
        with pytest.raises(ValueError, match="ridge"):
            SpectralEstimator.from_kernel(k, u, ridge=ridge)
    with pytest.raises(ValueError, match="noise"):
        SpectralEstimator.from_kernel(k, u, noise=np.inf)
    with pytest.raises(ValueError, match="normalize"):
        SpectralEstimator.from_kernel(k, u, normalize="unit")
    zero_diag = k.copy()
    zero_diag[:, 0] = zero_diag[0, :] = 0.0
    with pytest.raises(ValueError, match="K\\(x, x\\) > 0"):
        SpectralEstimator.from_kernel(zero_diag, u)
    with pytest.raises(ValueError, match="pool size"):
        montecarlo_error(k, u, [0, 0, N_POOL + 1])
    est = SpectralEstimator.from_kernel(k, u, ridge=1.0)
    with pytest.raises(ValueError, match="finest"):
        est.error([10, 10, 0])
    with pytest.raises(ValueError, match="pool size 400"):
        est.error([0, 0, 10 * N_POOL])
    with pytest.raises(ValueError, match="resolved kernel modes"):
        SpectralEstimator.from_kernel(k, u, normalize="none").error([0, 0, N_POOL], target="pool")


@pytest.mark.parametrize("arch", ["mlp-relu-3", "cnn-relu-2"])
@pytest.mark.parametrize("normalize", ["diagonal", "none"])
def test_compressed_spectrum_matches_exact(kernels, arch, normalize):
    """Merging modes within a factor 1 + rtol changes E by O(rtol): checked against the
    uncompressed recursion at random 3-level allocations (skipped levels included), pool error
    up to 3/4 of the pool and fresh-input error within the cap."""
    x, ks = kernels
    u = _levels(x, "rough")
    exact = SpectralEstimator.from_kernel(ks[arch], u, ridge=1e-3, compress=0, normalize=normalize)
    rng = np.random.default_rng(7)
    counts = np.round(np.exp(rng.uniform(0, np.log(300), (60, 3))))
    counts[::4, 0] = 0
    capped = np.minimum(counts, CAP)
    ref, ref_fresh = exact.error_many(counts, target="pool"), exact.error_many(capped)
    for rtol, bound in ((0.03, 2e-3), (0.1, 1e-2)):
        comp = exact.compressed(rtol)
        assert comp.eta.size < exact.eta.size and comp.mult.sum() == exact.eta.size
        np.testing.assert_allclose((comp.mult * comp.eta).sum(), exact.eta.sum(), rtol=1e-12)
        np.testing.assert_allclose(comp.cross.sum(-1), exact.cross.sum(-1), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(comp.error_many(counts, target="pool"), ref, rtol=bound)
        np.testing.assert_allclose(comp.error_many(capped), ref_fresh, rtol=bound)
        direct = SpectralEstimator.from_kernel(ks[arch], u, ridge=1e-3, compress=rtol,
                                               normalize=normalize)
        np.testing.assert_allclose(direct.error_many(capped), comp.error_many(capped), rtol=1e-10)
    with pytest.raises(ValueError, match="rtol"):
        exact.compressed(0.0)


def test_ridgeless_duplicated_inputs_null_space(rng):
    """Ridge 0 with every input duplicated (different labels on the copies): the kernel is
    singular; MC uses the documented pseudo-inverse (minimum-norm interpolant: the copies get
    the mean of their labels) and the spectral form keeps the null-space power as unlearnable."""
    from ntk_mlft.predict.multilevel import chained_regression

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
    mc = montecarlo_error(k, u, counts, n_trials=100, seed=2)
    assert np.all(np.isfinite(mc.per_trial)) and np.all(mc.stderr <= 0.025 * mc.mean)
    sp = est.error_many(counts, target="pool")
    assert np.all(np.abs(sp / mc.mean - 1) <= 0.10), (sp / mc.mean - 1)
    fresh = est.error_many(counts)
    assert np.all(np.abs(fresh / mc.fresh_mean - 1) <= 0.10), (fresh / mc.fresh_mean - 1)
    pair = np.array([0, 150])                                     # one input and its copy
    f = chained_regression(k, [pair, pair], [u[0, pair], u[1, pair]])
    np.testing.assert_allclose(f[0], u[1, pair].mean(0), rtol=1e-6)
