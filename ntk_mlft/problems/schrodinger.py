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
            (periodic) to the output nodes. Second order in h.
Why hard:   the ground state localises in the deepest well; wells of similar depth make the
            map V -> psi_0 nearly discontinuous (which well wins flips under small changes of V),
            and the narrow wells are under-resolved on coarse grids, which shifts E_0 and can move
            psi_0 to another well.
Defaults:   4 levels of 32, 128, 512, 2048 nodes; the shift-invert solve costs a few ms at the
            coarse levels and ~25 ms at the finest. At 32 nodes (h = 0.03 < well width 0.04) the
            coarsest level is pre-asymptotic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

from ntk_mlft._validation import check_positive_int
from ntk_mlft.problems._base import Problem

__all__ = ["SchrodingerGroundState", "ground_state_fd"]


def ground_state_fd(v_nodes: np.ndarray) -> tuple[float, np.ndarray]:
    """Lowest eigenpair of -1/2 D2 + diag(V) on n periodic nodes of [0,1) (central differences).

    Returns (E_0, psi_0 (n,)) with h sum psi_0^2 = 1 and sum psi_0 > 0.
    """
    v = np.asarray(v_nodes, dtype=np.float64)
    n = v.size
    h = 1.0 / n
    c = 0.5 / (h * h)
    off = np.full(n, -c)
    h_mat = sp.diags([off[:-1], 2.0 * c + v, off[:-1]], [-1, 0, 1], format="lil")
    h_mat[0, n - 1] = -c
    h_mat[n - 1, 0] = -c
    h_mat = h_mat.tocsc()
    sigma = float(v.min()) - 1.0  # below E_0 (E_0 > min V), so the nearest eigenvalue is E_0
    vals, vecs = eigsh(h_mat, k=1, sigma=sigma, which="LM", v0=np.ones(n), tol=0.0)
    psi = vecs[:, 0]
    psi = psi / np.sqrt(h * np.sum(psi * psi))
    if psi.sum() < 0:
        psi = -psi
    return float(vals[0]), psi


@dataclass(frozen=True)
class SchrodingerGroundState(Problem):
    """Periodic Schroedinger ground state with random Gaussian wells (see the module docstring)."""

    name: ClassVar[str] = "schrodinger-ground-state"
    order: ClassVar[float] = 2.0

    levels: int = 4
    n_coarse: int = 32
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

    def _solve_one(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        nodes = np.arange(self.n_input) / self.n_input
        grid = np.arange(n_cells) / n_cells
        energy, psi = ground_state_fd(np.interp(grid, nodes, x, period=1.0))
        psi_out = np.interp(np.arange(self.n_output) / self.n_output, grid, psi, period=1.0)
        return np.concatenate([psi_out, [energy]])
