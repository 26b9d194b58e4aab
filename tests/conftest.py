"""Test configuration: float64 on, warnings are errors (setup.cfg), round-off tolerances by dtype."""

from __future__ import annotations

import os

os.environ.setdefault("NTK_MLFT_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

# Relative round-off tolerances keyed by dtype, for comparisons of two exact computations of the same
# quantity (``tol(x.dtype)``). Comparisons with an approximation (Monte-Carlo, finite differences,
# truncated series, finite width) are not round-off: each states its own tolerance beside the
# assertion, derived from the approximation's error.
TOLERANCES = {
    np.dtype(np.float64): 1e-10,
    np.dtype(np.float32): 1e-4,
}


def tol(dtype) -> float:
    """Relative tolerance for comparisons carried out in ``dtype``."""
    return TOLERANCES[np.dtype(dtype)]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
