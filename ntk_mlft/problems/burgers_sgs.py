"""``burgers-sgs-1d``: the fast 1-D analogue of ``turbulence-sgs-2d`` (decaying viscous Burgers).

DNS: ``u_t + (u^2/2)_x = nu u_xx`` on the periodic [0, 2 pi), pseudo-spectral on ``n_dns`` points,
2/3 de-aliasing, the RK3/Crank--Nicolson scheme of :mod:`ntk_mlft.problems._vorticity` (RK3 for
the advection, CN for the viscosity). Each sample is independent: a random initial condition in
the wavenumber band ``ic_band`` with std ``ic_std``, run to time ``t_end`` (shocks have formed
by then: the breaking time is ~ 1 / max|u_x| ~ 0.3 for the defaults). Filter and LES grid as in
2-D: Gaussian ``exp(-k^2 Delta^2 / 24)``, ``Delta = 2 (2 pi) / n_les``, spectral cut-off to
``n_les`` points. Input: filtered u (channels last, one channel); target

    Pi = filter((u^2/2)_x) - (u_bar^2/2)_x,      u_bar_t + (u_bar^2/2)_x = nu u_bar_xx - Pi,

so the resolved energy budget is ``d/dt <u_bar^2>/2 = -<u_bar Pi> + ...`` and the forward energy
cascade of Burgers turbulence (into the shocks) gives ``<u_bar Pi> > 0``.

Checks (``tests/test_turbulence.py``): the solver against the Cole--Hopf exact solution
``u = 2 nu e^{-nu t} sin x / (a + e^{-nu t} cos x)``; the sign of the mean energy transfer.
CFL (``dt max|u| / dx > max_cfl``) and non-finite states raise SolverError naming the step and
the sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ntk_mlft._checks import check_positive_int, check_positive_scalar
from ntk_mlft.problems._base import SolverError
from ntk_mlft.problems._vorticity import rk3_cn_scan
from ntk_mlft.problems.sgs import SGSSystem

__all__ = ["BurgersSGS1D", "burgers_run"]


def _wavenumbers(n: int) -> np.ndarray:
    return np.arange(n // 2 + 1, dtype=np.float64)


@partial(jax.jit, static_argnames=("n", "steps"))
def burgers_run(u_hat: jax.Array, n: int, steps: int, dt: float, nu: float):
    """``steps`` RK3/CN steps of rfft coefficients (``norm="forward"``) ``u_hat`` (B, n//2+1).

    Returns ``(u_hat, cfl (steps, B), finite (steps, B))``: the CFL number ``dt max|u| n / (2 pi)``
    at each step's start per sample and whether each sample is finite after the step.
    """
    k = _wavenumbers(n)
    keep = k < n / 3.0
    lin = nu * k ** 2
    dx = 2.0 * np.pi / n

    def explicit(uh):
        u = jnp.fft.irfft(uh, n=n, norm="forward")
        flux = jnp.fft.rfft(0.5 * u * u, norm="forward") * keep
        return -1j * k * flux, dt * jnp.max(jnp.abs(u), axis=-1) / dx

    return rk3_cn_scan(u_hat, explicit, lin, keep, dt, steps, finite_axis=-1)


@dataclass(frozen=True)
class BurgersSGS1D(SGSSystem):
    """1-D Burgers SGS testbed (module docstring); every parameter has a default."""

    name: ClassVar[str] = "burgers-sgs-1d"
    spatial_dims: ClassVar[int] = 1
    in_channels: ClassVar[int] = 1

    n_dns: int = 1024
    n_les: int = 32
    nu: float = 0.02
    t_end: float = 1.0
    dt: float = 0.002
    ic_std: float = 1.0
    ic_band: tuple[int, int] = (1, 4)
    max_cfl: float = 1.0

    def __post_init__(self) -> None:
        check_positive_int("n_dns", self.n_dns)
        check_positive_int("n_les", self.n_les)
        for key in ("nu", "t_end", "dt", "ic_std", "max_cfl"):
            check_positive_scalar(key, getattr(self, key))
        if self.n_les % 2 or self.n_dns % 2 or not 4 <= self.n_les <= 2 * self.n_dns // 3:
            raise ValueError(f"n_les and n_dns must be even with 4 <= n_les <= 2 n_dns / 3; got n_les={self.n_les}, "
                             f"n_dns={self.n_dns}")
        lo, hi = (int(v) for v in self.ic_band)
        if not 1 <= lo <= hi < self.n_dns // 3:
            raise ValueError(f"ic_band must be (lo, hi) with 1 <= lo <= hi < n_dns / 3; got {self.ic_band!r}")
        object.__setattr__(self, "ic_band", (lo, hi))

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return (self.n_les,)

    def solver_functions(self) -> tuple[Any, ...]:
        return (burgers_run, rk3_cn_scan)

    def initial_conditions(self, seed: int, start: int, stop: int) -> np.ndarray:
        """(m, n_dns//2+1) rfft coefficients of samples start..stop-1 (own seed stream each)."""
        k = _wavenumbers(self.n_dns)
        band = (k >= self.ic_band[0]) & (k <= self.ic_band[1])
        out = []
        for i in range(start, stop):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))
            u = np.fft.irfft(band * (rng.standard_normal(k.size) + 1j * rng.standard_normal(k.size)),
                             n=self.n_dns, norm="forward")
            out.append(np.fft.rfft(u * (self.ic_std / np.std(u)), norm="forward"))
        return np.stack(out)

    def filtered(self, u_hat: np.ndarray) -> np.ndarray:
        """Gaussian filter of rfft coefficients (..., n_dns//2+1)."""
        delta = 2.0 * (2.0 * np.pi) / self.n_les
        return u_hat * np.exp(-_wavenumbers(self.n_dns) ** 2 * delta ** 2 / 24.0)

    def _to_les(self, f_hat: np.ndarray) -> np.ndarray:
        half = self.n_les // 2
        out = np.zeros((*f_hat.shape[:-1], half + 1), dtype=complex)
        out[..., :half] = f_hat[..., :half]
        return np.fft.irfft(out, n=self.n_les, norm="forward")

    def sgs(self, u_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u_bar, Pi) on the LES grid (m, n_les) from DNS coefficients (m, n_dns//2+1)."""
        n, k = self.n_dns, _wavenumbers(self.n_dns)
        keep = k < n / 3.0

        def flux_x(uh):
            u = np.fft.irfft(uh, n=n, norm="forward")
            return 1j * k * np.fft.rfft(0.5 * u * u, norm="forward") * keep

        ub = self.filtered(u_hat)
        return self._to_les(ub), self._to_les(self.filtered(flux_x(u_hat)) - flux_x(ub))

    def _chunk(self, seed: int, start: int, stop: int, state: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        steps = max(round(self.t_end / self.dt), 1)
        uh, cfl, ok = burgers_run(jnp.asarray(self.initial_conditions(seed, start, stop)), self.n_dns, steps,
                                  self.dt, self.nu)
        cfl, ok = np.asarray(cfl), np.asarray(ok)
        bad = (cfl > self.max_cfl) | ~ok | ~np.isfinite(cfl)
        if bad.any():
            s, i = (int(v) for v in np.argwhere(bad)[0])
            what = f"CFL number {cfl[s, i]:.3g} > max_cfl = {self.max_cfl:g}" if cfl[s, i] > self.max_cfl \
                else "u became NaN/inf"
            raise SolverError(f"{self.name}: {what} at time step {s} (t = {s * self.dt:.4g}) of sample {start + i}; "
                              f"lower dt (now {self.dt:g}) or raise nu", index=start + i)
        ub, pi = self.sgs(np.asarray(uh))
        return ub[..., None], pi[..., None], None
