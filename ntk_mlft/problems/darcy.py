"""``darcy-2d``: steady Darcy flow with a two-phase piecewise-constant permeability.

Equation:   -div(a(x) grad u(x)) = 1  on the unit square (0,1)^2,  u = 0 on the boundary.
Input:      a on an ``n_input`` x ``n_input`` cell grid with two values: a = ``a_high`` (12) where a
            Gaussian random field psi >= 0 and ``a_low`` (3) elsewhere; psi ~ N(0, (-Laplacian +
            tau^2)^(-alpha)) with tau = 3, alpha = 2, mean zero, sampled spectrally on the
            periodic n_input grid
            (the benchmark of Li et al., "Fourier Neural Operator", ICLR 2021).
            Defaults: 64 x 64 input cells, 4 levels of 32^2 .. 256^2 cells, 32 x 32 output.
Map:        a -> u at the centres of an ``n_output`` x ``n_output`` output cell grid.
Levels:     cell-centred 5-point finite volumes on ``grid(l)`` x ``grid(l)`` cells with harmonic
            face coefficients and half-cell boundary faces; a on a coarser level is the arithmetic
            block mean of the input cells, on a finer level each input cell is subdivided.
            Second order in h for smooth a (``order = 2``); bilinear interpolation (with the zero
            boundary values) to the output centres.
Solver:     sparse direct LU (SuperLU via ``spsolve``) with the minimum-degree ordering of A^T + A
            (``permc_spec="MMD_AT_PLUS_A"``, suited to the symmetric pattern; the matrix is SPD).
            Fill and time grow faster than the n^2 unknowns: 3.6x, 7.6x and 6.0x per doubling of
            n at the default levels (benchmarks/problems.py, which also compares SuperLU's COLAMD
            default and pyamg smoothed-aggregation CG: neither won; see the problems README).
Why hard:   high-contrast interfaces with random topology, and the finest level is genuinely
            expensive: ~0.26 s per sample at 256 x 256 against ~1.6 ms at 32 x 32 (ratio ~160).
Level differences (``difference_rate = 1.15``): for smooth a the level differences would decay
            like h^2; for the two-phase a the default levels show RMS rates of ~2 from 32^2 to
            64^2 to 128^2 (the levels at or below the 64^2 input grid, where block means of a
            homogenise the interfaces), then 1.1-1.2 from 64^2 to 128^2 to 256^2 and the same
            from 128^2 to 256^2 to 512^2 (measured with 4-8 samples, two seeds). Once the grid
            resolves the input cells the interfaces are staircases with corners, where u has
            singularities r^lambda with lambda < 1, which caps the rate near 1.15 (the asymptotic
            rate stored in ``difference_rate``; ``order`` stays the smooth-data order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from ntk_mlft.problems._base import LinearInterp, Problem

__all__ = ["Darcy2D", "darcy_matrix", "restrict_cells", "solve_darcy_fv"]


def darcy_matrix(a_cells: np.ndarray) -> sp.csc_matrix:
    """The SPD 5-point FV matrix A (n^2 x n^2, CSC) of -div(a grad u) on (0,1)^2, u = 0 on the boundary.

    a_cells: (n, n) values at the cell centres ((i + 1/2)/n, (j + 1/2)/n), index [i, j] = (x_i, y_j);
    unknown [i, j] is row i n + j. Face transmissibilities are harmonic means of the two cells, a
    boundary face uses its cell's a over h/2; A u = h^2 f (the h^2 is left on the right-hand side).
    """
    a = np.asarray(a_cells, dtype=np.float64)
    n = a.shape[0]
    idx = np.arange(n * n).reshape(n, n)
    tx = 2.0 * a[:-1, :] * a[1:, :] / (a[:-1, :] + a[1:, :])   # faces between x-neighbours
    ty = 2.0 * a[:, :-1] * a[:, 1:] / (a[:, :-1] + a[:, 1:])   # faces between y-neighbours
    diag = np.zeros((n, n))
    diag[:-1, :] += tx
    diag[1:, :] += tx
    diag[:, :-1] += ty
    diag[:, 1:] += ty
    diag[0, :] += 2.0 * a[0, :]    # boundary faces at distance h/2
    diag[-1, :] += 2.0 * a[-1, :]
    diag[:, 0] += 2.0 * a[:, 0]
    diag[:, -1] += 2.0 * a[:, -1]
    rows = np.concatenate([idx.ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel(),
                           idx[:, :-1].ravel(), idx[:, 1:].ravel()])
    cols = np.concatenate([idx.ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel(),
                           idx[:, 1:].ravel(), idx[:, :-1].ravel()])
    vals = np.concatenate([diag.ravel(), -tx.ravel(), -tx.ravel(), -ty.ravel(), -ty.ravel()])
    return sp.csc_matrix((vals, (rows, cols)), shape=(n * n, n * n))


def solve_darcy_fv(a_cells: np.ndarray, f_cells: np.ndarray) -> np.ndarray:
    """Cell-centred FV for -div(a grad u) = f on (0,1)^2 with u = 0 on the boundary.

    a_cells, f_cells: (n, n) values at cell centres (see :func:`darcy_matrix`). Sparse direct
    solve (SuperLU, minimum-degree ordering of A^T + A). Returns u at the centres, (n, n).
    """
    n = np.shape(a_cells)[0]
    rhs = np.asarray(f_cells, dtype=np.float64).ravel() / (n * n)
    return spsolve(darcy_matrix(a_cells), rhs, permc_spec="MMD_AT_PLUS_A").reshape(n, n)


def restrict_cells(a: np.ndarray, n: int) -> np.ndarray:
    """(m, m) cell values -> (n, n): block means if n divides m, subdivision if m divides n."""
    m = a.shape[0]
    if m % n == 0:
        r = m // n
        return a.reshape(n, r, n, r).mean(axis=(1, 3))
    if n % m == 0:
        r = n // m
        return np.kron(a, np.ones((r, r)))
    raise ValueError(f"grid sizes must divide one another; got input {m} and level grid {n}")


@dataclass(frozen=True)
class Darcy2D(Problem):
    """-div(a grad u) = 1 on the unit square, two-phase a (see the module docstring)."""

    name: ClassVar[str] = "darcy-2d"
    order: ClassVar[float] = 2.0
    difference_rate: ClassVar[float] = 1.15
    work_exponent: ClassVar[float] = 1.5  # solve work ~ unknowns^1.5 (Problem.work_exponent)
    spatial_dims: ClassVar[int] = 2

    levels: int = 4
    n_coarse: int = 32
    refinement: int = 2
    n_input: int = 64
    n_output: int = 32
    a_high: float = 12.0
    a_low: float = 3.0
    tau: float = 3.0
    alpha: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_positive(a_high=self.a_high, a_low=self.a_low, tau=self.tau, alpha=self.alpha)
        for level in range(1, self.levels + 1):
            g = self.grid(level)
            if g % self.n_input and self.n_input % g:
                raise ValueError(f"n_input ({self.n_input}) and every level grid must divide one another; "
                                 f"level {level} has {g} cells per side")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_input, self.n_input)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.n_output, self.n_output)

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        m = self.n_input
        k = np.fft.fftfreq(m, d=1.0 / m)
        k2 = k[:, None] ** 2 + k[None, :] ** 2
        amp = (4.0 * np.pi ** 2 * k2 + self.tau ** 2) ** (-self.alpha / 2.0)
        amp[0, 0] = 0.0  # mean-zero field (as in the benchmark), so both phases occur
        noise = rng.standard_normal((n, m, m))
        psi = np.fft.ifft2(np.fft.fft2(noise) * amp).real
        return np.where(psi >= 0.0, self.a_high, self.a_low)

    def _solve_one(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        a = restrict_cells(x, n_cells)
        u = solve_darcy_fv(a, np.ones((n_cells, n_cells)))
        centres = (np.arange(n_cells) + 0.5) / n_cells
        interp = LinearInterp.between(np.concatenate([[0.0], centres, [1.0]]),
                                      (np.arange(self.n_output) + 0.5) / self.n_output)
        return interp(interp(np.pad(u, 1)).T).T  # bilinear: along y, then along x
