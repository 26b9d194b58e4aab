"""Error models: predicted relative MSE of an MLFT network as a function of samples per level.

An error model maps sample counts ``N = (N_1, ..., N_L)`` (level 1 = coarsest, L = finest) to
the predicted relative mean-squared error against finest-level targets,
``sum ||f(x) - u_L(x)||^2 / sum ||u_L(x)||^2`` (dimensionless). Anything with ``n_levels`` and
``error(counts) -> float`` is an :class:`ErrorModel`; the spectral / pilot estimators of
:mod:`ntk_mlft.estimators` satisfy it, and :class:`PowerLawErrorModel` is the separable model
the allocation uses in closed form (Li, Fan, Ying 2021, MLFT; the MLMC analogy of Giles 2008).

Skipped levels
--------------
A count of 0 at a non-finest level means "no samples at this level": the level-``l``
difference ``d_l = u_l - u_{l-1}`` is then not learned on its own but together with the next
*used* level's data (MLFT fine-tunes on the residual, so the next level's targets carry
``d_l`` along). The finest level must always have ``N_L >= 1``.

For the separable power law this reads: term ``l`` is evaluated at the sample count of the
first used level at or above ``l``,

    E(N) = floor + sum_l coef_l * M_l ** (-exponent_l),   M_l = N_{m(l)},
    m(l) = min{ m >= l : N_m > 0 },

i.e. skipping level ``l`` moves its term into level ``m(l)``'s. (This treats the merged
differences as additive, the same approximation that makes the model separable.) With all
counts positive, ``M_l = N_l`` and the model is the plain sum of per-level power laws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ntk_mlft._checks import as_finite_array

__all__ = ["ErrorModel", "PowerLawErrorModel", "check_counts", "effective_counts"]


@runtime_checkable
class ErrorModel(Protocol):
    """Predicted relative MSE as a function of per-level sample counts.

    ``counts``: (L,) non-negative numbers (ints or floats); the finest level ``>= 1``; a 0 at a
    non-finest level means the level is skipped (its difference is learned with the next used
    level). Returns the predicted relative MSE (dimensionless, ``>= 0``).
    """

    n_levels: int

    def error(self, counts: Any) -> float: ...


def check_counts(counts: Any, n_levels: int, *, name: str = "counts") -> np.ndarray:
    """Validated (L,) float64 counts: finite, ``>= 0``, finest level ``>= 1``.

    Non-integer values are allowed (the continuous relaxation of the allocation evaluates them).
    """
    try:
        arr = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric 1-D array (one count per level); "
                        f"got {type(counts).__name__}") from err
    if arr.shape != (n_levels,):
        raise ValueError(f"{name} must have shape ({n_levels},) (one count per level); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and >= 0; got {arr.tolist()}")
    if arr[-1] < 1:
        raise ValueError(f"{name}: the finest level (level {n_levels}) needs at least 1 sample; got {arr[-1]:g}")
    return arr


def effective_counts(counts: np.ndarray) -> np.ndarray:
    """``M_l = N_{m(l)}`` with ``m(l)`` the first level ``>= l`` whose count is positive.

    Works on (..., L) arrays; the finest count must be positive (see :func:`check_counts`).
    """
    counts = np.asarray(counts, dtype=np.float64)
    out = counts.copy()
    for l in range(counts.shape[-1] - 2, -1, -1):
        out[..., l] = np.where(counts[..., l] > 0, counts[..., l], out[..., l + 1])
    return out


COEF_RANGE = (1e-100, 1e100)
"""Admissible non-zero power-law coefficients (and largest floor): as for costs
(``allocation.costs``), the optimiser takes logarithms and powers of them."""

MAX_EXPONENT = 10.0
"""Largest power-law exponent: coef * N^-p stays a normal float up to ``MAX_COUNT`` samples."""


@dataclass(frozen=True)
class PowerLawErrorModel:
    """Separable power law ``E(N) = floor + sum_l coef_l * N_l ** (-exponent_l)``.

    Attributes:
        coef: (L,) float64, ``>= 0`` — error of level ``l``'s difference at one sample.
        exponent: (L,) float64, ``> 0`` — learning-curve decay rate of level ``l``.
        floor: float ``>= 0`` — error no sample count removes (e.g. finest-grid discretisation
            seen by the network, ridge bias).

    Counts of 0 at non-finest levels follow the skipping rule in the module docstring.
    With ``exponent == 1`` everywhere this is the MLMC variance model ``sum V_l / N_l``.
    """

    coef: np.ndarray
    exponent: np.ndarray
    floor: float = 0.0

    def __post_init__(self) -> None:
        coef = as_finite_array("coef", np.atleast_1d(self.coef), per_level=True)
        exponent = as_finite_array("exponent", np.atleast_1d(self.exponent), per_level=True)
        if coef.size != exponent.size:
            raise ValueError(f"coef and exponent must have the same length (one per level); "
                             f"got {coef.size} and {exponent.size}")
        if np.any(coef < 0):
            raise ValueError(f"coef must be >= 0; got {coef.tolist()}")
        if not np.any(coef > 0):
            raise ValueError(f"coef must have at least one entry > 0 (all zero: every allocation has the same "
                             f"error, nothing to optimise); got {coef.tolist()}")
        tiny = (coef > 0) & ~((coef >= COEF_RANGE[0]) & (coef <= COEF_RANGE[1]))
        if np.any(tiny):
            raise ValueError(f"coef must be 0 or between {COEF_RANGE[0]:g} and {COEF_RANGE[1]:g} (outside, the "
                             f"optimiser's logarithms and powers over- or underflow); got {coef.tolist()}: rescale "
                             "the error unit")
        if np.any(exponent <= 0):
            raise ValueError(f"exponent must be > 0 (errors decrease with more samples); got {exponent.tolist()}")
        if np.any(exponent > MAX_EXPONENT):
            raise ValueError(f"exponent must be at most {MAX_EXPONENT:g} (a learning curve N^-p with larger p "
                             f"underflows to 0 after a few samples); got {exponent.tolist()}")
        if isinstance(self.floor, bool) or not np.isscalar(self.floor):
            raise TypeError(f"floor must be a real number; got {self.floor!r}")
        floor = float(self.floor)
        if not np.isfinite(floor) or floor < 0 or floor > COEF_RANGE[1]:
            raise ValueError(f"floor must be finite and >= 0 (at most {COEF_RANGE[1]:g}); got {self.floor!r}")
        object.__setattr__(self, "coef", coef)
        object.__setattr__(self, "exponent", exponent)
        object.__setattr__(self, "floor", floor)

    @property
    def n_levels(self) -> int:
        return int(self.coef.size)

    def breakdown(self, counts: Any) -> np.ndarray:
        """(L,) contribution ``coef_l * M_l ** (-exponent_l)`` of each level's difference."""
        m = effective_counts(check_counts(counts, self.n_levels))
        return self.coef * m ** (-self.exponent)

    def error(self, counts: Any) -> float:
        """Predicted relative MSE at ``counts`` (L,)."""
        return float(self.floor + self.breakdown(counts).sum())

    def error_many(self, counts: Any) -> np.ndarray:
        """(M,) predicted errors for an (M, L) array of allocations."""
        arr = np.asarray(counts, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.n_levels:
            raise ValueError(f"counts must have shape (M, {self.n_levels}); got {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr[:, -1] < 1):
            raise ValueError("counts must be finite, >= 0, with the finest level >= 1 in every row")
        m = effective_counts(arr)
        return self.floor + (self.coef * m ** (-self.exponent)).sum(axis=1)

    def gradient(self, counts: Any) -> np.ndarray:
        """(L,) ``dE/dN_l`` at strictly positive counts (the skipping rule is not differentiable)."""
        n = check_counts(counts, self.n_levels)
        if np.any(n <= 0):
            raise ValueError(f"gradient needs all counts > 0; got {n.tolist()}")
        return -self.exponent * self.coef * n ** (-self.exponent - 1.0)

    def merged(self, active: Any) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Per used level, the power-law terms it carries when only ``active`` levels are used.

        ``active``: (L,) bools with the finest level True. Returns, for each used level in
        order, ``(coef, exponent)`` arrays of the terms evaluated at that level's count.
        """
        act = np.asarray(active, dtype=bool)
        if act.shape != (self.n_levels,) or not act[-1]:
            raise ValueError(f"active must be (L,) bools with the finest level used; got {act.tolist()}")
        groups, start = [], 0
        for m in np.flatnonzero(act):
            groups.append((self.coef[start:m + 1].copy(), self.exponent[start:m + 1].copy()))
            start = m + 1
        return tuple(groups)
