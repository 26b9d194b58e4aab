"""What the networks of the transfer study see: periodic-system data on a coarse ``size``^2 grid.

``network_inputs(x, n_input, size)`` -> (N, size, size, 7) channels-last images: the source
(Fourier-truncated to the size^2 grid's modes, i.e. the trigonometric interpolant's low modes,
sampled at its nodes) and six constant channels with the operator coefficients scaled to O(1),
(D11, D12, D22) / 0.01, (b1, b2), c / 10, then divided by ``size`` so that, summed over the
size^2 pixels, the coefficients weigh about as much as the source in a flattened input (an MLP's
dot products) instead of size^2 times more. ``network_targets(y, size)`` -> (N, size^2): the
solution truncated the same way. Both are linear, exact for band-limited fields.
"""

from __future__ import annotations

import numpy as np

from ntk_mlft._checks import check_positive_int
from ntk_mlft.problems._periodic import N_COEF, resample, split_inputs

__all__ = ["COEF_SCALE", "network_inputs", "network_targets", "truncate_field"]

COEF_SCALE = np.array([100.0, 100.0, 100.0, 1.0, 1.0, 0.1])


def truncate_field(field: np.ndarray, size: int) -> np.ndarray:
    """(N, m, m) periodic nodal values -> (N, size, size): Fourier modes |k_i| < size / 2 kept."""
    size = check_positive_int("size", size)
    m = field.shape[-1]
    if size > m:
        raise ValueError(f"size must be <= the data grid ({m}); got {size}")
    spec = resample(np.fft.rfft2(field, norm="forward"), m, size)
    return np.fft.irfft2(spec, s=(size, size), norm="forward")


def network_inputs(x: np.ndarray, n_input: int, size: int) -> np.ndarray:
    """Flat periodic-system inputs (N, n_input^2 + 6) -> images (N, size, size, 1 + 6)."""
    f, coef = split_inputs(x, n_input)
    img = truncate_field(f, size)
    const = np.broadcast_to((coef * COEF_SCALE / size)[:, None, None, :], (*img.shape, N_COEF))
    return np.concatenate([img[..., None], const], axis=-1)


def network_targets(y: np.ndarray, size: int) -> np.ndarray:
    """Solutions (N, m, m) -> (N, size^2)."""
    out = truncate_field(np.asarray(y, dtype=np.float64), size)
    return out.reshape(out.shape[0], -1)
