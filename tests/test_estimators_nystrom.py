"""Large-pool spectrum: the streamed Nyström modes against a dense eigen-decomposition on small
pools (eigenvalues, eigenvector projections at the pilot rows, W, tail mass), the power-law tail
against the exact tail, the tail-completed estimate against the full dense one, the memory
bound (no (M, M) array), and bad input named."""

import tracemalloc
import warnings

import numpy as np
import pytest

from ntk_mlft.estimators import PilotEstimator
from ntk_mlft.estimators._nystrom import TailWarning, nystrom_modes, power_law_tail
from ntk_mlft.estimators.pool_spectrum import PoolSpectrum, dense_pool_spectrum


def _kernel(rng, n, dim):
    """Normalised-diagonal-varying arc-cosine (ReLU NNGP-like) kernel on Gaussian inputs."""
    x = rng.normal(size=(n, dim)) * rng.uniform(0.5, 2.0, size=dim)
    norms = np.linalg.norm(x, axis=1) + 0.3
    cos = np.clip((x @ x.T + 0.09) / np.outer(norms, norms), -1, 1)
    theta = np.arccos(cos)
    return np.outer(norms, norms) * (np.sin(theta) + (np.pi - theta) * cos) / np.pi + 0.1, x


def _blocks(k, landmarks, block):
    for start in range(0, k.shape[0], block):
        yield start, k[start:start + block][:, landmarks]


def test_nystrom_with_all_points_as_landmarks_is_exact():
    rng = np.random.default_rng(0)
    k, _ = _kernel(rng, 120, 3)
    dense = dense_pool_spectrum(k, 30)
    modes = nystrom_modes(_blocks(k, np.arange(120), 17), np.diag(k), np.arange(120), 40,
                          np.arange(30))
    np.testing.assert_allclose(modes.eta, dense.eta[:40], rtol=1e-6, atol=1e-10 * dense.eta[0])
    p_ny = modes.vectors @ modes.vectors.T                       # projector: signs, ties free
    p_de = dense.basis[:30, :40] @ dense.basis[:30, :40].T
    np.testing.assert_allclose(p_ny, p_de, atol=1e-6)
    np.testing.assert_allclose(np.abs(np.diag(modes.w_modes)), np.diag(dense.w_modes)[:40],
                               rtol=1e-6)
    assert modes.tail_mass == pytest.approx(dense.eta[40:].sum(), rel=1e-8)


def test_nystrom_subsampled_top_modes_and_tail_against_dense():
    rng = np.random.default_rng(1)
    size, n_p = 700, 60
    k, _ = _kernel(rng, size, 3)
    dense = dense_pool_spectrum(k, n_p)
    landmarks = np.sort(rng.choice(size, 240, replace=False))
    modes = nystrom_modes(_blocks(k, landmarks, 256), np.diag(k), landmarks, 60, np.arange(n_p))
    rel = modes.eta / dense.eta[:60] - 1
    assert np.all(rel <= 1e-9)                                   # Ritz values: lower bounds
    assert np.max(np.abs(rel[:10])) < 0.01 and np.max(np.abs(rel)) < 0.25
    # tail mass: exact trace remainder up to the top modes' deficit
    assert modes.tail_mass + modes.eta.sum() == pytest.approx(dense.eta.sum(), rel=1e-10)
    for top in (5, 20):                                          # eigenvector projections
        p_ny = modes.vectors[:, :top] @ modes.vectors[:, :top].T
        p_de = dense.basis[:n_p, :top] @ dense.basis[:n_p, :top].T
        assert np.abs(p_ny - p_de).max() < 0.1 * np.abs(p_de).max()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TailWarning)
        tail = power_law_tail(modes.eta, size, modes.tail_mass)
    eta_b, mult_b = tail.bands()
    assert np.sum(mult_b) == size - 60
    assert np.sum(eta_b * mult_b) == pytest.approx(modes.tail_mass, rel=1e-10)
    ends = 60 + np.cumsum(mult_b).astype(int)
    for rank in (90, 120, 180):                                 # the model against the exact tail
        i = int(np.searchsorted(ends, rank))
        assert 0.5 < eta_b[i] / dense.eta[rank] < 2.0


def test_tail_completed_estimate_close_to_full_dense():
    rng = np.random.default_rng(2)
    size, n_p, rank = 600, 100, 100
    k, x = _kernel(rng, size, 5)
    u1 = np.sin(2 * x[:, 0]) + np.cos(x[:, 1])
    u = np.stack([u1, u1 + 0.2 * np.sin(3 * x[:, 0] * x[:, 1])])[:, :n_p, None]
    lam = 1e-3 * np.mean(np.diag(k))
    dense = dense_pool_spectrum(k, n_p)
    counts = np.array([[0, 20], [0, 60], [200, 30], [300, 60]])
    full = PilotEstimator.from_spectrum(dense, u, ridge=lam, n_boot=2).error_many(counts)
    eta = dense.eta[:rank]
    tail = power_law_tail(eta, size, float(dense.eta[rank:].sum()))
    parts = {}
    for name, t in (("tail", tail), ("cut", None)):
        spec = PoolSpectrum(eta, dense.basis[:n_p, :rank], dense.omega, n_p, "diagonal",
                            w_pool=dense.w_modes[:rank, :rank], tail=t)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TailWarning)
            parts[name] = PilotEstimator.from_spectrum(spec, u, ridge=lam,
                                                       n_boot=2).error_many(counts)
        if t is not None:                       # level 2's difference lives mostly in the tail
            assert len(caught) == 1 and "of the levels' target power" in str(caught[0].message)
    assert np.max(np.abs(parts["tail"] / full - 1)) < 0.1
    assert np.max(np.abs(parts["cut"] / full - 1)) > 0.1        # the tail is what closes the gap


