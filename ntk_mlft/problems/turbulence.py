"""``turbulence-sgs-2d``: 2-D forced (or decaying) turbulence -> filtered (psi, omega) -> SGS term Pi.

The DNS is the pseudo-spectral vorticity--streamfunction solver of
:mod:`ntk_mlft.problems._vorticity` (periodic [0, 2 pi)^2, 2/3 de-aliasing, RK3 for advection and
forcing, Crank--Nicolson for viscosity ``nu`` and drag ``alpha``, Kolmogorov forcing
``forcing * k_f cos(k_f y)``; ``forcing = 0`` is decaying turbulence). One trajectory per seed:
a random initial vorticity in the shell ``ic_band`` of wavenumbers (std ``ic_std``), run for
``spinup`` time units, then one snapshot every ``interval`` time units. Each snapshot gives the
network input (filtered psi, filtered omega) on the ``n_les``^2 grid (channels last) and the target
Pi = filter(J(psi, omega)) - J(filter psi, filter omega), Gaussian filter ``exp(-k^2 Delta^2/24)``,
``Delta = 2 (2 pi) / n_les`` (Subel et al., PNAS Nexus 2023; Guan et al. 2022).

Scale: the paper's DNS is 1024^2 (Re up to 10^5) with LES 64^2 or 128^2 and 2,000 snapshots per
system. On this 2-core CPU one RK3 step at 128^2 costs ~3.5 ms (measured under load 5; 256^2 is
~4x), so the defaults are DNS 128^2, LES 32^2, ``nu = 1e-3`` (base), ``dt = 0.005`` (CFL ~0.6),
snapshots every 0.5 time units (100 steps): ~0.35 s per snapshot. Targets
(:data:`ntk_mlft.problems.sgs.SGS_SYSTEMS`): ``nu = 2.5e-4`` (Re x4) and ``k_f = 8``.

Checks (``tests/test_turbulence.py``): the Jacobian against a closed form; Taylor--Green decays
by the scheme's linear factor to round-off and at the analytic rate exp(-2 nu t) to second
order; the mean resolved-enstrophy transfer ``<omega_bar Pi>`` is positive (forward enstrophy
cascade through the filter scale, which lies above k_f); the energy spectrum's slope
between 2 k_f and k = 20 lies in [-5.5, -3] (slow test; measured -4.76 for the default system
averaged over 10 snapshots after spin-up, -4.66 over k = 16..32: the k^-3 enstrophy cascade
steepened by the linear drag, as expected at this modest Re).

Errors: a CFL number above ``max_cfl`` or a non-finite state raises
:class:`~ntk_mlft.problems._base.SolverError` naming the time step, the snapshot being computed
and the time, before anything of that chunk is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ntk_mlft._checks import check_positive_int, check_positive_scalar
from ntk_mlft.problems import _vorticity
from ntk_mlft.problems._base import SolverError
from ntk_mlft.problems._vorticity import Grid, run_segment, sgs_fields
from ntk_mlft.problems.sgs import SGSSystem

__all__ = ["TurbulenceSGS2D"]


@dataclass(frozen=True)
class TurbulenceSGS2D(SGSSystem):
    """2-D turbulence SGS testbed (module docstring); every parameter has a default."""

    name: ClassVar[str] = "turbulence-sgs-2d"
    spatial_dims: ClassVar[int] = 2
    in_channels: ClassVar[int] = 2

    n_dns: int = 128
    n_les: int = 32
    nu: float = 1e-3
    alpha: float = 0.1
    k_f: int = 4
    forcing: float = 1.0
    dt: float = 0.005
    spinup: float = 50.0
    interval: float = 0.5
    ic_std: float = 5.0
    ic_band: tuple[int, int] = (3, 6)
    max_cfl: float = 1.0

    def __post_init__(self) -> None:
        check_positive_int("n_dns", self.n_dns)
        check_positive_int("n_les", self.n_les)
        check_positive_int("k_f", self.k_f)
        for key in ("nu", "dt", "interval", "ic_std", "max_cfl"):
            check_positive_scalar(key, getattr(self, key))
        for key in ("alpha", "forcing", "spinup"):
            check_positive_scalar(key, getattr(self, key), allow_zero=True)
        if self.n_les % 2 or self.n_dns % 2 or not 4 <= self.n_les <= 2 * self.n_dns // 3:
            raise ValueError(f"n_les and n_dns must be even with 4 <= n_les <= 2 n_dns / 3 (the LES modes "
                             f"must survive de-aliasing); got n_les={self.n_les}, n_dns={self.n_dns}")
        if self.k_f >= self.n_dns // 3:
            raise ValueError(f"k_f must be below n_dns / 3 = {self.n_dns / 3:g} (de-aliased modes); got {self.k_f}")
        lo, hi = (int(v) for v in self.ic_band)
        if not 1 <= lo <= hi < self.n_dns // 3:
            raise ValueError(f"ic_band must be (lo, hi) with 1 <= lo <= hi < n_dns / 3; got {self.ic_band!r}")
        object.__setattr__(self, "ic_band", (lo, hi))
        if self.max_cfl > 1.7:
            raise ValueError(f"max_cfl must be <= 1.7 (RK3's stability limit on the imaginary axis is "
                             f"sqrt(3) for the fastest resolved mode); got {self.max_cfl}")

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return (self.n_les, self.n_les)

    def solver_functions(self) -> tuple[Any, ...]:
        return (run_segment, sgs_fields, _vorticity.rk3_cn_scan, _vorticity.linear_factor,
                _vorticity._velocity_and_jacobian,
                _vorticity.stream_hat, _vorticity.jacobian_hat, _vorticity.filter_spectral, _vorticity.coarse_grain)

    @property
    def grid(self) -> Grid:
        return Grid(self.n_dns)

    def forcing_hat(self) -> np.ndarray:
        y = np.arange(self.n_dns) * 2.0 * np.pi / self.n_dns
        f = np.broadcast_to(self.forcing * self.k_f * np.cos(self.k_f * y)[None, :], (self.n_dns, self.n_dns))
        return np.fft.rfft2(f, norm="forward") * self.grid.dealias

    def initial_state(self, seed: int) -> np.ndarray:
        """Random vorticity (rfft2 coefficients) in the shell ``ic_band``, std ``ic_std``."""
        g = self.grid
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
        k = np.sqrt(g.k2)
        shell = (k >= self.ic_band[0]) & (k <= self.ic_band[1]) & g.dealias
        w = np.fft.irfft2(shell * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)),
                          s=(self.n_dns, self.n_dns), norm="forward")
        return np.fft.rfft2(w * (self.ic_std / np.std(w)), norm="forward")

    def advance(self, w_hat: Any, steps: int, *, first_step: int, snapshot: int | None) -> jax.Array:
        """``steps`` time steps from ``w_hat``; SolverError (CFL / non-finite) naming the step."""
        w, cfl, ok = run_segment(jnp.asarray(w_hat), self.grid, int(steps), self.dt, self.nu, self.alpha,
                                 jnp.asarray(self.forcing_hat()))
        cfl, ok = np.asarray(cfl), np.asarray(ok)
        bad_cfl = np.flatnonzero(cfl > self.max_cfl)               # NaN compares False: caught below
        bad = np.flatnonzero(~ok | ~np.isfinite(cfl))
        where = f"snapshot {snapshot}" if snapshot is not None else "spin-up"
        if bad_cfl.size and (not bad.size or bad_cfl[0] <= bad[0]):
            s = first_step + int(bad_cfl[0])
            raise SolverError(f"{self.name}: CFL number {cfl[bad_cfl[0]]:.3g} > max_cfl = {self.max_cfl:g} at "
                              f"time step {s} (t = {s * self.dt:.4g}, {where}); lower dt (now {self.dt:g}) "
                              f"or raise nu / alpha", index=-1 if snapshot is None else snapshot)
        if bad.size:
            s = first_step + int(bad[0])
            raise SolverError(f"{self.name}: the vorticity became NaN/inf at time step {s} (t = {s * self.dt:.4g}, "
                              f"{where})", index=-1 if snapshot is None else snapshot)
        return w

    def _steps(self, duration: float) -> int:
        return max(round(duration / self.dt), 1)

    def _chunk(self, seed: int, start: int, stop: int, state: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        per = self._steps(self.interval)
        spin = self._steps(self.spinup) if self.spinup > 0 else 0
        if state is None:                                    # first chunk: spin up from the initial state
            w = jnp.asarray(self.initial_state(seed))
            if spin:
                w = self.advance(w, spin, first_step=0, snapshot=None)
        else:
            w = jnp.asarray(state)
        out = []
        for i in range(start, stop):
            w = self.advance(w, per, first_step=spin + i * per, snapshot=i)
            out.append(np.asarray(sgs_fields(w, self.grid, self.n_les)))
        fields = np.moveaxis(np.stack(out), 1, -1)           # (m, n_les, n_les, 3)
        return fields[..., :2], fields[..., 2:], np.asarray(w)

    def _state_arrays(self, state: Any) -> dict[str, np.ndarray]:
        return {"state_re": np.real(state), "state_im": np.imag(state)}

    def _state_from(self, arrays: dict[str, np.ndarray]) -> Any:
        state = arrays["state_re"] + 1j * arrays["state_im"]
        if state.shape != (self.n_dns, self.n_dns // 2 + 1) or not np.all(np.isfinite(state)):
            raise ValueError("cached DNS state has the wrong shape or is not finite")
        return state
