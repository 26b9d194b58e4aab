"""``burgers-shock``: viscous Burgers equation with small viscosity; smooth data steepen into shocks.

Equation:   u_t + (u^2/2)_x = nu u_xx  on [0, 1), periodic, t in (0, T], T = ``final_time``.
Input:      u(x, 0) on ``n_input`` periodic nodes j/n_input: a random trigonometric polynomial
            u_0(x) = amplitude * sum_{k=1}^{n_modes} (a_k cos 2 pi k x + b_k sin 2 pi k x) / k,
            a_k, b_k ~ N(0, 1). Band-limited, so it is evaluated exactly at any resolution by its
            Fourier series (n_modes < n_input / 2 is required).
Map:        u_0 -> u(., T) on ``n_output`` periodic nodes j/n_output.
Levels:     conservative finite volumes on ``grid(l)`` cells: exact Godunov flux for u^2/2, central
            differences for nu u_xx, forward Euler with each sample's own CFL step
            dt <= CFL / (max|u_0| / h + 2 nu / h^2) (max|u| never grows). First order in h and dt
            for smooth solutions (``order = 1``); cell values are interpolated linearly
            (periodically) to the output nodes.
Work:       ``burgers_steps``: ~ T max|u_0| n / CFL steps (proportional to n while 2 nu n < max|u_0|,
            i.e. n < ~6000 at the defaults), each updating n cells, so the work per sample grows
            like n^2 (like n^3 once diffusion sets the step). A batch is stepped together
            (``solve_burgers_fv`` on (b, n) rows), so numpy's per-step overhead (~20 us) is shared
            by the batch: at 32 samples per batch (``generate``'s chunk) the measured cost per
            sample grows 2.4x, 3.3x, 3.7x per doubling from 128 to 1024 cells (approaching the
            n^2 of the work; 0.17 to 4.8 ms, problems README), one sample per call 4-13x more.
Why hard:   for nu much smaller than h the shocks are thinner than every grid, so coarse levels
            smear and misplace them.
Level differences (``difference_rate = 0.6``): RMS(u_l - u_{l-1}) over the default inputs decays
            like h^0.6 (least-squares slope over the default levels, 256 samples: 0.63 and 0.65 for
            two seeds; single pairs 0.5-0.76): between the h^(1/2) of an unresolved shock (an O(1)
            difference on a set of width O(h)) and the h of the smooth parts. The RMS is
            dominated by the few samples and points near a shock, so it is noisy: with 64
            samples the slope ranges over 0.45-0.76 between seeds.
Defaults:   4 levels of 128, 256, 512, 1024 cells, nu = 1e-4, T = 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ntk_mlft._checks import check_positive_int, check_positive_scalar
from ntk_mlft.problems._base import LinearInterp, Problem

__all__ = ["BurgersShock", "burgers_steps", "fourier_eval", "godunov_step", "solve_burgers_fv"]


def fourier_eval(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate the trigonometric interpolant of periodic samples ``values`` (m,) or (b, m) at ``x`` (k,).

    Returns (k,) or (b, k): c_0 + 2 sum_j (Re c_j cos 2 pi j x - Im c_j sin 2 pi j x) with c the
    DFT coefficients / m. The Nyquist mode (even m) is dropped, so band-limited inputs with
    modes < m/2 are reproduced exactly. The cos/sin tables are built once per call and the sum is
    elementwise (no BLAS), so a row of a batch is bitwise the row alone.
    """
    values = np.asarray(values, dtype=np.float64)
    rows = np.atleast_2d(values)
    m = rows.shape[1]
    n_modes = (m - 1) // 2  # modes 1..n_modes; drops the Nyquist mode of an even m
    arg = 2.0 * np.pi * np.outer(np.arange(1, n_modes + 1), np.asarray(x, dtype=np.float64))
    cos, sin = np.cos(arg), np.sin(arg)  # (n_modes, k)
    out = np.empty((rows.shape[0], arg.shape[1]))
    for i, row in enumerate(rows):
        c = np.fft.rfft(row)[: n_modes + 1] / m
        terms = c[1:].real[:, None] * cos - c[1:].imag[:, None] * sin
        out[i] = c[0].real + 2.0 * terms.sum(axis=0)
    return out.reshape(values.shape[:-1] + (arg.shape[1],))


