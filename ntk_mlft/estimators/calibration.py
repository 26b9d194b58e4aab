"""Surrogate calibration of the spectral closed form: a few label-free Monte-Carlo draws on the pool.

The closed form maps mode powers to an error through the diagonal deterministic equivalent,
which is wrong by large factors where that equivalent fails (low input dimension, near
ridge-less interpolants, chained levels: docs/theory.md section 9). ``calibrate`` measures the
map itself: it draws surrogate level differences on the pool with the estimated mode powers and
random mode signs (``PoolModes.surrogate``), runs the Monte-Carlo reference (disjoint sets, the
fresh-input error) and the closed form on each draw; the mean difference (MC - closed form) per
allocation is the closed form's propagation error for fields of that spectral content, and the
calibrated prediction is the model's prediction plus it (clipped at 0).

Contract: ``PoolModes.from_kernel(k, normalize)`` holds the pool kernel (n, n) and its
normalised eigen-decomposition (one O(n^3) step; pools up to a few thousand points); mode
coefficients are (L, n, D) in the order of ``PoolModes.evals``. ``calibrate`` needs counts with
sum_l N_l <= n; its cost per allocation is n_draws x n_trials chained solves plus n_draws
closed forms. Result: ``Calibration`` (frozen). Derivation and measured accuracy:
docs/theory.md section 9, ``benchmarks/estimator_suite.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft._checks import check_choice, check_positive_int
from ntk_mlft._linalg import RCOND, check_psd, psd_eigh
from ntk_mlft.estimators._modes import diagonal_weights
from ntk_mlft.estimators.montecarlo import montecarlo_error
from ntk_mlft.estimators.spectral import SpectralEstimator

__all__ = ["Calibration", "PoolModes", "calibrate", "pilot_coefficients"]


@dataclass(frozen=True)
class PoolModes:
    """Pool kernel k (n, n), diagonal weights omega (n,), eigen-pairs evals (n,), evecs (n, n)
    of the normalised kernel (null modes set to 0), W = V^T Omega V (n, n), normalize."""

    k: np.ndarray
    omega: np.ndarray
    evals: np.ndarray
    evecs: np.ndarray
    w_modes: np.ndarray
    normalize: str = "diagonal"

    @classmethod
    def from_kernel(cls, k_pool: Any, normalize: str = "diagonal") -> PoolModes:
        """One eigen-decomposition of the pool kernel, normalised as ``SpectralEstimator``."""
        check_choice("normalize", normalize, ("diagonal", "none"))
        k = check_psd("k_pool", k_pool)
        omega = diagonal_weights("k_pool", k) if normalize == "diagonal" else np.ones(k.shape[0])
        root = np.sqrt(omega)
        evals, evecs = psd_eigh("k_pool", k / np.outer(root, root))
        evals = np.where(evals > RCOND * evals.max(), evals, 0.0)
        return cls(k, omega, evals, evecs, (evecs * omega[:, None]).T @ evecs, normalize)

    @classmethod
    def from_spectrum(cls, spectrum: Any, k_pool: Any) -> PoolModes:
        """From a full-rank ``pool_spectrum.PoolSpectrum`` and the kernel k_pool (size, size) on
        its points in the same order (pilot rows first)."""
        k = check_psd("k_pool", k_pool)
        if spectrum.rank != spectrum.size or k.shape[0] != spectrum.size:
            raise ValueError(f"PoolModes.from_spectrum needs a full-rank spectrum and its pool "
                             f"kernel; got rank {spectrum.rank}, size {spectrum.size}, kernel "
                             f"{k.shape}")
        return cls(k, spectrum.omega, spectrum.eta * spectrum.size, spectrum.basis,
                   spectrum.w_modes, spectrum.normalize)

    @property
    def size(self) -> int:
        return int(self.k.shape[0])

    def coefficients(self, targets: np.ndarray) -> np.ndarray:
        """Mode coefficients a (L, n, D) of the level differences of targets (L, n, D)."""
        d = np.concatenate([targets[:1], np.diff(targets, axis=0)])
        return np.einsum("xp,lxd->lpd", self.evecs, d / np.sqrt(self.omega)[:, None])

    def targets(self, coefs: np.ndarray) -> np.ndarray:
        """Level targets u (L, n, D) whose level differences have mode coefficients coefs."""
        d = np.sqrt(self.omega)[None, :, None] * np.einsum("xp,lpd->lxd", self.evecs, coefs)
        return np.cumsum(d, axis=0)

    def surrogate(self, coefs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Surrogate targets: every mode's coefficients (all levels and outputs together)
        multiplied by an independent random sign, which keeps each mode's (L, L) cross power
        and randomises the phases between modes."""
        signs = rng.choice([-1.0, 1.0], size=self.size)
        return self.targets(coefs * signs[None, :, None])

    def spectral(self, u: np.ndarray, ridge: Any, noise: Any) -> SpectralEstimator:
        return SpectralEstimator.from_decomposition(self.evals, self.evecs, self.omega, u,
                                                    ridge=ridge, noise=noise,
                                                    normalize=self.normalize, w_modes=self.w_modes)


