"""``schrodinger-ground-state``: ground state of a periodic 1-D Schroedinger operator.

Equation:   -1/2 psi'' + V(x) psi = E psi  on [0, 1), periodic; smallest eigenvalue E_0 and its
            eigenfunction psi_0, normalised by int psi_0^2 dx = 1 with sign fixed by int psi_0 > 0.
Input:      V on ``n_input`` periodic nodes x_j = j/n_input: a sum of ``n_wells`` Gaussian wells
            V(x) = -sum_k d_k exp(-dist(x, c_k)^2 / (2 w^2)), centres c_k ~ U[0,1), depths
            d_k ~ U[depth_min, depth_max], width w = ``well_width`` (dist = periodic distance).
            Between nodes V is interpolated linearly (periodically).
Map:        V -> [psi_0 on ``n_output`` periodic nodes j/n_output, E_0]: output shape (n_output+1,),
            the last entry is E_0.
Levels:     second-order central differences on ``grid(l)`` periodic nodes, sparse shift-invert
            Lanczos (scipy ``eigsh``) for the lowest eigenpair; psi_0 interpolated linearly
            (periodic) to the output nodes. Second order in h (``order = 2``).
Why hard:   the ground state localises in the deepest well; wells of similar depth make the
            map V -> psi_0 nearly discontinuous (which well wins flips under small changes of V),
            and narrow wells are under-resolved on coarse grids, which shifts E_0 and can move
            psi_0 to another well (at 32 nodes, h = 0.03 < well width 0.04, level differences
            decay at only ~1.2: grids that coarse are left out of the default hierarchy).
Level differences (``difference_rate = 2``): RMS(u_l - u_{l-1}) decays at 2.0 from 128 to 512 to
            2048 and from 512 to 2048 to 8192 nodes (16 samples, two seeds).
Defaults:   4 levels of 128, 512, 2048, 8192 nodes. The Lanczos solve has ~0.5 ms of fixed
            overhead per sample (it cannot be shared by a batch): measured 0.84, 1.2, 2.6 and
            11.7 ms per sample (ratios 1.4, 2.2, 4.5); a coarsest level of 32 nodes was as
            expensive as 128 (more Lanczos restarts) and was dropped from the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

from ntk_mlft._checks import check_positive_int
from ntk_mlft.problems._base import LinearInterp, Problem

__all__ = ["SchrodingerGroundState", "ground_state_fd"]


def ground_state_fd(v_nodes: np.ndarray) -> tuple[float, np.ndarray]:
    """Lowest eigenpair of -1/2 D2 + diag(V) on n periodic nodes of [0,1) (central differences).

    ARPACK shift-invert Lanczos about sigma = min V - 1 < E_0 (so the eigenvalue nearest sigma is
    E_0), to machine precision: a sparse LU of H - sigma and O(n) work per iteration, plus a fixed
    ~0.5 ms of iteration overhead that dominates below ~500 nodes. (A dense LAPACK solver is
    cheaper for n <= ~100 on an idle machine but, multi-threaded, ~100x slower on a loaded one.)
    Returns (E_0, psi_0 (n,)) with h sum psi_0^2 = 1 and sum psi_0 > 0; NaNs (caught by
    :meth:`Problem.solve`) if V is not finite or the Lanczos iteration does not converge.
    """
    v = np.asarray(v_nodes, dtype=np.float64)
    n = v.size
    if not np.all(np.isfinite(v)):
        return float("nan"), np.full(n, np.nan)
    h = 1.0 / n
    c = 0.5 / (h * h)
    i = np.arange(n)
    rows = np.concatenate([i, i, i])
    cols = np.concatenate([i, (i + 1) % n, (i - 1) % n])  # periodic neighbours
    vals = np.concatenate([2.0 * c + v, np.full(2 * n, -c)])
    mat = sp.csc_matrix((vals, (rows, cols)), shape=(n, n))  # duplicates (n = 2) are summed
    sigma = float(v.min()) - 1.0
    try:
        energy, vecs = eigsh(mat, k=1, sigma=sigma, which="LM", v0=np.ones(n), tol=0.0)
    except ArpackNoConvergence:
        return float("nan"), np.full(n, np.nan)
    psi = vecs[:, 0]
    psi = psi / np.sqrt(h * np.sum(psi * psi))
    if psi.sum() < 0:
        psi = -psi
    return float(energy[0]), psi


@dataclass(frozen=True)
class SchrodingerGroundState(Problem):
    """Periodic Schroedinger ground state with random Gaussian wells (see the module docstring)."""

    name: ClassVar[str] = "schrodinger-ground-state"
    order: ClassVar[float] = 2.0
    difference_rate: ClassVar[float] = 2.0
    work_exponent: ClassVar[float] = 1.5  # solve work ~ unknowns^1.5 (Problem.work_exponent)

    levels: int = 4
    n_coarse: int = 128
    refinement: int = 4
    n_input: int = 128
    n_output: int = 64
    n_wells: int = 3
    well_width: float = 0.04
    depth_min: float = 50.0
    depth_max: float = 150.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_positive(well_width=self.well_width, depth_min=self.depth_min,
                             depth_max=self.depth_max)
        check_positive_int("n_wells", self.n_wells)
        if self.depth_max < self.depth_min:
            raise ValueError(f"depth_max must be >= depth_min; got {self.depth_max} < {self.depth_min}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_input,)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.n_output + 1,)

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x = np.arange(self.n_input) / self.n_input
        centres = rng.uniform(0.0, 1.0, (n, self.n_wells, 1))
        depths = rng.uniform(self.depth_min, self.depth_max, (n, self.n_wells, 1))
        d = np.abs(x[None, None, :] - centres)
        d = np.minimum(d, 1.0 - d)
        return -np.sum(depths * np.exp(-d * d / (2.0 * self.well_width ** 2)), axis=1)

    def _solve_batch(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        grid = np.arange(n_cells) / n_cells
        v = LinearInterp.between(np.arange(self.n_input) / self.n_input, grid, period=1.0)(x)
        pairs = [ground_state_fd(vi) for vi in v]
        psi = np.array([p[1] for p in pairs]).reshape(len(x), n_cells)
        energy = np.array([p[0] for p in pairs])
        psi_out = LinearInterp.between(grid, np.arange(self.n_output) / self.n_output, period=1.0)(psi)
        return np.concatenate([psi_out, energy[:, None]], axis=1)

    def _solve_one(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        return self._solve_batch(x[None], n_cells)[0]
