"""Pseudo-spectral 2-D vorticity--streamfunction solver (JAX) and the subgrid-scale (SGS) term.

Equations on the periodic box [0, 2 pi)^2, fields indexed ``[i_x, i_y]`` at ``x_i = 2 pi i / n``:

    omega_t + J(psi, omega) = nu Lap omega - alpha omega + F,     omega = -Lap psi,
    J(psi, omega) = u . grad omega = psi_y omega_x - psi_x omega_y,   u = (psi_y, -psi_x),

``F = A k_f cos(k_f y)`` (Kolmogorov forcing; ``A = 0``: decaying turbulence), linear drag ``alpha``.
Time stepping in Fourier space (``norm="forward"`` coefficients, so a mode's coefficient does not
depend on the grid): the low-storage RK3/Crank--Nicolson scheme of Spalart, Moser & Rogers (1991),
third-order Runge--Kutta for ``N = F - J`` and Crank--Nicolson for the linear terms
``L_k = nu k^2 + alpha`` in each of the three sub-steps (:func:`run_segment`). AB2 was tried first
and is unstable here: its stability region barely covers the imaginary axis, so the undamped
advective modes near the 2/3 cut-off grew at CFL 0.6; RK3's covers it up to |lambda dt| = sqrt(3).
The 2/3 rule: every product is formed on the grid and its modes with ``|k_x| >= n/3`` or
``|k_y| >= n/3`` zeroed, and the state keeps only the surviving modes. A Taylor--Green field
(``J = 0`` identically) therefore decays per step by exactly :func:`linear_factor`, which tends to
``exp(-L dt)`` (second order in dt over a fixed time; ``tests/test_turbulence.py``).

Filter and LES grid: Gaussian ``G(k) = exp(-k^2 Delta^2 / 24)`` with ``Delta = 2 L / n_les``
(L = 2 pi), then coarse-graining to an ``n_les^2`` grid by spectral cut-off (modes with
``|k_i| < n_les / 2`` kept). The SGS term of the filtered vorticity equation is

    Pi = filter(J(psi, omega)) - J(filter psi, filter omega),
    filtered omega_t + J(psi_bar, omega_bar) = nu Lap omega_bar - alpha omega_bar + F_bar - Pi,

both Jacobians formed (de-aliased) on the DNS grid, then coarse-grained. Resolved enstrophy and
energy budgets: ``d/dt <omega_bar^2>/2 = -<omega_bar Pi> + ...`` and ``d/dt E_bar = -<psi_bar Pi> +
...``, so a forward enstrophy cascade gives ``<omega_bar Pi> > 0`` and backscatter of energy (the
inverse cascade) ``<psi_bar Pi> < 0``.

Stability: the advective CFL number ``dt (max|u| + max|v|) / dx`` is recorded at every step;
:func:`run_segment` returns it with a finite flag per step so callers can name the first bad step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Grid", "coarse_grain", "energy_spectrum", "filter_spectral", "jacobian_hat", "linear_factor", "run_segment",
           "sgs_fields", "stream_hat"]


@dataclass(frozen=True)
class Grid:
    """Wavenumbers of an ``n x n`` grid on [0, 2 pi)^2 in ``rfft2`` layout (axis 0: k_x, axis 1: k_y)."""

    n: int

    @property
    def kx(self) -> np.ndarray:
        return np.fft.fftfreq(self.n, 1.0 / self.n)[:, None]

    @property
    def ky(self) -> np.ndarray:
        return np.arange(self.n // 2 + 1, dtype=np.float64)[None, :]

    @property
    def k2(self) -> np.ndarray:
        return self.kx ** 2 + self.ky ** 2

    @property
    def dealias(self) -> np.ndarray:
        """2/3-rule mask (n, n//2+1): True where ``|k_x| < n/3`` and ``|k_y| < n/3``."""
        return (np.abs(self.kx) < self.n / 3.0) & (np.abs(self.ky) < self.n / 3.0)


def _fwd(f):
    return jnp.fft.rfft2(f, norm="forward")


def _inv(fh, n):
    return jnp.fft.irfft2(fh, s=(n, n), norm="forward")


def stream_hat(w_hat: jax.Array, grid: Grid) -> jax.Array:
    """psi_hat = omega_hat / k^2 (mean mode 0)."""
    k2 = grid.k2
    return jnp.where(k2 > 0, w_hat / np.where(k2 > 0, k2, 1.0), 0.0)


def _velocity_and_jacobian(psi_hat, w_hat, grid: Grid):
    """(u, v, J_hat) with J = psi_y omega_x - psi_x omega_y formed on the grid, de-aliased."""
    n, kx, ky = grid.n, grid.kx, grid.ky
    u = _inv(1j * ky * psi_hat, n)
    v = -_inv(1j * kx * psi_hat, n)
    wx = _inv(1j * kx * w_hat, n)
    wy = _inv(1j * ky * w_hat, n)
    return u, v, _fwd(u * wx + v * wy) * grid.dealias


def jacobian_hat(psi_hat: jax.Array, w_hat: jax.Array, grid: Grid) -> jax.Array:
    """Fourier coefficients of J(psi, omega) = psi_y omega_x - psi_x omega_y (2/3 de-aliased)."""
    return _velocity_and_jacobian(psi_hat, w_hat, grid)[2]


# low-storage RK3 / Crank--Nicolson coefficients (Spalart, Moser & Rogers 1991): alpha_i + beta_i = gamma_i + zeta_i
_GAMMA = (8.0 / 15.0, 5.0 / 12.0, 3.0 / 4.0)
_ZETA = (0.0, -17.0 / 60.0, -5.0 / 12.0)
_ALPHA = (4.0 / 15.0, 1.0 / 15.0, 1.0 / 6.0)
_BETA = _ALPHA


def linear_factor(k2: np.ndarray, dt: float, nu: float, alpha: float) -> np.ndarray:
    """Amplification of one step for the linear terms alone (what a Taylor--Green field sees):
    ``prod_i (1 - dt alpha_i L) / (1 + dt beta_i L)``, L = nu k^2 + alpha; -> exp(-L dt) at O(dt^3)."""
    lin = nu * np.asarray(k2) + alpha
    out = np.ones_like(lin)
    for a, b in zip(_ALPHA, _BETA):
        out = out * (1.0 - dt * a * lin) / (1.0 + dt * b * lin)
    return out


@partial(jax.jit, static_argnames=("grid", "steps"))
def run_segment(w_hat, grid: Grid, steps: int, dt: float, nu: float, alpha: float, forcing_hat):
    """``steps`` RK3/CN steps from ``w_hat``: ``(w_hat, cfl (steps,), finite (steps,))``.

    Sub-step i: ``w_i (1 + dt beta_i L) = w_{i-1} (1 - dt alpha_i L) + dt (gamma_i N_{i-1} + zeta_i
    N_{i-2})`` with ``N = F - J(psi, omega)`` (explicit) and ``L = nu k^2 + alpha`` (implicit);
    ``cfl[s] = dt (max|u| + max|v|) n / (2 pi)`` at the start of step s, ``finite[s]`` whether
    the state after step s is finite.
    """
    lin = nu * grid.k2 + alpha
    dx = 2.0 * np.pi / grid.n

    def explicit(w):
        u, v, jh = _velocity_and_jacobian(stream_hat(w, grid), w, grid)
        return forcing_hat - jh, dt * (jnp.max(jnp.abs(u)) + jnp.max(jnp.abs(v))) / dx

    return rk3_cn_scan(w_hat, explicit, lin, grid.dealias, dt, steps)


def rk3_cn_scan(state, explicit, lin, mask, dt: float, steps: int, finite_axis=None):
    """``steps`` low-storage RK3 (explicit part) / Crank-Nicolson (implicit ``lin``) steps of the
    spectral ``state``, shared by the vorticity and Burgers SGS solvers.

    ``explicit(state) -> (N, cfl)``: the explicit tendency and the CFL number; ``mask`` (e.g. the
    2/3 de-aliasing) multiplies every sub-step. Returns ``(state, cfl (steps, ...), finite
    (steps, ...))``: the CFL number at each step's start, and whether the state after the step is
    finite (reduced over ``finite_axis``; None: over everything)."""
    def step(w, _):
        prev = jnp.zeros_like(w)
        cfl = None
        for a, b, g, z in zip(_ALPHA, _BETA, _GAMMA, _ZETA):
            now, c = explicit(w)
            cfl = c if cfl is None else cfl
            w = (w * (1.0 - dt * a * lin) + dt * (g * now + z * prev)) / (1.0 + dt * b * lin) * mask
            prev = now
        return w, (cfl, jnp.all(jnp.isfinite(w), axis=finite_axis))

    w, (cfl, ok) = jax.lax.scan(step, state, None, length=steps)
    return w, cfl, ok


def filter_spectral(f_hat: jax.Array, grid: Grid, n_les: int) -> jax.Array:
    """Gaussian filter exp(-k^2 Delta^2 / 24), Delta = 2 (2 pi) / n_les, of rfft2 coefficients."""
    delta = 2.0 * (2.0 * np.pi) / n_les
    return f_hat * np.exp(-grid.k2 * delta ** 2 / 24.0)


def coarse_grain(f_hat: jax.Array, n: int, n_les: int) -> jax.Array:
    """Values on the n_les^2 grid of the modes ``|k_i| < n_les / 2`` of rfft2 coefficients (n grid)."""
    half = n_les // 2
    out = jnp.zeros((n_les, half + 1), dtype=f_hat.dtype)
    out = out.at[:half, :half].set(f_hat[:half, :half])
    out = out.at[n_les - half + 1:, :half].set(f_hat[n - half + 1:, :half])
    return _inv(out, n_les)


@partial(jax.jit, static_argnames=("grid", "n_les"))
def sgs_fields(w_hat: jax.Array, grid: Grid, n_les: int) -> jax.Array:
    """(3, n_les, n_les): filtered psi, filtered omega and Pi on the LES grid, from the DNS state."""
    psi_hat = stream_hat(w_hat, grid)
    j_full = jacobian_hat(psi_hat, w_hat, grid)
    psi_bar = filter_spectral(psi_hat, grid, n_les)
    w_bar = filter_spectral(w_hat, grid, n_les)
    pi_hat = filter_spectral(j_full, grid, n_les) - jacobian_hat(psi_bar, w_bar, grid)
    return jnp.stack([coarse_grain(psi_bar, grid.n, n_les), coarse_grain(w_bar, grid.n, n_les),
                      coarse_grain(pi_hat, grid.n, n_les)])


def energy_spectrum(w_hat: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Shell-summed kinetic energy spectrum E(k), k = 1 .. n/2 - 1 (integer shells |k| in [k-1/2, k+1/2))."""
    w_hat = np.asarray(w_hat)
    k2 = grid.k2
    e = 0.5 * np.where(k2 > 0, np.abs(w_hat) ** 2 / np.where(k2 > 0, k2, 1.0), 0.0)
    e = e * np.where(grid.ky == 0, 1.0, 2.0)           # rfft half plane: count the conjugates
    shell = np.rint(np.sqrt(k2)).astype(int)
    ks = np.arange(1, grid.n // 2)
    return ks.astype(float), np.bincount(shell.ravel(), weights=e.ravel(), minlength=grid.n)[ks]
