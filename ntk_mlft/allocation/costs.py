"""Cost tables: seconds per training sample at each level of a multi-level hierarchy.

MLFT's budget constraint is ``sum_l N_l * c_l <= B`` where ``c_l`` is the cost (seconds) of
one label at level ``l`` (1 = coarsest, L = finest). A :class:`CostTable` holds ``c`` together
with the grid size of each level; it is measured by :func:`ntk_mlft.problems.measure_costs` or
supplied by the user as a CSV with the columns ``level,grid,cost_seconds`` (one row per level,
levels exactly ``1..L``)::

    level,grid,cost_seconds
    1,32,0.0004
    2,64,0.0011
    3,128,0.0042

Costs must be finite, positive and strictly increasing with the level (a finer level that is
not more expensive makes the coarse level pointless and usually signals a mistaken table).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._checks import as_finite_array
from ntk_mlft._io import read_csv_records, write_text_atomic

__all__ = ["CostTable", "as_cost_array"]

_COLUMNS = ("level", "grid", "cost_seconds")
_MIN_COST = 1e-100  # seconds; costs in [_MIN_COST, 1 / _MIN_COST] keep budget / cost and cost * count finite


def _validated_costs(name: str, costs: Any) -> np.ndarray:
    """(L,) float64 costs: 1-D, non-empty, finite, > 0, strictly increasing."""
    arr = as_finite_array(name, costs, per_level=True)
    if np.any(arr <= 0):
        bad = [int(i) + 1 for i in np.flatnonzero(arr <= 0)]
        raise ValueError(f"{name} must be > 0 seconds per sample; level(s) {bad} have cost <= 0")
    if np.any(arr < _MIN_COST) or np.any(arr > 1 / _MIN_COST):
        bad = [int(i) + 1 for i in np.flatnonzero((arr < _MIN_COST) | (arr > 1 / _MIN_COST))]
        raise ValueError(f"{name} must be between {_MIN_COST:g} and {1 / _MIN_COST:g} seconds per sample "
                         f"(outside, budgets and counts overflow); level(s) {bad} have "
                         f"{[float(arr[i - 1]) for i in bad]}: rescale the unit")
    steps = np.diff(arr)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(f"{name} must be strictly increasing with the level (finer = more expensive); "
                         f"level {i + 2} costs {arr[i + 1]:.6g} s <= level {i + 1}'s {arr[i]:.6g} s")
    return arr


def _validated_grid(grid: Any, n_levels: int) -> np.ndarray:
    arr = np.asarray(grid)
    if arr.ndim != 1 or arr.size != n_levels:
        raise ValueError(f"grid must be a 1-D array with one entry per level ({n_levels}); got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"grid must hold positive integers (grid points per level); got {arr.tolist()}")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"grid must hold positive integers (grid points per level); got dtype {arr.dtype}")
    if np.any(arr <= 0):
        raise ValueError(f"grid must hold positive integers (grid points per level); got {arr.tolist()}")
    return arr.astype(np.int64)


@dataclass(frozen=True)
class CostTable:
    """Seconds per sample at each level.

    Attributes:
        level: int (L,), exactly ``1..L`` in order.
        grid: int (L,), grid points (cells) of each level (informational; > 0).
        cost_seconds: float (L,), seconds per sample; finite, > 0, strictly increasing.
    """

    level: np.ndarray
    grid: np.ndarray
    cost_seconds: np.ndarray

    def __post_init__(self) -> None:
        costs = _validated_costs("cost_seconds", self.cost_seconds)
        n = costs.size
        level = np.asarray(self.level)
        if level.ndim != 1 or level.size != n or level.dtype.kind not in "iuf" \
                or not np.array_equal(level, np.arange(1, n + 1)):
            raise ValueError(f"level must be exactly 1..{n} in order (one row per level, none missing); "
                             f"got {level.tolist()}")
        object.__setattr__(self, "level", np.arange(1, n + 1, dtype=np.int64))
        object.__setattr__(self, "grid", _validated_grid(self.grid, n))
        object.__setattr__(self, "cost_seconds", costs)

    @property
    def n_levels(self) -> int:
        return int(self.cost_seconds.size)

    @classmethod
    def from_costs(cls, costs: Any, grid: Any = None) -> CostTable:
        """Table from a plain (L,) array of seconds per sample; ``grid`` defaults to ``2**l``."""
        arr = _validated_costs("costs", costs)
        n = arr.size
        grid = 2 ** np.arange(1, n + 1) if grid is None else grid
        return cls(level=np.arange(1, n + 1), grid=grid, cost_seconds=arr)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write ``level,grid,cost_seconds`` (header + one row per level) atomically."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(_COLUMNS)
        for lv, g, c in zip(self.level, self.grid, self.cost_seconds):
            writer.writerow((int(lv), int(g), repr(float(c))))
        return write_text_atomic(path, buf.getvalue())

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> CostTable:
        """Read a CSV with columns ``level,grid,cost_seconds`` (any row order; levels must be 1..L)."""
        rows = []
        for lineno, row in read_csv_records(path, "cost table", _COLUMNS,
                                            ",".join(_COLUMNS)):
            try:
                rows.append((int(row["level"]), int(row["grid"]), float(row["cost_seconds"])))
            except ValueError as err:
                raise ValueError(f"cost table {path} line {lineno}: level and grid must be integers and "
                                 f"cost_seconds a number; got {row}") from err
        if not rows:
            raise ValueError(f"cost table {path} has no rows; expected one row per level 1..L")
        rows.sort(key=lambda r: r[0])
        levels = [r[0] for r in rows]
        n = len(rows)
        if levels != list(range(1, n + 1)):
            expected = set(range(1, max(max(levels), n) + 1))
            missing_levels = sorted(expected - set(levels))
            dup = sorted({lv for lv in levels if levels.count(lv) > 1})
            raise ValueError(f"cost table {path} must have exactly one row for each level 1..L; "
                             f"got levels {levels} (missing {missing_levels}, duplicated {dup})")
        try:
            return cls(level=np.array(levels), grid=np.array([r[1] for r in rows], dtype=np.int64),
                       cost_seconds=np.array([r[2] for r in rows]))
        except OverflowError:
            raise ValueError(f"cost table {path}: grid must be at most {np.iinfo(np.int64).max} points; got "
                             f"{max(r[1] for r in rows)}") from None
        except ValueError as err:
            raise ValueError(f"cost table {path}: {err}") from None


def as_cost_array(costs: CostTable | Any, n_levels: int | None = None) -> np.ndarray:
    """Validated (L,) float64 seconds per sample from a :class:`CostTable` or array-like.

    Raises ValueError if the costs are not finite, positive and strictly increasing, or if
    ``n_levels`` is given and differs from their number.
    """
    arr = costs.cost_seconds.copy() if isinstance(costs, CostTable) else _validated_costs("costs", costs)
    if n_levels is not None and arr.size != n_levels:
        raise ValueError(f"costs must have one entry per level ({n_levels} levels); got {arr.size}")
    return arr
