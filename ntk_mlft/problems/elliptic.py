"""``elliptic-rough``: 1-D diffusion with a rough log-normal coefficient.

Equation:   -(a(x) u'(x))' = f   on (0, 1),  u(0) = u(1) = 0,  f = ``forcing`` (constant).
Input:      a on ``n_input`` equispaced nodes x_j = j/(n_input-1); log a is an exactly sampled
            Ornstein-Uhlenbeck (exponential-covariance) Gaussian field, mean 0, standard
            deviation ``sigma``, correlation length ``correlation_length``. Between nodes, log a is
            interpolated linearly (this defines a(x) at every resolution).
Map:        a -> u on ``n_output`` equispaced nodes of [0, 1] (boundary zeros included).
Levels:     cell-centred finite volumes on ``grid(l)`` uniform cells, a evaluated at cell
            centres, face coefficients by harmonic averaging of neighbouring cells, boundary faces
            over half a cell; tridiagonal solve. Second order in h for smooth a; the level-l
            solution is interpolated linearly (second order) from the cell centres and the
            boundary to the output nodes.
Why hard:   the exponential-covariance field is nowhere differentiable and varies on the scale
            ``correlation_length`` with contrasts of exp(+-3 sigma), so coarse grids miss the
            fine structure the solution averages over (homogenisation).
Level differences (``difference_rate = 2``): RMS(u_l - u_{l-1}) over the default inputs decays
            at rate 1.2-1.35 from 256 to 1024 to 4096 cells (h >= correlation length:
            homogenisation regime), 2.7-2.85 from 1024 to 4096 to 16384 (the grid crosses the
            input-node resolution, where the error constant drops) and 1.9-2.3 from 4096 to 16384
            to 65536 (a is then piecewise smooth on the grid: the h^2 of ``order``); 16 samples,
            three seeds.
Defaults:   4 levels of 256, 1024, 4096, 16384 cells; 1024 input nodes, correlation length
            0.005 (about 5 input nodes, 1.3 level-1 cells). A tridiagonal solve is cheap: per
            sample in a batch of 32, ~0.02 ms at 256 cells (fixed per-sample overhead: one LAPACK
            call) up to ~1.3 ms at 16384 cells (the problems README has the measured table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.signal import lfilter

from ntk_mlft.problems._base import LinearInterp, Problem, solve_tridiagonal

__all__ = ["EllipticRough", "solve_diffusion_fv"]


def solve_diffusion_fv(a_centres: np.ndarray, f_centres: np.ndarray) -> np.ndarray:
    """Cell-centred FV for -(a u')' = f on (0,1), u(0)=u(1)=0, n uniform cells.

    a_centres, f_centres: (..., n) values at cell centres (i + 1/2)/n (a batch of problems along
    the leading axes). Face coefficients are harmonic means of the two neighbouring cells; a
    boundary face uses its cell's a over h/2. Returns u at the cell centres, (..., n). Second
    order for smooth a and f.
    """
    a = np.asarray(a_centres, dtype=np.float64)
    n = a.shape[-1]
    h = 1.0 / n
    t_inner = 2.0 * a[..., :-1] * a[..., 1:] / (a[..., :-1] + a[..., 1:])   # (..., n-1) interior faces
    t = np.concatenate([2.0 * a[..., :1], t_inner, 2.0 * a[..., -1:]], axis=-1)  # boundary: a/(h/2)*h
    rhs = np.asarray(f_centres, dtype=np.float64) * (h * h)
    return solve_tridiagonal(-t_inner, t[..., :-1] + t[..., 1:], -t_inner, rhs)


@dataclass(frozen=True)
class EllipticRough(Problem):
    """-(a u')' = f on (0,1), Dirichlet, rough log-normal a (see the module docstring)."""

    name: ClassVar[str] = "elliptic-rough"
    order: ClassVar[float] = 2.0
    difference_rate: ClassVar[float] = 2.0

    levels: int = 4
    n_coarse: int = 256
    refinement: int = 4
    n_input: int = 1024
    n_output: int = 64
    correlation_length: float = 0.005
    sigma: float = 1.0
    forcing: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_positive(correlation_length=self.correlation_length, sigma=self.sigma,
                             forcing=self.forcing)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_input,)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.n_output,)

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        dx = 1.0 / (self.n_input - 1)
        rho = np.exp(-dx / self.correlation_length)
        z = rng.standard_normal((n, self.n_input))
        # exact AR(1) sampling of the stationary OU process on the nodes:
        # g_0 = z_0, g_j = rho g_{j-1} + sqrt(1 - rho^2) z_j
        g_rest, _ = lfilter([np.sqrt(1.0 - rho * rho)], [1.0, -rho], z[:, 1:], axis=1, zi=rho * z[:, :1])
        return np.exp(self.sigma * np.concatenate([z[:, :1], g_rest], axis=1))

    def _solve_batch(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        centres = (np.arange(n_cells) + 0.5) / n_cells
        a = np.exp(LinearInterp.between(np.linspace(0.0, 1.0, self.n_input), centres)(np.log(x)))
        u = solve_diffusion_fv(a, np.full(n_cells, self.forcing))
        to_output = LinearInterp.between(np.concatenate([[0.0], centres, [1.0]]),
                                         np.linspace(0.0, 1.0, self.n_output))
        return to_output(np.pad(u, ((0, 0), (1, 1))))  # with the boundary zeros

    def _solve_one(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        return self._solve_batch(x[None], n_cells)[0]
