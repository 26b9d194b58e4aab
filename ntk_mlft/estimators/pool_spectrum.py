"""The kernel's spectrum on an input measure, as the practical (pilot) estimator consumes it.

This is the interface between the spectrum builders (how the eigen-system of a pool of inputs is
obtained: a dense eigen-decomposition here; streamed / Nyström builders for large pools) and the
closed form that turns it into an error (``pilot.PilotEstimator.from_spectrum`` and
``spectral``). A ``PoolSpectrum`` describes the measure of ``size`` points whose first
``n_pilot`` rows are the pilot inputs (the points with labels on every level).

Contract: ``eta`` (r,) eigenvalues of the normalised kernel operator on the measure (eigenvalues
of K_hat / size, K_hat = Omega^{-1/2} K Omega^{-1/2}), descending, with entries below
``_linalg.RCOND`` x the largest set to 0; ``basis`` (size, r) the matching orthonormal
eigenvectors of K_hat; ``omega`` (size,) the diagonal-normalisation weights (ones when
``normalize == "none"``). Derived: ``phi`` (n_pilot, r) eigenfunctions at the pilot inputs (unit
mean square over the measure), ``w_modes`` (r, r) = V^T Omega V, ``inv_mean`` = mean 1/omega.
Normalisation: ``docs/theory.md`` section 3; its use by the pilot estimator: section 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ntk_mlft._checks import check_choice
from ntk_mlft._linalg import RCOND, check_psd, psd_eigh
from ntk_mlft.estimators._modes import diagonal_weights

__all__ = ["NORMALIZATIONS", "PoolSpectrum", "dense_pool_spectrum"]

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

    def __post_init__(self) -> None:
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        size, rank = self.basis.shape
        if self.eta.shape != (rank,) or self.omega.shape != (size,):
            raise ValueError(f"PoolSpectrum: eta must be (r,) and omega (size,) for a basis of "
                             f"shape (size, r) = {self.basis.shape}; got eta {self.eta.shape}, "
                             f"omega {self.omega.shape}")
        if not 0 < self.n_pilot <= size:
            raise ValueError(f"PoolSpectrum: n_pilot must be in 1..size = {size}; "
                             f"got {self.n_pilot}")

    @property
    def size(self) -> int:
        """Number of points of the measure (pilot + unlabeled)."""
        return int(self.basis.shape[0])

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
        return (self.basis * self.omega[:, None]).T @ self.basis

    def self_terms(self, phi: np.ndarray, hats: np.ndarray) -> np.ndarray:
        """r_i = H (W o phi_i phi_i^T) H^T (n_p, J, J) for eigenfunction values phi (n_p, r) and
        knot interpolation hats (J, r), computed as sum_x omega_x Pi_a(x, x_i) Pi_b(x, x_i) with
        the knot-filtered kernels Pi_a(x, x_i) = sum_rho V_{x rho} H_{a rho} phi_rho(x_i) (each
        mode has at most two knots)."""
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
