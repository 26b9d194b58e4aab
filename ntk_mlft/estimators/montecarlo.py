"""Monte-Carlo reference for the MLFT generalization error on a finite pool.

The quantity (defined once, used by every estimator): for per-level sample counts
N = (N_1..N_L), draw independent sample sets X_l of N_l distinct points uniformly from the pool
(without replacement; sets of different levels independent), run the chained kernel regression
of ``ntk_mlft.multilevel`` (f_l = f_{l-1} + P_l(u_l - f_{l-1})), and measure on the whole pool
(its empirical measure is the input distribution)

    E(N) = E_X[ sum_x ||f_L(x) - u_L(x)||^2 ] / sum_x ||u_L(x)||^2        (dimensionless)

This estimate is exact for the pool up to Monte-Carlo noise; ``stderr`` is the standard error
over trials. Trials are vectorised (batched eigen-solves of the (T, N_l, N_l) kernel blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft._validation import check_positive_int
from ntk_mlft.estimators._linalg import check_square, safe_inverse

__all__ = ["MonteCarloResult", "as_level_targets", "montecarlo_error"]


@dataclass(frozen=True)
class MonteCarloResult:
    """counts (M, L); mean, stderr (M,) relative MSE; per_trial (M, T)."""

    counts: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    per_trial: np.ndarray


def as_level_targets(targets: Any, n_pool: int | None = None) -> np.ndarray:
    """Validate per-level targets u_l on a pool: (L, n, ...) -> float64 (L, n, D).

    Raises ValueError for mismatched level shapes, NaN/inf, a pool size other than ``n_pool``,
    or zero-variance finest-level targets (relative error undefined).
    """
    if isinstance(targets, (list, tuple)):
        shapes = {np.shape(t) for t in targets}
        if len(shapes) != 1:
            raise ValueError(f"targets: every level must have the same shape; got "
                             f"{[np.shape(t) for t in targets]}")
    arr = np.asarray(targets, dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(f"targets must have shape (L, n, *output_shape); got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"targets must be finite; found {int((~np.isfinite(arr)).sum())} NaN/inf")
    if n_pool is not None and arr.shape[1] != n_pool:
        raise ValueError(f"targets must have {n_pool} points per level (the kernel's size); "
                         f"got {arr.shape[1]}")
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    if not np.any(arr[-1] != 0):
        raise ValueError("targets: finest-level targets are identically zero; the relative "
                         "error sum||f-u_L||^2/sum||u_L||^2 is undefined")
    return arr


def _check_counts(counts: Any, n_levels: int, n_pool: int) -> np.ndarray:
    c = np.atleast_2d(np.asarray(counts))
    if c.ndim != 2 or c.shape[1] != n_levels:
        raise ValueError(f"counts must have shape (L,) or (M, L) with L = {n_levels}; "
                         f"got {np.shape(counts)}")
    if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c != np.round(c)):
        raise ValueError(f"counts must be non-negative integers; got {counts}")
    c = c.astype(np.int64)
    if np.any(c[:, -1] < 1):
        raise ValueError("counts: the finest level needs at least 1 sample")
    if np.any(c > n_pool):
        raise ValueError(f"counts must not exceed the pool size {n_pool}; got max {c.max()}")
    return c


def montecarlo_error(k_pool: Any, targets: Any, counts: Any, *, ridge: Any = 0.0,
                     n_trials: int = 20, seed: int = 0) -> MonteCarloResult:
    """Monte-Carlo MLFT error on a pool: k_pool (n, n) kernel, targets (L, n, ...), counts (M, L).

    ``ridge``: scalar or (L,) unnormalised ridge per level (K_SS + lambda I); 0 uses the
    minimum-norm interpolant (pseudo-inverse, see ``_linalg``).
    """
    k = check_square("k_pool", k_pool)
    n = k.shape[0]
    u = as_level_targets(targets, n)
    n_levels = u.shape[0]
    c = _check_counts(counts, n_levels, n)
    t_count = check_positive_int("n_trials", n_trials)
    lam = np.broadcast_to(np.asarray(ridge, dtype=np.float64), (n_levels,))
    if np.any(lam < 0) or not np.all(np.isfinite(lam)):
        raise ValueError(f"ridge must be finite and >= 0; got {ridge}")
    d = np.concatenate([u[:1], np.diff(u, axis=0)])              # level differences (L, n, D)
    norm = float(np.sum(u[-1] ** 2))
    rng = np.random.default_rng(seed)
    per_trial = np.zeros((c.shape[0], t_count))
    for m, alloc in enumerate(c):
        err = np.zeros((t_count, n, u.shape[2]))                  # e_l = f_l - u_l on the pool
        for lvl in range(n_levels):
            err = err - d[lvl]
            size = int(alloc[lvl])
            if size == 0:
                continue
            idx = np.argsort(rng.random((t_count, n)), axis=1)[:, :size]     # (T, N)
            kss = k[idx[:, :, None], idx[:, None, :]] + lam[lvl] * np.eye(size)
            evals, evecs = np.linalg.eigh(kss)
            inv = safe_inverse(np.maximum(evals, 0.0))
            resid = -np.take_along_axis(err, idx[:, :, None], axis=1)         # u_l - f_{l-1}
            coef = evecs @ (inv[:, :, None] * (np.swapaxes(evecs, 1, 2) @ resid))
            for t in range(t_count):
                err[t] += k[:, idx[t]] @ coef[t]
        per_trial[m] = np.sum(err ** 2, axis=(1, 2)) / norm
    se = per_trial.std(axis=1, ddof=1) / np.sqrt(t_count) if t_count > 1 else \
        np.full(c.shape[0], np.nan)
    return MonteCarloResult(c, per_trial.mean(axis=1), se, per_trial)
