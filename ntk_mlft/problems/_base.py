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

from ntk_mlft._checks import check_positive_int, check_positive_scalar

__all__ = ["MAX_UNKNOWNS", "MAX_WORK", "LinearInterp", "Problem", "SolverError", "solve_tridiagonal"]

MAX_UNKNOWNS = 2 ** 22
"""Most unknowns (cells, or cells per side squared in 2-D) of one finest-level solve: ~4.2 M,
tens of MB per sample and seconds per solve here; beyond it one sample costs minutes and GBs, so
``levels`` (and ``n_coarse``, ``refinement``) are refused before anything is solved."""

MAX_WORK = 2.0 ** 34
"""Most work of one finest-level solve, ``unknowns ** work_exponent`` (a problem's class
attribute: 1 for the tridiagonal solves, more for time stepping or 2-D direct solves)."""


class SolverError(ValueError):
    """A solver returned NaN/inf; ``index`` is the offending sample's row in the ``solve`` batch."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Problem(ABC):
    """Base of every problem: parameters are dataclass fields (all with defaults), results are arrays.

    Subclasses set the class attributes

    - ``name``: registry name;
    - ``order``: discretisation order p of the level solution in the mesh width h for smooth
      data, ``|u_h - u| = O(h^p)`` (what the manufactured-solution tests check);
    - ``difference_rate``: the rate q of the level differences for the DEFAULT input
      distribution, ``RMS(u_l - u_{l-1}) ~ h_l^q`` at the finest default levels (rough or
      discontinuous inputs legitimately make q < p; each module docstring explains its q and
      lists the pre-asymptotic rates of the coarse default levels);
    - ``spatial_dims``: 1, or 2 where ``grid(l)`` counts cells per side (``MAX_UNKNOWNS`` bounds
      ``grid(L) ** spatial_dims``); ``work_exponent``: the work of one solve grows like
      ``unknowns ** work_exponent`` (``MAX_WORK`` bounds it);
    - ``solver_version``: an integer to bump by hand when a solver's output changes in a way the
      source fingerprint of the cache key cannot see (see :mod:`ntk_mlft.problems.datasets`);

    and implement ``input_shape``, ``output_shape``, ``_sample(rng, n)`` and either
    ``_solve_one(x, n_cells)`` (one sample) or, when samples can be stepped together,
    ``_solve_batch(x, n_cells)``. Either way row ``i`` of a batch must be bitwise the solution of
    sample ``i`` alone (elementwise array operations, no BLAS reductions across a batch), so that
    datasets do not depend on how samples are chunked.
    """

    name: ClassVar[str] = ""
    order: ClassVar[float] = 0.0
    difference_rate: ClassVar[float] = 0.0
    solver_version: ClassVar[int] = 1
    spatial_dims: ClassVar[int] = 1
    work_exponent: ClassVar[float] = 1.0

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
        def too_big(level: int) -> bool:
            unknowns = (self.n_coarse * self.refinement ** (level - 1)) ** self.spatial_dims
            return unknowns > MAX_UNKNOWNS or float(unknowns) ** self.work_exponent > MAX_WORK

        if too_big(self.levels):
            most = 1
            while most < self.levels and not too_big(most + 1):
                most += 1
            finest = (self.n_coarse * self.refinement ** (self.levels - 1)) ** self.spatial_dims
            raise ValueError(f"levels = {self.levels} makes the finest grid of {self.name!r} "
                             f"{self.n_coarse} x {self.refinement}^{self.levels - 1} cells"
                             f"{' per side' if self.spatial_dims > 1 else ''} = {finest:.3g} unknowns per solve, "
                             f"beyond what one sample may cost (MAX_UNKNOWNS = {MAX_UNKNOWNS}, work "
                             f"unknowns^{self.work_exponent:g} <= MAX_WORK = {MAX_WORK:.3g}): at most {most} levels "
                             f"with n_coarse = {self.n_coarse} and refinement = {self.refinement}")

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
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN/inf checked below
            out = np.asarray(self._solve_batch(x, n_cells), dtype=np.float64)
        assert out.shape == (x.shape[0], *self.output_shape)
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

    def _solve_batch(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        """(n, *input_shape) -> (n, *output_shape); the default solves the samples one by one."""
        out = np.empty((x.shape[0], *self.output_shape))
        for i, xi in enumerate(x):
            out[i] = self._solve_one(xi, n_cells)
        return out


@dataclass(frozen=True)
class LinearInterp:
    """Piecewise-linear interpolation from nodes ``x_src`` (m,) to points ``x_out`` (k,).

    ``LinearInterp.between(x_src, x_out)(v)`` maps values ``v`` (..., m) on the nodes to (..., k),
    ``v[..., j] * (1 - t) + v[..., j + 1] * t`` with x_out in [x_src[j], x_src[j+1]]: elementwise,
    so every row of a batch is interpolated bitwise as it would be alone. ``x_src`` must be
    strictly increasing; without ``period`` it must cover ``x_out``; with ``period`` the nodes are
    periodic (``x_src[0] + period`` follows ``x_src[-1]``) and ``x_out`` may be anywhere.
    """

    index: np.ndarray
    weight: np.ndarray
    periodic: bool

    @classmethod
    def between(cls, x_src: np.ndarray, x_out: np.ndarray, period: float | None = None) -> LinearInterp:
        x_src = np.asarray(x_src, dtype=np.float64)
        x_out = np.asarray(x_out, dtype=np.float64)
        if period is not None:
            x_out = x_src[0] + np.mod(x_out - x_src[0], period)
            x_src = np.concatenate([x_src, [x_src[0] + period]])
        elif x_out.min() < x_src[0] or x_out.max() > x_src[-1]:
            raise ValueError(f"x_out must lie in [{x_src[0]}, {x_src[-1]}] (the nodes' range); "
                             f"got [{x_out.min()}, {x_out.max()}]")
        j = np.clip(np.searchsorted(x_src, x_out, side="right") - 1, 0, x_src.size - 2)
        t = (x_out - x_src[j]) / (x_src[j + 1] - x_src[j])
        return cls(index=j, weight=t, periodic=period is not None)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values)
        if self.periodic:
            v = np.concatenate([v, v[..., :1]], axis=-1)
        return v[..., self.index] * (1.0 - self.weight) + v[..., self.index + 1] * self.weight


def solve_tridiagonal(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve tridiagonal systems (LAPACK ``?gtsv``, partial pivoting; real or complex).

    lower, upper: (..., n-1) sub-/super-diagonals; diag, rhs: (..., n), one system per leading
    index (a batch is solved row by row with one LAPACK call each). Returns x (..., n). A singular
    matrix or NaN input gives NaN in that system's output (caught by :meth:`Problem.solve`), never
    an exception here.
    """
    from scipy.linalg.lapack import get_lapack_funcs

    arrays = [np.asarray(a) for a in (lower, diag, upper, rhs)]
    (gtsv,) = get_lapack_funcs(("gtsv",), arrays)
    dtype = np.result_type(*arrays)
    shape = np.broadcast_shapes(arrays[1].shape, arrays[3].shape)
    lower, diag, upper, rhs = (np.broadcast_to(a, (*shape[:-1], a.shape[-1])).reshape(-1, a.shape[-1])
                               for a in arrays)
    out = np.empty((lower.shape[0], shape[-1]), dtype=dtype)
    for i in range(out.shape[0]):
        *_, x, info = gtsv(*(np.array(a[i], dtype=dtype) for a in (lower, diag, upper, rhs)),
                           overwrite_dl=True, overwrite_d=True, overwrite_du=True, overwrite_b=True)
        out[i] = x if info == 0 else np.nan
    return out.reshape(shape)