def burgers_steps(max_speed: np.ndarray, n_cells: int, nu: float, final_time: float,
                  cfl: float = 0.9) -> np.ndarray:
    """Forward-Euler steps of :func:`solve_burgers_fv`: ``ceil(T (max|u_0| / h + 2 nu / h^2) / CFL)``, >= 1.

    max_speed: (b,) max|u_0| per sample (a NaN gives one step: the NaN then reaches the output).
    With h = 1/n the count is ~ T max|u_0| n / CFL (proportional to n) while
    2 nu n < max|u_0|, so the cell updates n * steps grow like n^2; like n^3 beyond.
    """
    h = 1.0 / n_cells
    rate = np.asarray(max_speed, dtype=np.float64) / h + 2.0 * nu / (h * h)
    steps = np.ceil(final_time * rate / cfl)
    return np.where(np.isfinite(steps), np.maximum(steps, 1.0), 1.0).astype(np.int64)


def godunov_step(u: np.ndarray, coef: np.ndarray, nu: float, h: float) -> np.ndarray:
    """One forward-Euler FV step of rows ``u`` (b, n), periodic: ``u - dt/h (F_{i+1/2} - F_{i-1/2})``.

    coef: (b, 1) dt / h per row. F is the exact Godunov flux of u^2/2 between a cell and its
    right neighbour minus nu (u_{i+1} - u_i) / h. Elementwise in the rows (b * n cell updates).
    """
    right = np.roll(u, -1, axis=1)
    flux = np.maximum(np.maximum(u, 0.0) ** 2, np.minimum(right, 0.0) ** 2) * 0.5
    flux = flux - nu * (right - u) / h
    return u - coef * (flux - np.roll(flux, 1, axis=1))


def solve_burgers_fv(u0_cells: np.ndarray, nu: float, final_time: float, cfl: float = 0.9) -> np.ndarray:
    """Godunov/central-diffusion FV for u_t + (u^2/2)_x = nu u_xx, periodic [0,1): u(0) -> u(T).

    u0_cells: (n,) or a batch (b, n) of cell averages on n uniform cells; returns the same shape.
    Sample i takes ``burgers_steps`` steps of dt_i = T / steps_i (its own CFL step); the batch is
    stepped together (rows sorted by step count, a finished row drops out), so row i is bitwise
    what sample i gives alone and the work is n * sum_i steps_i cell updates.
    """
    u0 = np.asarray(u0_cells, dtype=np.float64)
    u = np.atleast_2d(u0).copy()
    n = u.shape[1]
    h = 1.0 / n
    steps = burgers_steps(np.max(np.abs(u), axis=1), n, nu, final_time, cfl)
    order = np.argsort(-steps, kind="stable")
    u, steps = u[order], steps[order]
    coef = (final_time / steps / h)[:, None]
    active = np.searchsorted(-steps, -np.arange(int(steps.max(initial=0))), side="left")
    for m in active:  # rows still stepping: the first m (steps sorted in decreasing order)
        u[:m] = godunov_step(u[:m], coef[:m], nu, h)
    out = np.empty_like(u)
    out[order] = u
    return out.reshape(u0.shape)


@dataclass(frozen=True)
class BurgersShock(Problem):
    """Periodic viscous Burgers with small viscosity (see the module docstring)."""

    name: ClassVar[str] = "burgers-shock"
    order: ClassVar[float] = 1.0
    difference_rate: ClassVar[float] = 0.6
    work_exponent: ClassVar[float] = 2.0  # solve work ~ unknowns^2.0 (Problem.work_exponent)

    levels: int = 4
    n_coarse: int = 128
    refinement: int = 2
    n_input: int = 64
    n_output: int = 64
    n_modes: int = 4
    amplitude: float = 0.5
    viscosity: float = 1e-4
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

    def _solve_batch(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        centres = (np.arange(n_cells) + 0.5) / n_cells
        u = solve_burgers_fv(fourier_eval(x, centres), self.viscosity, self.final_time)
        return LinearInterp.between(centres, np.arange(self.n_output) / self.n_output, period=1.0)(u)

    def _solve_one(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        return self._solve_batch(x[None], n_cells)[0]
