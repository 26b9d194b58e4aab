"""Argument checks shared by the whole package: each raises a ValueError/TypeError that names
the argument, says what was wrong and what is allowed."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = [
    "as_finite_array",
    "check_choice",
    "check_distinct_inputs",
    "check_error_estimate",
    "check_magnitude",
    "check_memory",
    "check_positive_int",
    "check_positive_scalar",
]


def as_finite_array(name: str, value: Any, *, ndim: int | tuple[int, ...] | None = None,
                    dtype: Any = np.float64, per_level: bool = False) -> np.ndarray:
    """``np.asarray(value, dtype)`` that rejects NaN/inf and (optionally) the wrong rank.

    ``per_level``: a per-level quantity (costs, coefficients): a non-empty 1-D array, returned as
    a copy, whose errors name the offending levels (1-based).

    >>> as_finite_array("costs", [1.0, float("nan")], per_level=True)
    Traceback (most recent call last):
    ...
    ValueError: costs must be finite; level(s) [2] are NaN/inf
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        kind = "a numeric 1-D array (one entry per level)" if per_level else "numeric array-like"
        raise TypeError(f"{name} must be {kind}; got {type(value).__name__}") from err
    if per_level:
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array (one entry per level); got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            bad = [int(i) + 1 for i in np.flatnonzero(~np.isfinite(arr))]
            raise ValueError(f"{name} must be finite; level(s) {bad} are NaN/inf")
        return arr.copy()
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


NEAR_DUPLICATE_RTOL = 1e-9
"""Two input rows closer than this, relative to the larger row norm, are duplicates: what round-off
leaves of one input copied twice (``x`` and ``x * (1 + 1e-15)``); genuinely distinct draws of a
continuous distribution are ~1e6 x farther apart at the pool sizes used here."""


def _near_duplicate_pairs(rows: np.ndarray, rtol: float) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, with ``|rows_i - rows_j| <= rtol * max(|rows_i|, |rows_j|)``.

    O(M log M + candidates x d), no (M, M) array: near pairs are near on a random projection too
    (``|p_i - p_j| <= |rows_i - rows_j| |r|``), so only rows adjacent within that window in the
    projection's sort order are compared."""
    rows = rows.astype(np.float64, copy=False)
    norms = np.linalg.norm(rows, axis=1)
    r = np.random.default_rng(0).normal(size=rows.shape[1])
    p = rows @ r
    order = np.argsort(p, kind="stable")
    ps, ns = p[order], norms[order]
    window = rtol * np.maximum.accumulate(ns[::-1])[::-1] * float(np.linalg.norm(r))  # bounds any later row
    pairs = []
    for a in range(len(order) - 1):
        b = a + 1
        while b < len(order) and ps[b] - ps[a] <= window[a] + 1e-300:
            i, j = order[a], order[b]
            if np.linalg.norm(rows[i] - rows[j]) <= rtol * max(norms[i], norms[j]):
                pairs.append((min(i, j), max(i, j)))
            b += 1
    return pairs


def check_distinct_inputs(name: str, x: Any) -> int:
    """Number of rows of ``x`` (n, ...); ValueError if two rows are identical or identical to
    round-off (closer than :data:`NEAR_DUPLICATE_RTOL` relative to their norm).

    The error estimators treat their inputs as i.i.d. draws from a continuous distribution (the
    pool's empirical measure, ``estimators.pilot``): a repeated input is counted as two
    independent points, which makes the predicted error too optimistic (every input twice: ~4x)
    or, when all rows coincide, meaningless (a rank-1 kernel; negative estimates). Duplicates are
    what a copy-paste, a float32 round trip of a copy or a broken sampler produce, so they are
    refused, with their count and the first pair.
    """
    arr = np.asarray(x)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one input row; got shape {arr.shape}")
    rows = np.ascontiguousarray(arr.reshape(arr.shape[0], -1))
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    n_dup = rows.shape[0] - first.size
    advice = ("the error model needs distinct inputs drawn independently (a repeated input counts twice and "
              "makes the predicted error too optimistic); remove the duplicates")
    if n_dup:
        inverse = np.asarray(inverse).reshape(-1)
        later = int(np.flatnonzero(first[inverse] != np.arange(rows.shape[0]))[0])
        raise ValueError(f"{name}: {n_dup} of {rows.shape[0]} input rows repeat an earlier row "
                         f"(first: row {later} = row {int(first[inverse[later]])}); {advice}")
    if rows.dtype.kind in "fc" and rows.shape[1] > 0:
        pairs = _near_duplicate_pairs(rows, NEAR_DUPLICATE_RTOL)
        if pairs:
            i, j = min(pairs, key=lambda ij: (ij[1], ij[0]))
            n_near = len({b for _, b in pairs})
            raise ValueError(f"{name}: {n_near} of {rows.shape[0]} input rows equal an earlier row up to round-off "
                             f"(relative distance <= {NEAR_DUPLICATE_RTOL:g}; first: row {j} ~ row {i}); {advice}")
    return int(rows.shape[0])


def check_magnitude(name: str, x: Any, low: float = 1e-100, high: float = 1e100) -> None:
    """ValueError unless the root-mean-square of ``x`` lies in ``[low, high]`` (all zeros allowed:
    a separate, meaningful check). Kernels square their inputs and errors square their labels, so
    values outside ~1e+-150 overflow or underflow to inf/0 and make every estimate meaningless."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        return
    peak = float(np.max(np.abs(arr)))
    if peak == 0.0:
        return
    rms = peak * float(np.sqrt(np.mean((arr / peak) ** 2)))
    if not low <= rms <= high:
        raise ValueError(f"{name} has root-mean-square {rms:.3g}, outside [{low:g}, {high:g}]: kernels and errors "
                         "square these values, which then overflow or underflow; rescale it (e.g. to unit "
                         "variance)")


def physical_memory_bytes() -> int:
    """Total physical memory of this machine (0 where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 0


def check_memory(what: str, nbytes: float, hint: str) -> None:
    """ValueError before the work starts if ``what`` needs more than this machine's physical
    memory (``nbytes``, estimated): a size that can only end in swapping or an out-of-memory kill
    after minutes is refused at once, with the estimate and ``hint`` (which option to lower)."""
    total = physical_memory_bytes()
    if total and nbytes > total:
        raise ValueError(f"{what} needs about {nbytes / 2 ** 30:.3g} GiB of memory, more than this machine's "
                         f"{total / 2 ** 30:.3g} GiB; {hint}")


def check_error_estimate(name: str, value: Any) -> Any:
    """``value`` (a predicted relative MSE, scalar or array) if every entry is finite and >= 0.

    A relative MSE is in [0, inf) by definition; an estimate outside it is a bug or degenerate
    inputs, never a number to report, so this raises ValueError instead of letting it through.
    """
    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr) | (arr < 0)
    if np.any(bad):
        shown = arr[bad].reshape(-1)[:3].tolist()
        raise ValueError(f"{name} is outside [0, inf) (got {shown}): a relative MSE cannot be negative or "
                         "non-finite; the error model's inputs are degenerate (check the pilot for duplicate "
                         "or constant inputs and labels) or this is a bug to report")
    return value
