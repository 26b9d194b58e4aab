"""The problem contract: a PDE solution map with a grid hierarchy of levels 1 (coarsest) .. L (finest).

A problem draws inputs in ONE level-independent representation (a random field on a fixed
input grid, shape ``input_shape``); ``solve(inputs, level)`` restricts each input to the
level-``l`` grid, solves there and interpolates the solution back to a fixed output grid
(shape ``output_shape``), so that level differences ``u_l - u_{l-1}`` are defined pointwise.
The level-``l`` grid has ``grid(l) = n_coarse * refinement**(l-1)`` cells (per side in 2-D).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ntk_mlft._validation import check_positive_int, check_positive_scalar

__all__ = ["Problem", "SolverError", "linear_interp_matrix", "solve_tridiagonal"]


class SolverError(ValueError):
    """A solver returned NaN/inf; ``index`` is the offending sample's row in the ``solve`` batch."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Problem(ABC):
    """Base of every problem: parameters are dataclass fields (all with defaults), results are arrays.

    Subclasses set the class attributes ``name`` (registry name), ``order`` (discretisation
    order of the level solution in the mesh width h) and implement ``input_shape``,
    ``output_shape``, ``_sample(rng, n)`` and ``_solve_one(x, n_cells)``.
    """

    name: ClassVar[str] = ""
    order: ClassVar[float] = 0.0

    levels: int = 4
    n_coarse: int = 32
    refinement: int = 2
    n_input: int = 128
    n_output: int = 64

    def __post_init__(self) -> None:
        check_positive_int("levels", self.levels)
        check_positive_int("n_coarse", self.n_coarse)
        check_positive_int("refinement", self.refinement)
        check_positive_int("n_input", self.n_input)
        check_positive_int("n_output", self.n_output)
        if self.refinement < 2:
            raise ValueError(f"refinement must be >= 2 (grid ratio between levels); got {self.refinement}")
        if self.n_coarse < 4 or self.n_input < 4 or self.n_output < 2:
            raise ValueError("n_coarse and n_input must be >= 4 and n_output >= 2; "
                             f"got {self.n_coarse}, {self.n_input}, {self.n_output}")

    @staticmethod
    def _check_positive(**values: Any) -> None:
        for key, value in values.items():
            check_positive_scalar(key, value)

    # ----- public contract -------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        return int(self.levels)

    @property
    def params(self) -> dict[str, Any]:
        """All parameters (JSON-able), including the problem name: enough to rebuild it."""
        return {"name": self.name, **dataclasses.asdict(self)}

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (level-independent)."""

    @property
    @abstractmethod
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one output on the common output grid."""

    def check_level(self, level: Any) -> int:
        """``level`` as an int in 1..L, or a ValueError/TypeError saying what is allowed."""
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
            raise TypeError(f"level must be an integer in 1..{self.n_levels}; got {level!r}")
        if not 1 <= int(level) <= self.n_levels:
            raise ValueError(f"level must be in 1..{self.n_levels} for {self.name!r}; got {int(level)}")
        return int(level)

    def grid(self, level: int) -> int:
        """Cells (per side in 2-D) of the level-``level`` grid: ``n_coarse * refinement**(level-1)``."""
        level = self.check_level(level)
        return int(self.n_coarse * self.refinement ** (level - 1))

    def sample_inputs(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent inputs, float64 array (n, *input_shape)."""
        n = check_positive_int("n", n)
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
        out = np.asarray(self._sample(rng, n), dtype=np.float64)
        assert out.shape == (n, *self.input_shape)
        return out

    def solve(self, inputs: Any, level: int) -> np.ndarray:
        """Level-``level`` solutions (n, *output_shape) on the common output grid.

        Raises :class:`SolverError` (a ValueError) naming the first sample whose solution is not finite.
        """
        level = self.check_level(level)
        x = np.asarray(inputs, dtype=np.float64)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"inputs must have shape (n, {', '.join(map(str, self.input_shape))}) "
                             f"for {self.name!r}; got {x.shape}")
        n_cells = self.grid(level)
        out = np.empty((x.shape[0], *self.output_shape))
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN/inf checked below
            for i, xi in enumerate(x):
                out[i] = self._solve_one(xi, n_cells)
        bad = ~np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SolverError(f"{self.name} solver returned NaN/inf for sample {i} at level {level} "
                              f"(grid {n_cells})", index=i)
        return out

    # ----- to implement ----------------------------------------------------------------
    @abstractmethod
    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, *input_shape) inputs."""

    @abstractmethod
    def _solve_one(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        """One input (input_shape) -> its solution on a grid of ``n_cells``, on the output grid."""


def linear_interp_matrix(x_src: np.ndarray, x_out: np.ndarray) -> np.ndarray:
    """Dense (len(x_out), len(x_src)) matrix of piecewise-linear interpolation weights.

    ``x_src`` must be strictly increasing and cover ``x_out``; ``M @ v`` equals
    ``np.interp(x_out, x_src, v)``.
    """
    x_src = np.asarray(x_src, dtype=np.float64)
    x_out = np.asarray(x_out, dtype=np.float64)
    j = np.clip(np.searchsorted(x_src, x_out, side="right") - 1, 0, x_src.size - 2)
    t = (x_out - x_src[j]) / (x_src[j + 1] - x_src[j])
    m = np.zeros((x_out.size, x_src.size))
    rows = np.arange(x_out.size)
    m[rows, j] = 1.0 - t
    m[rows, j + 1] += t
    return m


def solve_tridiagonal(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a tridiagonal system (LAPACK ``?gtsv``, partial pivoting; real or complex).

    lower, upper: (n-1,) sub-/super-diagonals; diag, rhs: (n,). Returns x (n,). A singular matrix
    or NaN input gives NaN output (caught by :meth:`Problem.solve`), never an exception here.
    """
    from scipy.linalg.lapack import get_lapack_funcs

    arrays = [np.array(a) for a in (lower, diag, upper, rhs)]
    (gtsv,) = get_lapack_funcs(("gtsv",), arrays)
    *_, x, info = gtsv(*arrays, overwrite_dl=True, overwrite_d=True, overwrite_du=True, overwrite_b=True)
    return x if info == 0 else np.full(diag.shape, np.nan, dtype=x.dtype)