def pilot_coefficients(pilot: Any) -> np.ndarray:
    """Surrogate mode coefficients (L, r, L) of a ``PilotEstimator`` (order of its spectrum):
    per mode a square root B of the estimated (L, L) cross power (``mode_powers``), scaled to
    ``PoolModes`` units (sqrt(size)); the L columns act as outputs, so the cross power summed
    over them is the estimate."""
    if pilot.mode_powers is None:
        raise ValueError("pilot: mode_powers is None (build it with PilotEstimator.from_spectrum)")
    vals, vecs = np.linalg.eigh(np.moveaxis(pilot.mode_powers, -1, 0))      # (r, L), (r, L, L)
    root = vecs * np.sqrt(np.maximum(vals, 0.0))[:, None, :]
    return np.sqrt(pilot.pool_size) * np.moveaxis(root, 0, 1)


@dataclass(frozen=True)
class Calibration:
    """Per allocation (rows of counts (M, L)): the model's prediction; the calibrated
    prediction corrected = model + shift, shift = mean over draws of (MC - closed form) on the
    surrogates (relative to the model's norm), with its standard error over the draws;
    ``ratio`` = mean MC / mean closed form (the multiplicative variant, NaN where the closed
    form's mean is not positive); n_draws, n_trials."""

    counts: np.ndarray
    model: np.ndarray
    shift: np.ndarray
    corrected: np.ndarray
    corrected_stderr: np.ndarray
    ratio: np.ndarray
    n_draws: int
    n_trials: int


def surrogate_draws(modes: PoolModes, coefs: np.ndarray, counts: np.ndarray, *, ridge: Any,
                    noise: Any = 0.0, n_draws: int = 6, n_trials: int = 4, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per surrogate draw of coefs (L, n, D): the Monte-Carlo fresh error and the closed form's,
    both in absolute units (times the draw's mean ||u_L||^2), (n_draws, M) each."""
    rng = np.random.default_rng(seed)
    mc, cf = [], []
    for draw in range(n_draws):
        u = modes.surrogate(coefs, rng)
        norm = float(np.mean(np.sum(u[-1] ** 2, -1)))
        res = montecarlo_error(modes.k, u, counts, ridge=ridge, noise=noise, n_trials=n_trials,
                               seed=seed + 1 + draw, sets="disjoint")
        mc.append(res.fresh_mean * norm)
        cf.append(modes.spectral(u, ridge, noise).error_many(counts) * norm)
    return np.array(mc), np.array(cf)


def calibrate(model: Any, modes: PoolModes, coefs: np.ndarray, counts: Any, *, ridge: Any,
              noise: Any = 0.0, n_draws: int = 6, n_trials: int = 4, seed: int = 0
              ) -> Calibration:
    """Calibrated predictions of ``model`` (an ``ErrorModel`` on the pool of ``modes``) at
    counts (M, L), from surrogates of the mode coefficients coefs (L, n, D) (``PoolModes``:
    ``coefficients`` of known targets, or ``pilot.surrogate_coefficients``). ``ridge``,
    ``noise`` as ``montecarlo_error``; sum_l N_l <= n."""
    n_draws = check_positive_int("n_draws", n_draws)
    if n_draws < 2:
        raise ValueError(f"n_draws must be >= 2 (standard error over draws); got {n_draws}")
    check_positive_int("n_trials", n_trials)
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    if coefs.ndim != 3 or coefs.shape[1] != modes.size:
        raise ValueError(f"coefs must have shape (L, {modes.size}, D); got {coefs.shape}")
    pred = np.asarray(model.error_many(c), dtype=np.float64)
    mc, cf = surrogate_draws(modes, coefs, c.astype(np.int64), ridge=ridge, noise=noise,
                             n_draws=n_draws, n_trials=n_trials, seed=seed)
    norm = float(np.mean(np.sum(modes.targets(coefs)[-1] ** 2, -1)))   # the coefs' own norm
    diff = (mc - cf) / norm
    shift = diff.mean(0)
    stderr = diff.std(0, ddof=1) / np.sqrt(n_draws)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(cf.mean(0) > 0, mc.mean(0) / cf.mean(0), np.nan)
    corrected = np.maximum(pred + shift, 0.0)
    return Calibration(c, pred, shift, corrected, stderr, ratio, n_draws, n_trials)
