"""The kernel's spectrum on an input measure, as the practical (pilot) estimator consumes it.

This is the interface between the spectrum builders (how the eigen-system of a pool of inputs is
obtained: ``dense_pool_spectrum``, one dense eigen-decomposition for pools up to a few thousand
points; ``nystrom_pool_spectrum``, the top modes of pools of 1e5 points and more from streamed
kernel blocks plus a tail model for the rest, docs/theory.md section 10) and the
closed form that turns it into an error (``pilot.PilotEstimator.from_spectrum`` and
``spectral``). A ``PoolSpectrum`` describes the measure of ``size`` points whose first
``n_pilot`` rows are the pilot inputs (the points with labels on every level).

Contract: ``eta`` (r,) eigenvalues of the normalised kernel operator on the measure (eigenvalues
of K_hat / size, K_hat = Omega^{-1/2} K Omega^{-1/2}), descending, with entries below
``_linalg.RCOND`` x the largest set to 0; ``basis`` (size, r) the matching orthonormal
eigenvectors of K_hat; ``omega`` (size,) the diagonal-normalisation weights (ones when
``normalize == "none"``). Derived: ``phi`` (n_pilot, r) eigenfunctions at the pilot inputs (unit
mean square over the measure), ``w_modes`` (r, r) = V^T Omega V, ``inv_mean`` = mean 1/omega.
A streamed builder sets ``w_pool`` (W computed while streaming) and keeps only the pilot rows of
the basis (n_pilot, r), and ``tail`` (``_nystrom.PowerLawTail``: the eigenvalues beyond rank r).
Normalisation: ``docs/theory.md`` section 3; its use by the pilot estimator: section 5.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from ntk_mlft._checks import check_choice
from ntk_mlft._linalg import RCOND, check_psd, psd_eigh
from ntk_mlft.estimators._modes import diagonal_weights
from ntk_mlft.estimators._nystrom import PowerLawTail

__all__ = ["NORMALIZATIONS", "PoolSpectrum", "dense_memory", "dense_pool_spectrum", "nystrom_pool_spectrum"]

NORMALIZATIONS = ("diagonal", "none")


@dataclass(frozen=True)
class PoolSpectrum:
    """Eigen-system of the (diagonal-normalised) kernel on a measure of ``size`` points, pilot
    rows first (module docstring for the fields' contract)."""

    eta: np.ndarray
    basis: np.ndarray
    omega: np.ndarray
    n_pilot: int
    normalize: str
    w_pool: np.ndarray | None = None
    tail: PowerLawTail | None = None

    def __post_init__(self) -> None:
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        rows, rank = self.basis.shape
        size = self.omega.size
        if self.eta.shape != (rank,) or self.omega.shape != (size,) \
                or rows != (self.n_pilot if self.w_pool is not None else size):
            raise ValueError(f"PoolSpectrum: eta must be (r,), omega (size,) and the basis "
                             f"(size, r), or (n_pilot, r) with w_pool given; got basis "
                             f"{self.basis.shape}, eta {self.eta.shape}, omega "
                             f"{self.omega.shape}, n_pilot {self.n_pilot}")
        if self.w_pool is not None and self.w_pool.shape != (rank, rank):
            raise ValueError(f"PoolSpectrum: w_pool must be (r, r) = ({rank}, {rank}); got "
                             f"{self.w_pool.shape}")
        if not 0 < self.n_pilot <= size:
            raise ValueError(f"PoolSpectrum: n_pilot must be in 1..size = {size}; "
                             f"got {self.n_pilot}")

    @property
    def size(self) -> int:
        """Number of points of the measure (pilot + unlabeled)."""
        return int(self.omega.size)

    @property
    def rank(self) -> int:
        """Number of modes described (r)."""
        return int(self.eta.size)

    @property
    def inv_mean(self) -> float:
        """mean over the measure of 1 / omega (converts ridge and noise to normalised units)."""
        return float(np.mean(1 / self.omega))

    @property
    def phi(self) -> np.ndarray:
        """(n_pilot, r) eigenfunctions at the pilot inputs, sqrt(size) V[:n_pilot]."""
        return np.sqrt(self.size) * self.basis[:self.n_pilot]

    @property
    def omega_pilot(self) -> np.ndarray:
        """(n_pilot,) normalisation weights at the pilot inputs."""
        return self.omega[:self.n_pilot]

    @cached_property
    def w_modes(self) -> np.ndarray:
        """(r, r) W = V^T Omega V, the weight of the error field in mode space."""
        if self.w_pool is not None:
            return self.w_pool
        return (self.basis * self.omega[:, None]).T @ self.basis

    def self_terms(self, phi: np.ndarray, hats: np.ndarray) -> np.ndarray:
        """r_i = H (W o phi_i phi_i^T) H^T (n_p, J, J) for eigenfunction values phi (n_p, r) and
        knot interpolation hats (J, r), computed as sum_x omega_x Pi_a(x, x_i) Pi_b(x, x_i) with
        the knot-filtered kernels Pi_a(x, x_i) = sum_rho V_{x rho} H_{a rho} phi_rho(x_i) (each
        mode has at most two knots); from W directly when only the pilot rows are kept (cost
        n_p J r^2)."""
        if self.w_pool is not None:
            a = hats[:, None, :] * phi[None]                                  # (J, n_p, r)
            return np.einsum("air,rs,bis->iab", a, self.w_pool, a, optimize=True)
        pis = np.stack([(self.basis[:, h > 0] * h[h > 0]) @ phi[:, h > 0].T
                        for h in hats])                                       # (J, size, n_p)
        return np.einsum("axi,x,bxi->iab", pis, self.omega, pis, optimize=True)


def dense_pool_spectrum(k: Any, n_pilot: int, *, normalize: str = "diagonal",
                        name: str = "kernel on pilot + unlabeled inputs") -> PoolSpectrum:
    """Full spectrum of the kernel matrix k (size, size), pilot rows first, by one dense
    eigen-decomposition (cost size^3; memory size^2: for pools up to a few thousand points).

    ``normalize``: "diagonal" (K_hat = Omega^{-1/2} K Omega^{-1/2}, omega = diag K / mean) or
    "none"; ``name`` names the matrix in errors (not symmetric / not PSD / K(x, x) <= 0)."""
    check_choice("normalize", normalize, NORMALIZATIONS)
    k = check_psd(name, k)
    omega = diagonal_weights(name, k) if normalize == "diagonal" else np.ones(k.shape[0])
    root = np.sqrt(omega)
    evals, evecs = psd_eigh(name, k / np.outer(root, root))
    evals = np.where(evals > RCOND * evals.max(), evals, 0.0)
    return PoolSpectrum(evals[::-1] / k.shape[0], evecs[:, ::-1], omega, int(n_pilot), normalize)


def dense_memory(size: int) -> int:
    """Bytes ``dense_pool_spectrum`` needs for a pool of ``size`` points: the kernel, its
    normalised copy and the eigenvectors, three (size, size) float64 arrays."""
    return 3 * 8 * int(size) ** 2


def _kernel_diagonal(kernel_fn: Any, x: np.ndarray, block: int, get: str) -> np.ndarray:
    """K(x_i, x_i) (n,) in float64 from one jitted (block, block) kernel per chunk (diagonal
    kept; the ragged last chunk padded): cost n x block kernel entries."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        diag_fn = jax.jit(lambda a: jnp.diagonal(kernel_fn(a, None, get=get)))
        out = np.empty(len(x))
        for start in range(0, len(x), block):
            chunk = x[start:start + block]
            pad = np.concatenate([chunk, np.broadcast_to(chunk[:1], (block - len(chunk),)
                                                         + chunk.shape[1:])])
            out[start:start + len(chunk)] = np.asarray(diag_fn(pad), np.float64)[:len(chunk)]
    return out


def nystrom_pool_spectrum(kernel_fn: Any, x_pilot: Any, x_unlabeled: Any, *,
                          n_landmarks: int = 2000, rank: int | None = None, block: int = 1024,
                          seed: int = 0, get: str = "ntk", memory_limit: float = 8e9,
                          tail_power_exponent: float = 1.0) -> PoolSpectrum:
    """Top modes of the diagonal-normalised kernel on the pool U = pilot + unlabeled inputs
    (size M = n_p + m, pilot rows first) and a tail model for the rest, without an (M, M) array
    (docs/theory.md section 10).

    ``kernel_fn``: an analytic ``kernel_fn`` of ``ntk_mlft.stax``; ``n_landmarks``: m_z pool points
    drawn uniformly (seeded by ``seed``) whose kernel columns K(U, Z) are streamed in row blocks
    of ``block`` (``kernels.kernel_blocks``, float64; sharded over devices where it does so);
    ``rank``: modes kept (default n_landmarks // 4: Nyström eigenvalues are lower bounds whose
    error grows towards rank m_z), the rest is ``tail`` (``_nystrom.power_law_tail``: power law
    through the last kept eigenvalue holding the exact trace remainder). Cost: M m_z kernel
    entries + M block diagonal entries + 2 M m_z^2 flops; memory ``_nystrom.nystrom_memory``,
    refused above ``memory_limit`` bytes with the numbers and the option that reduces it.
    ``tail_power_exponent``: gamma of the tail's target powers (per mode proportional to
    eta^gamma; 1: like the kernel's own process, 2: smoother; ``_tail_entries``).
    """
    import jax

    from ntk_mlft._checks import check_positive_int
    from ntk_mlft.estimators._nystrom import nystrom_memory, nystrom_modes, power_law_tail
    from ntk_mlft.kernels import kernel_blocks

    gamma = float(tail_power_exponent)
    if not np.isfinite(gamma) or gamma < 0:
        raise ValueError(f"tail_power_exponent must be a finite number >= 0; got "
                         f"{tail_power_exponent!r}")
    x_pilot = np.asarray(x_pilot, dtype=np.float64)
    x_unlabeled = np.asarray(x_unlabeled, dtype=np.float64)
    if x_pilot.shape[1:] != x_unlabeled.shape[1:]:
        raise ValueError(f"x_unlabeled must have the pilot inputs' shape (n, "
                         f"{', '.join(map(str, x_pilot.shape[1:]))}); got {x_unlabeled.shape}")
    n_p, size = len(x_pilot), len(x_pilot) + len(x_unlabeled)
    m_z = check_positive_int("n_landmarks", n_landmarks)
    if m_z > size:
        raise ValueError(f"n_landmarks must be <= the pool size {size}; got {m_z}")
    rank = max(1, m_z // 4) if rank is None else check_positive_int("rank", rank)
    if rank > m_z:
        raise ValueError(f"rank must be <= n_landmarks = {m_z}; got {rank}")
    block = min(check_positive_int("block", block), size)
    need = nystrom_memory(size, m_z, block, n_p)
    if need > memory_limit:
        raise ValueError(f"n_landmarks: {m_z} landmarks on a pool of {size} points need "
                         f"{need / 1e9:.1f} GB, above memory_limit = {memory_limit / 1e9:.1f} GB; "
                         f"use fewer landmarks (memory ~ 32 n_landmarks^2 bytes) or a smaller block")
    landmarks = np.sort(np.random.default_rng(seed).choice(size, m_z, replace=False))

    def take(idx: np.ndarray) -> np.ndarray:
        return np.concatenate([x_pilot[idx[idx < n_p]], x_unlabeled[idx[idx >= n_p] - n_p]])

    x_z = take(landmarks)
    diag = np.concatenate([_kernel_diagonal(kernel_fn, x, min(256, len(x)), get)
                           for x in (x_pilot, x_unlabeled)])

    def blocks():
        with jax.enable_x64(True):
            for offset, x in ((0, x_pilot), (n_p, x_unlabeled)):
                for start, rows in kernel_blocks(kernel_fn, x, x_z, block=block, get=get):
                    yield offset + start, rows

    modes = nystrom_modes(blocks(), diag, landmarks, rank, np.arange(n_p))
    tail = power_law_tail(modes.eta, size, modes.tail_mass,
                          name=f"Nyström spectrum of {size} points ({m_z} landmarks)")
    tail = replace(tail, power_exponent=gamma)
    return PoolSpectrum(modes.eta, modes.vectors, modes.omega, n_p, "diagonal",
                        w_pool=modes.w_modes, tail=tail)
