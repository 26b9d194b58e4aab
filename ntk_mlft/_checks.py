"""Argument checks shared by the whole package: each raises a ValueError/TypeError that names
the argument, says what was wrong and what is allowed."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "as_finite_array",
    "check_choice",
    "check_positive_int",
    "check_positive_scalar",
]


def as_finite_array(name: str, value: Any, *, ndim: int | tuple[int, ...] | None = None,
                    dtype: Any = np.float64) -> np.ndarray:
    """``np.asarray(value, dtype)`` that rejects NaN/inf and (optionally) the wrong rank."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric array-like; got {type(value).__name__}") from err
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have ndim in {allowed}; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        where = tuple(int(i) for i in bad[0]) if bad.size else ()
        raise ValueError(f"{name} must be finite; found {int((~np.isfinite(arr)).sum())} "
                         f"NaN/inf value(s), first at index {where}")
    return arr


def check_positive_scalar(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A finite real > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not np.isscalar(value) or not np.isreal(value):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}; got {value!r}")
    return v


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """An integer > 0 (or >= 0 with ``allow_zero``); floats with integral value are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {value!r} ({type(value).__name__})")
    v = int(value)
    if v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be {bound}; got {v}")
    return v


def check_choice(name: str, value: Any, allowed: tuple[str, ...] | list[str]) -> str:
    """``value`` must be one of ``allowed`` (strings)."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}; got {value!r}")
    return value
