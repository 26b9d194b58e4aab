"""``burgers-shock``: viscous Burgers equation with small viscosity; smooth data steepen into shocks.

Equation:   u_t + (u^2/2)_x = nu u_xx  on [0, 1), periodic, t in (0, T], T = ``final_time``.
Input:      u(x, 0) on ``n_input`` periodic nodes j/n_input: a random trigonometric polynomial
            u_0(x) = amplitude * sum_{k=1}^{n_modes} (a_k cos 2 pi k x + b_k sin 2 pi k x) / k,
            a_k, b_k ~ N(0, 1). Band-limited, so it is evaluated exactly at any resolution by its
            Fourier series (n_modes < n_input / 2 is required).
Map:        u_0 -> u(., T) on ``n_output`` periodic nodes j/n_output.
Levels:     conservative finite volumes on ``grid(l)`` cells: exact Godunov flux for u^2/2, central
            differences for nu u_xx, forward Euler with the step
            dt <= CFL / (max|u_0| / h + 2 nu / h^2) (max|u| never grows), so the number of steps and
            hence the cost grow like n^2 (n^3 once 2 nu/h^2 dominates, i.e. h < ~2 nu / max|u|).
            First order in h and dt for smooth solutions; cell values are interpolated linearly
            (periodically) to the output nodes.
Why hard:   for nu much smaller than h the shocks are thinner than every grid, so coarse levels
            smear and misplace them: level differences are concentrated at the shocks and decay
            between h^(1/2) (shock thinner than h) and h (shock resolved) in L2.
Defaults:   4 levels of 64, 128, 256, 512 cells, nu = 1e-3, T = 0.5: about 2, 5, 20, 60 ms per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ntk_mlft._validation import check_positive_int, check_positive_scalar
from ntk_mlft.problems._base import Problem

__all__ = ["BurgersShock", "fourier_eval", "solve_burgers_fv"]


def fourier_eval(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate the trigonometric interpolant of periodic samples ``values`` (m,) at points ``x``.

    The Nyquist mode (even m) is dropped, so band-limited inputs with modes < m/2 are reproduced exactly.
    """
    values = np.asarray(values, dtype=np.float64)
    m = values.size
    c = np.fft.rfft(values) / m
    k = np.arange(c.size)
    if m % 2 == 0:
        c, k = c[:-1], k[:-1]
    phase = np.exp(2j * np.pi * np.outer(np.asarray(x, dtype=np.float64), k[1:]))
    return c[0].real + 2.0 * (phase @ c[1:]).real


def solve_burgers_fv(u0_cells: np.ndarray, nu: float, final_time: float, cfl: float = 0.9) -> np.ndarray:
    """Godunov/central-diffusion FV for u_t + (u^2/2)_x = nu u_xx, periodic [0,1), n cells -> u(T) (n,)."""
    u = np.array(u0_cells, dtype=np.float64)
    n = u.size
    h = 1.0 / n
    rate = np.max(np.abs(u)) / h + 2.0 * nu / (h * h)
    n_steps = max(1, int(np.ceil(final_time * rate / cfl)))
    dt = final_time / n_steps
    for _ in range(n_steps):
        right = np.roll(u, -1)
        # exact Godunov flux for the convex flux u^2/2 at face i+1/2 between u (left) and right
        flux = np.maximum(np.maximum(u, 0.0) ** 2, np.minimum(right, 0.0) ** 2) * 0.5
        flux = flux - nu * (right - u) / h
        u = u - dt / h * (flux - np.roll(flux, 1))
    return u


@dataclass(frozen=True)
class BurgersShock(Problem):
    """Periodic viscous Burgers with small viscosity (see the module docstring)."""

    name: ClassVar[str] = "burgers-shock"
    order: ClassVar[float] = 1.0

    levels: int = 4
    n_coarse: int = 64
    refinement: int = 2
    n_input: int = 64
    n_output: int = 64
    n_modes: int = 4
    amplitude: float = 0.5
    viscosity: float = 1e-3
    final_time: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_positive(amplitude=self.amplitude, final_time=self.final_time)
        check_positive_scalar("viscosity", self.viscosity, allow_zero=True)
        check_positive_int("n_modes", self.n_modes)
        if not self.n_modes < self.n_input / 2:
            raise ValueError(f"n_modes must be in 1..{(self.n_input - 1) // 2} (< n_input/2 = "
                             f"{self.n_input / 2}); got {self.n_modes}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_input,)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.n_output,)

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x = np.arange(self.n_input) / self.n_input
        k = np.arange(1, self.n_modes + 1)
        a = rng.standard_normal((n, self.n_modes)) / k
        b = rng.standard_normal((n, self.n_modes)) / k
        arg = 2.0 * np.pi * np.outer(k, x)
        return self.amplitude * (a @ np.cos(arg) + b @ np.sin(arg))

    def _solve_one(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        centres = (np.arange(n_cells) + 0.5) / n_cells
        u = solve_burgers_fv(fourier_eval(x, centres), self.viscosity, self.final_time)
        return np.interp(np.arange(self.n_output) / self.n_output, centres, u, period=1.0)
