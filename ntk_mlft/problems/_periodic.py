"""Shared machinery of the 2-D periodic transfer testbeds: one constant-coefficient operator,
solved exactly in Fourier space, and the Gaussian-lattice sources.

Operator (all three systems are instances; the coefficients are part of every input):

    L u = -div(D grad u) + b . grad u - c u = f   on the periodic unit square,

D a symmetric positive definite 2x2 tensor (D11, D12, D22), b a velocity (b1, b2), c >= 0 a
reaction / wavenumber term. Fourier symbol, mode k = (k1, k2) (integers), u = sum u_k e^{2 pi i k.x}:

    sigma(k) = 4 pi^2 k^T D k + 2 pi i b.k - c,       u_k = f_k / sigma(k).

For c = 0 the mean mode is the null space: f must have mean 0 (the samplers remove it) and the
solution is the one with mean 0. Modes at the Nyquist index of the solve grid are dropped
(their symbol is not Hermitian with advection), so the solve is exact to round-off for
band-limited data: for f a trigonometric polynomial of degree < grid/2 the output is the exact
solution at the output nodes.

Input layout (one flat float64 vector per sample, ``n_input**2 + N_COEF`` long): the source f at
the nodes ``(i / n_input, j / n_input)`` in C order, then the coefficients
``(D11, D12, D22, b1, b2, c)``. :func:`split_inputs` / :func:`join_inputs` convert.

Levels: level l is the same exact solve with the source's Fourier series truncated to the modes
of a ``grid(l)``^2 grid (|k_i| < grid/2); a finer grid than the input's zero-pads (identical to
round-off). So grid levels only differ by the source's Fourier tail beyond the coarse Nyquist
frequency (for the default Gaussians of std 1/32 on 64^2 nodes: below 1e-8 relative). The MLFT
levels of the transfer study are physics regimes (source range -> target range), not grids;
see docs/transfer.md.

Sources (Subramanian et al. 2023): Gaussians of std ``source_std`` centred on a ``lattice`` x
``lattice`` grid ((i + 1/2) / lattice, (j + 1/2) / lattice), each switched on with probability p,
p ~ U(0.2, 0.8) per sample (at least one on), amplitudes ~ U(1e-3, 1), periodised (images at
+-1), the sum divided by its maximum over the nodes, then the mean removed where c = 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["N_COEF", "gaussian_lattice_sources", "join_inputs", "resample", "solve_periodic",
           "split_inputs", "symbol"]

N_COEF = 6   # D11, D12, D22, b1, b2, c


def split_inputs(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat inputs (..., n*n + N_COEF) -> sources (..., n, n) and coefficients (..., N_COEF)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] != n * n + N_COEF:
        raise ValueError(f"inputs must have {n * n + N_COEF} entries per sample ({n}^2 source nodes + "
                         f"{N_COEF} coefficients); got shape {x.shape}")
    return x[..., :n * n].reshape(*x.shape[:-1], n, n), x[..., n * n:]


def join_inputs(f: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Sources (..., n, n) and coefficients (..., N_COEF) -> flat inputs (..., n*n + N_COEF)."""
    f = np.asarray(f, dtype=np.float64)
    return np.concatenate([f.reshape(*f.shape[:-2], -1), np.asarray(coef, dtype=np.float64)], axis=-1)


def _modes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer wavenumbers of an ``rfft2`` spectrum of an n x n grid: k1 (n, 1), k2 (1, n//2+1)."""
    return np.fft.fftfreq(n, 1.0 / n)[:, None], np.arange(n // 2 + 1)[None, :].astype(np.float64)


def symbol(coef: np.ndarray, n: int) -> np.ndarray:
    """sigma(k) (..., n, n//2+1) on the rfft2 modes of an n x n grid, coef (..., N_COEF)."""
    c = np.asarray(coef, dtype=np.float64)[..., None, None, :]
    k1, k2 = _modes(n)
    quad = c[..., 0] * k1 ** 2 + 2.0 * c[..., 1] * k1 * k2 + c[..., 2] * k2 ** 2
    return 4.0 * np.pi ** 2 * quad + 2j * np.pi * (c[..., 3] * k1 + c[..., 4] * k2) - c[..., 5]


def resample(spec: np.ndarray, n_from: int, n_to: int) -> np.ndarray:
    """Fourier coefficients (``norm="forward"`` rfft2 layout) of an n_from grid -> those of an
    n_to grid: modes with |k_i| < min(n_from, n_to) / 2 kept, the rest (Nyquist included) zero."""
    m = min(n_from, n_to)
    half = (m - 1) // 2                    # largest |k| kept
    out = np.zeros((*spec.shape[:-2], n_to, n_to // 2 + 1), dtype=np.complex128)
    out[..., :half + 1, :half + 1] = spec[..., :half + 1, :half + 1]
    if half > 0:
        out[..., n_to - half:, :half + 1] = spec[..., n_from - half:, :half + 1]
    return out


def solve_periodic(f: np.ndarray, coef: np.ndarray, n_grid: int, n_output: int) -> np.ndarray:
    """Exact Fourier solve of L u = f (module docstring): f (B, m, m) on the nodes, coef (B, N_COEF).

    The source's Fourier series is truncated to the modes of an ``n_grid`` grid, divided by the
    symbol (mean mode set to 0 where c = 0), and the solution evaluated at the ``n_output`` x
    ``n_output`` nodes. Returns (B, n_output, n_output). One batched FFT each way; every row is
    transformed on its own, so row i is bitwise the solve of sample i alone.
    """
    m = f.shape[-1]
    spec = resample(np.fft.rfft2(f, norm="forward"), m, n_grid)
    sig = symbol(coef, n_grid)
    zero = sig == 0                                      # the mean mode when c = 0
    u_spec = np.where(zero, 0.0, spec / np.where(zero, 1.0, sig))
    return np.fft.irfft2(resample(u_spec, n_grid, n_output), s=(n_output, n_output), norm="forward")


def _periodic_gaussian(nodes: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
    """(len(centres), len(nodes)) values of Gaussians of ``std`` on the unit circle (images at +-1)."""
    diff = nodes[None, :] - centres[:, None]
    return sum(np.exp(-0.5 * ((diff + shift) / std) ** 2) for shift in (-1.0, 0.0, 1.0))


def gaussian_lattice_sources(rng: np.random.Generator, n: int, n_nodes: int, lattice: int,
                             std: float) -> np.ndarray:
    """(n, n_nodes, n_nodes) sources of the module docstring, maximum |f| = 1 (mean not removed).

    Separable: f = G^T (a * on) G with G (lattice, n_nodes) the periodic Gaussians of one axis.
    """
    nodes = np.arange(n_nodes) / n_nodes
    g = _periodic_gaussian(nodes, (np.arange(lattice) + 0.5) / lattice, std)
    p = rng.uniform(0.2, 0.8, size=(n, 1, 1))
    on = rng.random((n, lattice, lattice)) < p
    none = ~on.any(axis=(1, 2))
    on[none, 0, 0] = True                                # at least one Gaussian per sample
    amp = rng.uniform(1e-3, 1.0, size=(n, lattice, lattice)) * on
    f = g.T @ amp @ g
    return f / np.max(np.abs(f), axis=(1, 2), keepdims=True)