def test_nystrom_memory_bound_and_bad_input():
    rng = np.random.default_rng(3)
    size, m = 6000, 100
    x = rng.normal(size=(size, 2))
    landmarks = np.sort(rng.choice(size, m, replace=False))

    def blocks():                                                # rows computed on the fly
        for s in range(0, size, 500):
            yield s, np.exp(-((x[s:s + 500, None] - x[None, landmarks]) ** 2).sum(-1))

    tracemalloc.start()
    modes = nystrom_modes(blocks(), np.ones(size), landmarks, 50, np.arange(10))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.05 * 8 * size * size                         # an (M, M) array is 288 MB
    assert modes.eta.size == 50 and modes.vectors.shape == (10, 50)
    with pytest.raises(ValueError, match="rank"):
        nystrom_modes(blocks(), np.ones(size), landmarks, m + 1, np.arange(10))
    with pytest.raises(ValueError, match=r"K\(x, x\) > 0"):
        nystrom_modes(blocks(), -np.ones(size), landmarks, 5, np.arange(10))
    with pytest.raises(ValueError, match="blocks covered"):
        nystrom_modes(((0, np.ones((10, m))),), np.ones(size), landmarks, 5, np.arange(10))


def test_tail_warns_with_numbers():
    eta = 1.0 / np.arange(1, 51) ** 2
    with pytest.warns(TailWarning, match="exceeds a flat tail"):
        power_law_tail(eta, 100, mass=10.0)
    with pytest.warns(TailWarning, match="decay with slope"):
        power_law_tail(eta, 10 ** 5, mass=0.5)                   # trace needs a slow tail


def test_dense_pool_too_large_is_refused_with_the_memory_and_the_option():
    from ntk_mlft.estimators import Pilot
    from ntk_mlft.studies.error_model import build_error_model

    rng = np.random.default_rng(4)
    pilot = Pilot(rng.normal(size=(12, 2)), rng.normal(size=(2, 12, 1)),
                  rng.normal(size=(19000, 2)))
    with pytest.raises(ValueError, match=r"19012 inputs needs 8\.7 GB.*nystrom_pool_spectrum"):
        build_error_model(pilot, "mlp-relu-3", 1e-3)


def test_pilot_rows_spectrum_equals_full_basis_one():
    rng = np.random.default_rng(5)
    k, _ = _kernel(rng, 80, 3)
    full = dense_pool_spectrum(k, 20)
    rows = PoolSpectrum(full.eta, full.basis[:20], full.omega, 20, "diagonal", w_pool=full.w_modes)
    assert rows.size == 80 and rows.rank == 80
    np.testing.assert_allclose(rows.phi, full.phi, rtol=1e-13)
    hats = np.abs(rng.normal(size=(5, 80)))
    np.testing.assert_allclose(rows.self_terms(rows.phi, hats), full.self_terms(full.phi, hats),
                               rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="w_pool"):
        PoolSpectrum(full.eta, full.basis[:20], full.omega, 20, "diagonal", w_pool=np.eye(3))
    with pytest.raises(ValueError, match="n_pilot, r"):
        PoolSpectrum(full.eta, full.basis[:21], full.omega, 20, "diagonal", w_pool=full.w_modes)


@pytest.mark.slow  # ~9 s: jit compiles of the streamed blocks
def test_nystrom_pool_spectrum_runs_on_kernel_fn_and_names_bad_input():
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators import nystrom_pool_spectrum

    net = get_architecture("mlp-relu-3", output_dim=1)
    rng = np.random.default_rng(6)
    x_p, x_u = rng.normal(size=(12, 3)), rng.normal(size=(150, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TailWarning)
        spec = nystrom_pool_spectrum(net.kernel_fn, x_p, x_u, n_landmarks=162, rank=40, block=64)
    import jax

    with jax.enable_x64(True):                   # all points as landmarks: the dense spectrum
        k = np.asarray(net.kernel_fn(np.concatenate([x_p, x_u]), None, get="ntk"))
    dense = dense_pool_spectrum(k, 12)
    np.testing.assert_allclose(spec.eta, dense.eta[:40], rtol=1e-5, atol=1e-9 * dense.eta[0])
    assert spec.size == 162 and spec.phi.shape == (12, 40) and spec.tail.rank == 40
    with pytest.raises(ValueError, match="n_landmarks must be <= the pool size 162"):
        nystrom_pool_spectrum(net.kernel_fn, x_p, x_u, n_landmarks=200)
    with pytest.raises(ValueError, match=r"points need [0-9.]+ GB, above memory_limit"):
        nystrom_pool_spectrum(net.kernel_fn, x_p, x_u, n_landmarks=100, memory_limit=1e5)
    with pytest.raises(ValueError, match="tail_power_exponent"):
        nystrom_pool_spectrum(net.kernel_fn, x_p, x_u, tail_power_exponent=-1)
    with pytest.raises(ValueError, match="x_unlabeled must have the pilot inputs' shape"):
        nystrom_pool_spectrum(net.kernel_fn, x_p, x_u[:, :2])
