"""Kernel modes on a pool, shared by the spectral and pilot estimators.

Diagonal normalisation: omega(x) = K(x, x) / mean_x K(x, x) and the constant-diagonal kernel
K_hat = Omega^{-1/2} K Omega^{-1/2}; regression with K equals regression with K_hat on
y / sqrt(omega) measured in the omega-weighted norm, whose mean error field needs the weighted
Gram G^{jk}_{bc} of the mode entries (b, c: runs of modes with eigenvalues within 1 + rtol,
``runs``). Derivation: ``docs/theory.md`` section 3.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binned_gram", "diagonal_weights", "hat_matrix", "knot_grid", "projected_gram", "runs"]


def diagonal_weights(name: str, k: np.ndarray) -> np.ndarray:
    """omega = diag(K) / mean diag(K) (n,); ValueError if some K(x, x) <= 0 (cannot normalise)."""
    diag = np.diagonal(k).astype(np.float64)
    if np.any(diag <= 0):
        i = int(np.argmin(diag))
        raise ValueError(f"{name}: diagonal normalisation needs K(x, x) > 0 for every point; "
                         f"entry {i} is {diag[i]:.3e} (use normalize='none')")
    return diag / diag.mean()


def runs(eta_sorted: np.ndarray, rtol: float) -> np.ndarray:
    """Start indices of runs of ascending eigenvalues with max/min <= 1 + rtol (zeros: one run).

    ``rtol = 0`` gives one run per mode."""
    if rtol == 0:
        return np.arange(eta_sorted.size)
    starts = [0]
    limit = np.log1p(rtol)
    log_eta = np.log(np.maximum(eta_sorted, np.finfo(float).tiny))
    for i in range(1, eta_sorted.size):
        if eta_sorted[i] == 0 and eta_sorted[starts[-1]] == 0:
            continue
        if eta_sorted[starts[-1]] == 0 or log_eta[i] - log_eta[starts[-1]] > limit:
            starts.append(i)
    return np.array(starts)


def binned_gram(w: np.ndarray, a: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """G^{jk}_{bc} = sum over runs b, c of W_{rho rho'} <a_{j rho}, a_{k rho'}>.

    w (P, P) mode-space weight matrix, a (L, P, D) mode components (already in run order),
    starts (B,) run starts. Returns (L, L, B, B); cost L (L + 1) / 2 (P^2 D) flops.
    """
    n_levels = a.shape[0]
    out = np.empty((n_levels, n_levels, starts.size, starts.size))
    for j in range(n_levels):
        for k in range(j, n_levels):
            h = w * (a[j] @ a[k].T)
            g = np.add.reduceat(np.add.reduceat(h, starts, axis=0), starts, axis=1)
            out[j, k], out[k, j] = g, g.T
    return out


def projected_gram(w: np.ndarray, a: np.ndarray, hats: np.ndarray) -> np.ndarray:
    """H (W o <a_j, a_k>) H^T per level pair: w (P, P), a (L, P, D), hats (J, P) -> (L, L, J, J)."""
    n_levels = a.shape[0]
    out = np.empty((n_levels, n_levels, hats.shape[0], hats.shape[0]))
    for j in range(n_levels):
        for k in range(j, n_levels):
            g = hats @ (w * (a[j] @ a[k].T)) @ hats.T
            out[j, k], out[k, j] = g, g.T
    return out


def knot_grid(eta: np.ndarray, ratio: float) -> np.ndarray:
    """Knots for ``hat_matrix``: 0 (null modes), then eigenvalues from the smallest positive to
    the largest, geometrically spaced with ratio <= ``ratio`` (J,)."""
    pos = eta[eta > 0]
    n_steps = max(1, int(np.ceil(np.log(pos.max() / pos.min()) / np.log(ratio))))
    return np.concatenate([[0.0], np.geomspace(pos.min(), pos.max(), n_steps + 1)])


def hat_matrix(eta: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """H (J, P): linear interpolation in log eta from ``knot_grid`` knots to eigenvalues eta (P,).

    A function c(eta) (the mean-field coefficients of ``spectral``) is represented by its knot
    values beta_j = c(knot_j): c(eta_rho) ~ sum_j H[j, rho] beta_j. Zero eigenvalues use the
    zero knot alone; eigenvalues outside the positive knots take the nearest one; columns sum
    to 1."""
    h = np.zeros((knots.size, eta.size))
    zero = eta <= 0
    h[0, zero] = 1.0
    cols = np.flatnonzero(~zero)
    logk = np.log(knots[1:])
    if logk.size == 1:
        h[1, cols] = 1.0
        return h
    x = np.clip(np.log(eta[cols]), logk[0], logk[-1])
    hi = np.clip(np.searchsorted(logk, x), 1, logk.size - 1)      # x in [logk[hi-1], logk[hi]]
    frac = (x - logk[hi - 1]) / (logk[hi] - logk[hi - 1])
    h[hi, cols] = 1.0 - frac                                      # knot index = logk index + 1
    h[hi + 1, cols] = frac
    return h
