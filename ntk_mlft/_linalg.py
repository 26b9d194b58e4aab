"""Linear algebra shared by predictions and estimators: PSD checks and guarded eigen-solves.

Jitter policy (documented once, used everywhere): a kernel matrix is accepted when it is
symmetric (to ``1e-8`` relative) and its smallest eigenvalue is ``>= -psd_rtol * max|eig|``
(round-off). Eigenvalues in ``[-psd_rtol*max, rcond*max]`` are then treated as exactly zero,
i.e. linear solves use the pseudo-inverse on the numerically resolved range. For ridge-less
regression this is the t -> infinity limit of gradient flow started at zero (the minimum-norm
interpolant), so duplicated inputs give the average of their labels instead of garbage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PSD_RTOL", "RCOND", "check_psd", "check_square", "psd_eigh", "safe_inverse"]

PSD_RTOL = 1e-8
RCOND = 1e-12


def check_square(name: str, k: np.ndarray) -> np.ndarray:
    """(..., n, n) finite, symmetric float64 array, else ValueError naming ``name``."""
    k = np.asarray(k, dtype=np.float64)
    if k.ndim < 2 or k.shape[-1] != k.shape[-2]:
        raise ValueError(f"{name} must be a square (n, n) kernel matrix; got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{name} must be finite; found {int((~np.isfinite(k)).sum())} NaN/inf")
    scale = max(float(np.max(np.abs(k))), np.finfo(float).tiny)
    asym = float(np.max(np.abs(k - np.swapaxes(k, -1, -2))))
    if asym > 1e-8 * scale:
        raise ValueError(f"{name} must be symmetric; max |K - K^T| = {asym:.3e}")
    return 0.5 * (k + np.swapaxes(k, -1, -2))


def psd_eigh(name: str, k: np.ndarray, *, psd_rtol: float = PSD_RTOL) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a PSD kernel matrix (batched over leading axes).

    Returns ``(evals, evecs)`` with eigenvalues ascending, round-off negatives clipped to 0.
    Raises ValueError reporting the smallest eigenvalue when it is below ``-psd_rtol*max|eig|``.
    """
    k = check_square(name, k)
    evals, evecs = np.linalg.eigh(k)
    top = np.max(np.abs(evals), axis=-1, keepdims=True)
    low = evals[..., :1]
    if np.any(low < -psd_rtol * np.maximum(top, np.finfo(float).tiny)):
        raise ValueError(f"{name} is not positive semi-definite: smallest eigenvalue "
                         f"{float(np.min(low)):.6e} (largest {float(np.max(top)):.6e}); "
                         f"allowed round-off is -{psd_rtol:g} * largest")
    return np.maximum(evals, 0.0), evecs


def check_psd(name: str, k: np.ndarray, *, psd_rtol: float = PSD_RTOL) -> np.ndarray:
    """``check_square`` plus the PSD rule of ``psd_eigh`` without a full eigen-solve when it passes.

    A Cholesky factorisation of K + psd_rtol * max(diag K) I succeeding proves
    lambda_min >= -psd_rtol * max diag >= -psd_rtol * lambda_max (the rule); only when it fails
    is the exact test ``psd_eigh`` run (it raises, reporting the smallest eigenvalue, or accepts).
    Cost: one (n, n) Cholesky (n^3 / 3 flops) instead of an eigen-decomposition.
    """
    k = check_square(name, k)
    shift = psd_rtol * max(float(np.max(np.diagonal(k, axis1=-2, axis2=-1))), np.finfo(float).tiny)
    try:
        np.linalg.cholesky(k + shift * np.eye(k.shape[-1]))
    except np.linalg.LinAlgError:
        psd_eigh(name, k, psd_rtol=psd_rtol)
    return k


def safe_inverse(evals: np.ndarray, *, rcond: float = RCOND) -> np.ndarray:
    """1/evals on the resolved range (evals > rcond * max), 0 elsewhere (pseudo-inverse)."""
    top = np.max(evals, axis=-1, keepdims=True)
    keep = evals > rcond * top
    return np.where(keep, 1.0 / np.where(keep, evals, 1.0), 0.0)


def kernel_float64(kernel_fn: Any, x: Any, get: str = "ntk") -> np.ndarray:
    """``kernel_fn(x, None, get=get)`` (n, n) computed with float64 enabled for the call
    (``jax.enable_x64``), whatever the global ``jax_enable_x64`` setting: a float32 NTK is
    asymmetric at ~1e-3 and its small eigenvalues, which the learning curves need, are noise."""
    import jax

    from ntk_mlft._checks import check_memory

    n = len(x)
    check_memory(f"the {n} x {n} kernel matrix (and its eigen-decomposition)", 3 * 8.0 * n * n,
                 "use fewer inputs (pilot, unlabeled or check pool)")
    with jax.enable_x64(True):
        return np.asarray(kernel_fn(np.asarray(x, dtype=np.float64), None, get=get), dtype=np.float64)
