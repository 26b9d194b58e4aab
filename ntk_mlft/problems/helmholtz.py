"""``helmholtz-oscillatory``: 1-D Helmholtz equation at high wavenumber with absorbing boundaries.

Equation:   -u'' - k(x)^2 u = f  on (0, 1), k(x) = k0 * r(x); absorbing (first-order impedance)
            boundaries u'(0) + i k u(0) = 0 and u'(1) - i k u(1) = 0 (outgoing waves).
            f(x) = k0^2 exp(-(x - 1/2)^2 / (2 * 0.02^2)) is a fixed source.
Input:      the refractive index r on ``n_input`` equispaced nodes of [0, 1]:
            r = exp(contrast * g), g a smooth random trigonometric series with ``n_modes`` modes,
            sum_k (a_k cos 2 pi k x + b_k sin 2 pi k x) / k^2, a_k, b_k ~ N(0,1), normalised so
            that g has unit standard deviation at each x. Between nodes r is interpolated linearly.
Map:        r -> u (complex) on ``n_output`` equispaced nodes of [0, 1], output shape
            (n_output, 2): [..., 0] = Re u, [..., 1] = Im u.
Levels:     second-order central differences on ``grid(l)`` cells (grid(l)+1 nodes), boundary
            conditions by centred differences with a ghost node (second order); complex
            tridiagonal solve; nodal values interpolated linearly to the output nodes.
Why hard:   the solution oscillates with local wavelength 2 pi / k(x) (about 13 wavelengths per
            unit length at k0 = 80); coarse grids with few points per wavelength suffer from the
            pollution (phase) error, which accumulates over the domain, so coarse levels are
            qualitatively wrong until k^3 h^2 is small.
Level differences (``difference_rate = 2``): already at the coarsest default grid k0 h = 0.31 and
            the accumulated phase error ~ k0^3 h^2 / 24 is ~0.3 rad, so RMS(u_l - u_{l-1})
            decays at 2.0 from 256 to 1024 to 4096 and from 1024 to 4096 to 16384 cells
            (16 samples, two seeds).
Defaults:   4 levels of 256, 1024, 4096, 16384 cells (20 to 1300 points per wavelength at k0 = 80);
            per sample in a batch of 32, ~0.02 ms at the coarsest level (per-sample overhead:
            one LAPACK call) to ~1.1 ms at the finest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ntk_mlft._checks import check_positive_int
from ntk_mlft.problems._base import LinearInterp, Problem, solve_tridiagonal

__all__ = ["HelmholtzOscillatory", "solve_helmholtz_fd"]


def solve_helmholtz_fd(k_nodes: np.ndarray, f_nodes: np.ndarray, g0: complex = 0.0,
                       g1: complex = 0.0) -> np.ndarray:
    """Central FD for -u'' - k^2 u = f on n+1 nodes of [0,1] with u'(0) + i k u(0) = g0,
    u'(1) - i k u(1) = g1 (ghost-node elimination).

    k_nodes: (..., n+1) wavenumbers at the nodes (a batch along the leading axes); f_nodes:
    (n+1,) or (..., n+1). Returns complex u at the nodes, (..., n+1).
    """
    k = np.asarray(k_nodes, dtype=np.float64)
    m = k.shape[-1]
    h = 1.0 / (m - 1)
    diag = (2.0 / h ** 2 - k ** 2).astype(np.complex128)
    upper = np.full(m - 1, -1.0 / h ** 2, dtype=np.complex128)
    lower = upper.copy()
    upper[0] = -2.0 / h ** 2       # ghost u_{-1} = u_1 + 2h (i k0 u_0 - g0)
    lower[-1] = -2.0 / h ** 2      # ghost u_{n+1} = u_{n-1} + 2h (g1 + i k_n u_n)
    diag[..., 0] -= 2j * k[..., 0] / h
    diag[..., -1] -= 2j * k[..., -1] / h
    rhs = np.array(np.broadcast_to(np.asarray(f_nodes, dtype=np.complex128), diag.shape))
    rhs[..., 0] -= 2.0 * g0 / h
    rhs[..., -1] += 2.0 * g1 / h
    return solve_tridiagonal(lower, diag, upper, rhs)


@dataclass(frozen=True)
class HelmholtzOscillatory(Problem):
    """High-wavenumber 1-D Helmholtz with random refractive index (see the module docstring)."""

    name: ClassVar[str] = "helmholtz-oscillatory"
    order: ClassVar[float] = 2.0
    difference_rate: ClassVar[float] = 2.0

    levels: int = 4
    n_coarse: int = 256
    refinement: int = 4
    n_input: int = 256
    n_output: int = 64
    wavenumber: float = 80.0
    contrast: float = 0.2
    n_modes: int = 6

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_positive(wavenumber=self.wavenumber, contrast=self.contrast)
        check_positive_int("n_modes", self.n_modes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_input,)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.n_output, 2)

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x = np.linspace(0.0, 1.0, self.n_input)
        k = np.arange(1, self.n_modes + 1)
        w = 1.0 / k ** 2
        a = rng.standard_normal((n, self.n_modes)) * w
        b = rng.standard_normal((n, self.n_modes)) * w
        arg = 2.0 * np.pi * np.outer(k, x)
        g = (a @ np.cos(arg) + b @ np.sin(arg)) / np.sqrt(np.sum(w * w))
        return np.exp(self.contrast * g)

    def _solve_batch(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        nodes = np.linspace(0.0, 1.0, n_cells + 1)
        k = self.wavenumber * LinearInterp.between(np.linspace(0.0, 1.0, self.n_input), nodes)(x)
        f = self.wavenumber ** 2 * np.exp(-((nodes - 0.5) / 0.02) ** 2 / 2.0)
        u = solve_helmholtz_fd(k, f)
        to_output = LinearInterp.between(nodes, np.linspace(0.0, 1.0, self.n_output))
        return np.stack([to_output(u.real), to_output(u.imag)], axis=-1)

    def _solve_one(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        return self._solve_batch(x[None], n_cells)[0]
