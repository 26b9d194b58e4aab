"""Filter spectra of conv kernels (Subel et al. 2023): zero-pad each kernel to the LES grid, FFT, classify.

A kernel ``W[..., c_in, c_out]`` (spatial shape ``(k,)*d``) is zero-padded to ``grid`` and Fourier
transformed; ``|H(k)|`` is averaged over integer shells of ``|k|``. Classification of the shell
profile ``h(s)``, s = 0 .. s_max: **low-pass** if its maximum is at s <= s_max / 4, **high-pass**
if at s >= 3 s_max / 4, **band-pass** otherwise. The change of a filter in transfer is the
Frobenius norm of its difference relative to the base filter's norm.
"""

from __future__ import annotations

import numpy as np

__all__ = ["classify_filters", "filter_change", "shell_profiles"]

CLASSES = ("low", "band", "high")


def shell_profiles(weights: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
    """(n_filters, s_max + 1) shell-averaged |H| of every (c_in, c_out) filter of ``weights``."""
    w = np.asarray(weights, dtype=np.float64)
    d = len(grid)
    filt = w.reshape(*w.shape[:d], -1)
    padded = np.zeros((*grid, filt.shape[-1]))
    padded[tuple(slice(0, s) for s in w.shape[:d])] = filt
    mag = np.abs(np.fft.fftn(padded, axes=tuple(range(d))))
    ks = np.meshgrid(*[np.fft.fftfreq(g, 1.0 / g) for g in grid], indexing="ij")
    shell = np.rint(np.sqrt(sum(k ** 2 for k in ks))).astype(int).ravel()
    s_max = min(grid) // 2
    keep = shell <= s_max
    counts = np.bincount(shell[keep], minlength=s_max + 1)
    flat = mag.reshape(-1, filt.shape[-1])[keep]
    return np.stack([np.bincount(shell[keep], weights=flat[:, j], minlength=s_max + 1) / counts
                     for j in range(flat.shape[1])])


def classify_filters(weights: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
    """(n_filters,) labels in ``CLASSES`` from the position of each shell profile's maximum."""
    prof = shell_profiles(weights, grid)
    s_max = prof.shape[1] - 1
    peak = np.argmax(prof, axis=1)
    return np.where(peak <= s_max / 4, "low", np.where(peak >= 3 * s_max / 4, "high", "band"))


def filter_change(before: np.ndarray, after: np.ndarray, spatial_dims: int) -> np.ndarray:
    """(n_filters,) ``||W_after - W_before||_F / ||W_before||_F`` per (c_in, c_out) filter."""
    b = np.asarray(before, dtype=np.float64).reshape(*before.shape[:spatial_dims], -1)
    a = np.asarray(after, dtype=np.float64).reshape(*after.shape[:spatial_dims], -1)
    axes = tuple(range(spatial_dims))
    return np.sqrt(np.sum((a - b) ** 2, axis=axes) / np.sum(b ** 2, axis=axes))
