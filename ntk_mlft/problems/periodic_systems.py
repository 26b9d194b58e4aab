"""2-D periodic transfer testbeds: ``poisson-aniso-2d``, ``advdiff-2d``, ``helmholtz-2d`` and
their ``transfer-mixture`` (Subramanian et al., NeurIPS 2023, "Towards foundation models for
scientific machine learning": pre-train on one coefficient range, fine-tune on another).

Domain: the periodic unit square. Every system is an instance of the operator of
:mod:`ntk_mlft.problems._periodic` (``-div(D grad u) + b.grad u - c u = f``), solved exactly in
Fourier space (one batched FFT, divide by the symbol, inverse FFT; exact to round-off for
band-limited data, ``tests/test_periodic_systems.py``), with the Gaussian-lattice sources there
(12 x 12 lattice, std 1/32, on/off with p ~ U(0.2, 0.8), amplitudes U(1e-3, 1), max-normalised):

- ``poisson-aniso-2d``: ``-div(0.01 K grad u) = f``, K = R(theta)^T diag(1, e) R(theta),
  theta ~ U(0, 2 pi), e ~ U(``range``) (default (1, 5)); mean of f removed, u of mean 0.
- ``advdiff-2d``: ``-(1 - lam) 0.01 div(K grad u) + lam v.grad u = f``, K as above with
  e ~ U(``e_range``), v = (cos phi, sin phi), phi ~ U(0, 2 pi), and lam chosen so that the
  advection/diffusion ratio psi ~ U(``range``) (default (0.2, 1)). How psi is measured: the
  ratio of the L2 norms of the two terms, ``psi = ||lam v.grad u0|| / ||(1 - lam) 0.01 div(K
  grad u0)||``, evaluated on the pure-diffusion solution u0 of ``-0.01 div(K grad u0) = f`` (the
  leading-order solution; this makes lam = psi / (psi + R0), R0 = ||v.grad u0|| / ||f||, exact
  per sample and computed spectrally). :func:`advection_diffusion_ratio` measures the same
  ratio on the actual solution u instead (tests report both). Mean of f removed.
- ``helmholtz-2d``: ``-0.01 Laplacian u - omega u = f``, omega an integer ~ U{``range``}
  (inclusive, default (1, 10)). Near-resonant draws (max|u| > ``max_amplitude`` = 2 at the input
  nodes) are redrawn (source and omega); :meth:`HelmholtzPeriodic.sample_counting_redraws`
  returns the number redrawn, and a range in which ``max_redraws`` consecutive draws are all
  near-resonant raises a ValueError.
- ``transfer-mixture``: each sample is one of the three systems (``weights``), each with its
  own range (``poisson_range``, ``advdiff_range``, ``helmholtz_range``): mixed pre-training.

Input: the flat vector of ``_periodic`` (source at ``n_input``^2 nodes + the 6 coefficients
D11, D12, D22, b1, b2, c), so all four problems share one input and output layout. Output: u at
the ``n_output``^2 nodes. Levels (``grid(l)``): the same exact solve with the source truncated
to a ``grid(l)``^2 grid's modes; the default is one level on 64^2 (``n_coarse=128,
n_input=128, n_output=128`` for 128^2). ``order`` and ``difference_rate`` are nominal (a
spectral solve has no algebraic order): level differences are the source's Fourier tail, below
1e-8 relative at 64^2 for the default std 1/32. Work: two FFTs of n^2 nodes per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ntk_mlft._checks import check_positive_int, check_positive_scalar
from ntk_mlft.problems._base import Problem
from ntk_mlft.problems._periodic import N_COEF, gaussian_lattice_sources, join_inputs, solve_periodic, split_inputs

__all__ = ["AdvDiffPeriodic", "HelmholtzPeriodic", "PeriodicSystem", "PoissonAniso", "TransferMixture",
           "advection_diffusion_ratio", "check_range"]

DIFFUSIVITY = 0.01


def check_range(name: str, value: object, *, lower: float, integer: bool = False) -> tuple[float, float]:
    """``(lo, hi)`` finite with ``lower <= lo < hi`` (ints for ``integer``), or a ValueError/TypeError."""
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a pair (lo, hi) of numbers; got {value!r}") from err
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if not lo < hi:
        raise ValueError(f"{name} must be a non-empty interval (lo, hi) with lo < hi; got {value!r} "
                         f"({'empty' if lo == hi else 'inverted'})")
    if lo < lower:
        raise ValueError(f"{name} must lie in [{lower:g}, inf); got {value!r}")
    if integer and (lo != round(lo) or hi != round(hi)):
        raise ValueError(f"{name} must have integer end points (omega is an integer); got {value!r}")
    return lo, hi


def _rotated_tensor(rng: np.random.Generator, n: int, e_range: tuple[float, float]) -> np.ndarray:
    """(n, 3) entries (K11, K12, K22) of K = R(theta)^T diag(1, e) R(theta)."""
    theta = rng.uniform(0.0, 2.0 * np.pi, n)
    e = rng.uniform(*e_range, n)
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([c * c + e * s * s, (1.0 - e) * c * s, s * s + e * c * c], axis=1)


@dataclass(frozen=True)
class PeriodicSystem(Problem):
    """Base of the periodic testbeds (module docstring); subclasses draw the coefficients."""

    order: ClassVar[float] = 16.0             # nominal: spectral (see module docstring)
    difference_rate: ClassVar[float] = 16.0

    levels: int = 1
    n_coarse: int = 64
    refinement: int = 2
    n_input: int = 64
    n_output: int = 64
    lattice: int = 12
    source_std: float = 1.0 / 32.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("lattice", self.lattice)
        check_positive_scalar("source_std", self.source_std)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_input * self.n_input + N_COEF,)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.n_output, self.n_output)

    def sources(self, rng: np.random.Generator, n: int, *, remove_mean: bool) -> np.ndarray:
        f = gaussian_lattice_sources(rng, n, self.n_input, self.lattice, self.source_std)
        return f - f.mean(axis=(1, 2), keepdims=True) if remove_mean else f

    def _solve_batch(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        f, coef = split_inputs(x, self.n_input)
        return solve_periodic(f, coef, n_cells, self.n_output)

    def _solve_one(self, x: np.ndarray, n_cells: int) -> np.ndarray:
        return self._solve_batch(x[None], n_cells)[0]


@dataclass(frozen=True)
class PoissonAniso(PeriodicSystem):
    """-div(0.01 K grad u) = f, K = R^T diag(1, e) R, e ~ U(range) (module docstring)."""

    name: ClassVar[str] = "poisson-aniso-2d"
    range: tuple[float, float] = (1.0, 5.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "range", check_range("range (eigenvalue ratio e)", self.range, lower=1e-12))

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        f = self.sources(rng, n, remove_mean=True)
        coef = np.zeros((n, N_COEF))
        coef[:, :3] = DIFFUSIVITY * _rotated_tensor(rng, n, self.range)
        return join_inputs(f, coef)


def _diffusion_ratio(f: np.ndarray, k_entries: np.ndarray, v: np.ndarray) -> np.ndarray:
    """R0 = ||v.grad u0|| / ||f|| (n,) for -0.01 div(K grad u0) = f (mean-free f (n, m, m))."""
    m = f.shape[-1]
    k1 = np.fft.fftfreq(m, 1.0 / m)[:, None]
    k2 = np.fft.fftfreq(m, 1.0 / m)[None, :]
    spec = np.fft.fft2(f)
    kk = k_entries[:, 0, None, None] * k1 ** 2 + 2 * k_entries[:, 1, None, None] * k1 * k2 \
        + k_entries[:, 2, None, None] * k2 ** 2
    diff = 4 * np.pi ** 2 * DIFFUSIVITY * kk
    adv = 2 * np.pi * (v[:, 0, None, None] * k1 + v[:, 1, None, None] * k2)
    ratio = np.where(diff > 0, adv / np.where(diff > 0, diff, 1.0), 0.0)
    power = np.abs(spec) ** 2
    return np.sqrt(np.sum(ratio ** 2 * power, axis=(1, 2)) / np.sum(power, axis=(1, 2)))


def advection_diffusion_ratio(x: np.ndarray, n_input: int) -> np.ndarray:
    """psi measured on the actual solution u: ||b.grad u|| / ||div(D grad u)|| (n,) for inputs x."""
    f, coef = split_inputs(np.atleast_2d(x), n_input)
    m = n_input
    k1 = np.fft.fftfreq(m, 1.0 / m)[:, None]
    k2 = np.fft.fftfreq(m, 1.0 / m)[None, :]
    c = coef[:, :, None, None]
    diff = 4 * np.pi ** 2 * (c[:, 0] * k1 ** 2 + 2 * c[:, 1] * k1 * k2 + c[:, 2] * k2 ** 2)
    adv = 2 * np.pi * (c[:, 3] * k1 + c[:, 4] * k2)
    sig = diff + 1j * adv - c[:, 5]
    u = np.where(sig != 0, np.fft.fft2(f) / np.where(sig != 0, sig, 1.0), 0.0)
    return np.sqrt(np.sum(np.abs(adv * u) ** 2, axis=(1, 2)) / np.sum(np.abs(diff * u) ** 2, axis=(1, 2)))


@dataclass(frozen=True)
class AdvDiffPeriodic(PeriodicSystem):
    """-(1 - lam) 0.01 div(K grad u) + lam v.grad u = f with ratio psi ~ U(range) (module docstring)."""

    name: ClassVar[str] = "advdiff-2d"
    range: tuple[float, float] = (0.2, 1.0)
    e_range: tuple[float, float] = (1.0, 5.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "range", check_range("range (advection/diffusion ratio psi)", self.range,
                                                      lower=0.0))
        object.__setattr__(self, "e_range", check_range("e_range", self.e_range, lower=1e-12))

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        f = self.sources(rng, n, remove_mean=True)
        k_entries = _rotated_tensor(rng, n, self.e_range)
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        v = np.stack([np.cos(phi), np.sin(phi)], axis=1)
        psi = rng.uniform(*self.range, n)
        lam = psi / (psi + _diffusion_ratio(f, k_entries, v))
        coef = np.zeros((n, N_COEF))
        coef[:, :3] = (1.0 - lam)[:, None] * DIFFUSIVITY * k_entries
        coef[:, 3:5] = lam[:, None] * v
        return join_inputs(f, coef)


@dataclass(frozen=True)
class HelmholtzPeriodic(PeriodicSystem):
    """-0.01 Laplacian u - omega u = f, integer omega ~ U{range}, near-resonant draws redrawn."""

    name: ClassVar[str] = "helmholtz-2d"
    range: tuple[float, float] = (1.0, 10.0)
    max_amplitude: float = 2.0
    max_redraws: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "range", check_range("range (omega)", self.range, lower=0.0, integer=True))
        check_positive_scalar("max_amplitude", self.max_amplitude)
        check_positive_int("max_redraws", self.max_redraws)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        f = self.sources(rng, n, remove_mean=False)
        coef = np.zeros((n, N_COEF))
        coef[:, 0] = coef[:, 2] = DIFFUSIVITY
        coef[:, 5] = rng.integers(int(self.range[0]), int(self.range[1]) + 1, n)
        return join_inputs(f, coef)

    def sample_counting_redraws(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
        """(n, *input_shape) accepted inputs and the number of near-resonant draws rejected."""
        n = check_positive_int("n", n)
        out, redrawn, streak = [], 0, 0
        while len(out) < n:
            x = self._draw(rng, 1)
            f, coef = split_inputs(x, self.n_input)
            if np.max(np.abs(solve_periodic(f, coef, self.n_input, self.n_input))) <= self.max_amplitude:
                out.append(x[0])
                streak = 0
                continue
            redrawn += 1
            streak += 1
            if streak >= self.max_redraws:
                raise ValueError(f"helmholtz-2d: range (omega) = {self.range} is resonant for these sources: "
                                 f"{streak} consecutive draws had max|u| > max_amplitude = {self.max_amplitude}; "
                                 f"choose omega away from 0.01 (2 pi |k|)^2 or raise max_amplitude")
        return np.stack(out), redrawn

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.sample_counting_redraws(rng, n)[0]


@dataclass(frozen=True)
class TransferMixture(PeriodicSystem):
    """Each sample one of the three systems, drawn with ``weights`` (mixed pre-training)."""

    name: ClassVar[str] = "transfer-mixture"
    poisson_range: tuple[float, float] = (1.0, 5.0)
    advdiff_range: tuple[float, float] = (0.2, 1.0)
    helmholtz_range: tuple[float, float] = (1.0, 10.0)
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (3,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be 3 finite numbers >= 0 (poisson, advdiff, helmholtz) with a "
                             f"positive sum; got {self.weights!r}")
        object.__setattr__(self, "weights", tuple(float(v) for v in w))
        self.components()   # validates the ranges

    def components(self) -> tuple[PeriodicSystem, PeriodicSystem, PeriodicSystem]:
        grid = dict(levels=self.levels, n_coarse=self.n_coarse, refinement=self.refinement,
                    n_input=self.n_input, n_output=self.n_output, lattice=self.lattice,
                    source_std=self.source_std)
        return (PoissonAniso(range=self.poisson_range, **grid), AdvDiffPeriodic(range=self.advdiff_range, **grid),
                HelmholtzPeriodic(range=self.helmholtz_range, **grid))

    def _sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        w = np.asarray(self.weights)
        which = rng.choice(3, size=n, p=w / w.sum())
        out = np.empty((n, *self.input_shape))
        for i, system in enumerate(self.components()):
            rows = np.flatnonzero(which == i)
            if rows.size:
                out[rows] = system._sample(rng, rows.size)
        return out
