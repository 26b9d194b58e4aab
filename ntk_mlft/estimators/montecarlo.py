"""Monte-Carlo reference for the MLFT generalization error on a finite pool.

The quantities (defined once, used by every estimator): for per-level sample counts
N = (N_1..N_L), draw sample sets X_l of N_l distinct points uniformly from the pool (without
replacement; ``sets``: the levels' sets independent of each other, or disjoint), run the chained
kernel regression of ``ntk_mlft.predict.multilevel`` (f_l = f_{l-1} + P_l(u_l - f_{l-1})), and measure

    pool:  E(N) = E_X[ sum_x ||f_L(x) - u_L(x)||^2 ] / sum_x ||u_L(x)||^2   over the whole pool,
    fresh: the same sum over the pool points outside every X_l (numerator and denominator),

both dimensionless. The fresh error is the held-out error of docs/design.md (given the sets, the
remaining points of an i.i.d. pool are fresh draws from the input distribution); the pool error
counts the training points too and is what the spectral closed form computes before its
fresh-input step (``fresh``). Both are exact for the pool up to Monte-Carlo noise; the standard
errors are over trials. Trials are vectorised: per allocation and level one batched solve of
the (T, N_l, N_l) kernel blocks and one (n, n) x (n, T D) product for the predictions on the pool.

Degenerate targets: the error is normalised by sum ||u_L||^2, not by a variance, so a constant
non-zero target is a legitimate (easy) target, and only an identically zero finest level makes
the relative error undefined; that is the one case refused. The kernel must be PSD (a Cholesky
test; the smallest eigenvalue is reported when it fails).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft._checks import check_choice, check_positive_int
from ntk_mlft._linalg import RCOND, check_psd, safe_inverse

__all__ = ["MonteCarloResult", "as_level_targets", "montecarlo_error", "per_level_nonneg"]


@dataclass(frozen=True)
class MonteCarloResult:
    """counts (M, L); mean, stderr (M,) relative MSE on the whole pool; per_trial (M, T);
    fresh_mean, fresh_stderr (M,), fresh_per_trial (M, T): the same on the pool points outside
    every level's training set only (numerator and denominator), i.e. the fresh-input error;
    NaN where no point with a non-zero target is left."""

    counts: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    per_trial: np.ndarray
    fresh_mean: np.ndarray
    fresh_stderr: np.ndarray
    fresh_per_trial: np.ndarray


def as_level_targets(targets: Any, n_pool: int | None = None) -> np.ndarray:
    """Validate per-level targets u_l on a pool: (L, n, ...) -> float64 (L, n, D).

    Raises ValueError for mismatched level shapes, NaN/inf, a pool size other than ``n_pool``,
    or an identically zero finest level (the relative error divides by sum ||u_L||^2; a constant
    non-zero target is allowed, see the module docstring).
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


