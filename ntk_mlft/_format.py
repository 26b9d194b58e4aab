"""Number formatting shared by reports: a mean with its standard error, without ``± nan``."""

from __future__ import annotations

import math

__all__ = ["plus_minus"]


def plus_minus(mean: float, stderr: float | None, fmt: str = ".4g", se_fmt: str = ".2g") -> str:
    """``"0.0751 ± 0.002"``; just ``"0.0751"`` when the standard error is unknown (None or NaN,
    e.g. a single seed or trial: there is no spread to report)."""
    text = format(float(mean), fmt)
    if stderr is None or not math.isfinite(float(stderr)):
        return text
    return f"{text} ± {format(float(stderr), se_fmt)}"