def per_level_nonneg(name: str, value: Any, n_levels: int) -> np.ndarray:
    """Scalar or (L,) finite values >= 0 -> float64 (L,); ValueError naming ``name`` otherwise."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size != n_levels):
        raise ValueError(f"{name} must be a scalar or have one entry per level ({n_levels}); "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and >= 0; got {value}")
    return np.broadcast_to(arr, (n_levels,)).copy()


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


def _level_fit(k: np.ndarray, idx: np.ndarray, resid: np.ndarray, lam: float) -> np.ndarray:
    """Coefficients alpha (T, N, D) of (K_SS + lam I) alpha = resid for T sample sets idx (T, N).

    Batched LU solve when lam is well above round-off (K_SS + lam I is then positive definite
    with condition number <= 1/RCOND); otherwise the pseudo-inverse on the resolved range
    (``_linalg``: the minimum-norm interpolant of ridge-less gradient flow).
    """
    size = idx.shape[1]
    kss = k[idx[:, :, None], idx[:, None, :]]
    if lam > RCOND * float(np.max(np.diagonal(kss, axis1=1, axis2=2))) * size:
        return np.linalg.solve(kss + lam * np.eye(size), resid)
    evals, evecs = np.linalg.eigh(kss + lam * np.eye(size))
    inv = safe_inverse(np.maximum(evals, 0.0))
    return evecs @ (inv[:, :, None] * (np.swapaxes(evecs, 1, 2) @ resid))


def montecarlo_error(k_pool: Any, targets: Any, counts: Any, *, ridge: Any = 0.0,
                     noise: Any = 0.0, n_trials: int = 20, seed: int = 0,
                     sets: str = "independent") -> MonteCarloResult:
    """Monte-Carlo MLFT error on a pool: k_pool (n, n) PSD kernel, targets (L, n, ...), counts (M, L).

    ``ridge``: scalar or (L,) unnormalised ridge per level (K_SS + lambda I); 0 uses the
    minimum-norm interpolant (pseudo-inverse, see ``_linalg``). ``noise``: scalar or (L,)
    label-noise variance per output component: level-l training labels are u_l(x) + eps with
    eps ~ N(0, noise_l) independent per sample, component, level and trial; the error is still
    measured against the noiseless u_L. The result holds the whole-pool error and the
    fresh-input error (pool points outside every level's training set; module docstring).
    ``sets``: "independent" (each level's set drawn from the whole pool, so sets of different
    levels may share points) or "disjoint" (no point in two sets, which is what inputs drawn
    from a continuous distribution give; needs sum_l N_l <= n). Cost per allocation and level:
    one batched (T, N_l, N_l) solve and one (n, n) x (n, T D) product.
    """
    k = check_psd("k_pool", k_pool)
    n = k.shape[0]
    u = as_level_targets(targets, n)
    n_levels, n_out = u.shape[0], u.shape[2]
    c = _check_counts(counts, n_levels, n)
    t_count = check_positive_int("n_trials", n_trials)
    lam = per_level_nonneg("ridge", ridge, n_levels)
    sig2 = per_level_nonneg("noise", noise, n_levels)
    check_choice("sets", sets, ("independent", "disjoint"))
    if sets == "disjoint" and np.any(c.sum(1) > n):
        raise ValueError(f"counts: disjoint sets need sum_l N_l <= the pool size {n}; got "
                         f"{int(c.sum(1).max())}")
    d = np.concatenate([u[:1], np.diff(u, axis=0)])              # level differences (L, n, D)
    power = np.sum(u[-1] ** 2, axis=1)                            # ||u_L(x)||^2 (n,)
    rng = np.random.default_rng(seed)
    per_trial = np.zeros((c.shape[0], t_count))
    fresh = np.zeros((c.shape[0], t_count))
    for m, alloc in enumerate(c):
        err = np.zeros((t_count, n, n_out))                       # e_l = f_l - u_l on the pool
        keep = np.ones((t_count, n))                              # points outside training sets
        order = np.argsort(rng.random((t_count, n)), axis=1) if sets == "disjoint" else None
        start = 0
        for lvl in range(n_levels):
            err = err - d[lvl]
            size = int(alloc[lvl])
            if size == 0:
                continue
            if sets == "disjoint":
                idx = order[:, start:start + size]
                start += size
            else:
                idx = np.argsort(rng.random((t_count, n)), axis=1)[:, :size]  # (T, N) distinct
            np.put_along_axis(keep, idx, 0.0, axis=1)
            resid = -np.take_along_axis(err, idx[:, :, None], axis=1)         # u_l - f_{l-1}
            if sig2[lvl] > 0:
                resid = resid + np.sqrt(sig2[lvl]) * rng.standard_normal(resid.shape)
            alpha = np.zeros((t_count, n, n_out))                 # coefficients on the pool
            np.put_along_axis(alpha, idx[:, :, None], _level_fit(k, idx, resid, lam[lvl]), axis=1)
            err += np.moveaxis((k @ np.moveaxis(alpha, 0, 1).reshape(n, -1)).reshape(
                n, t_count, n_out), 1, 0)
        sq = np.sum(err ** 2, axis=2)
        per_trial[m] = sq.sum(1) / power.sum()
        left = keep @ power
        with np.errstate(invalid="ignore", divide="ignore"):
            fresh[m] = np.where(left > 0, (sq * keep).sum(1) / left, np.nan)
    def stderr(v: np.ndarray) -> np.ndarray:
        return v.std(axis=1, ddof=1) / np.sqrt(t_count) if t_count > 1 else np.full(v.shape[0], np.nan)

    return MonteCarloResult(c, per_trial.mean(axis=1), stderr(per_trial), per_trial,
                            fresh.mean(axis=1), stderr(fresh), fresh)
