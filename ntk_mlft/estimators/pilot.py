"""Practical MLFT error estimator from paired pilot samples and cheap unlabeled inputs.

Pilot file (``.npz``): ``x`` (n_p, *input_shape), ``y_level1`` .. ``y_levelL`` (n_p,
*output_shape) solved on the SAME inputs, optional ``x_unlabeled`` (m, *input_shape).

Estimator (feeds ``spectral.SpectralEstimator``):
1. Spectrum (Nystrom): eta_rho, v_rho = eig(K_uu / m) on the m unlabeled inputs.
2. Eigenfunctions extended to the pilot inputs: phi_rho(x) = K(x, X_u) v_rho / (sqrt(m) eta_rho)
   for the R = ``n_modes`` leading modes (default min(m/2, 2 n_p)).
3. Level differences d_l = y_l - y_{l-1} on the pilot; z_{l,i,rho} = phi_rho(x_i) d_l(x_i).
   Cross powers C_{jk,rho} = <d_j,rho, d_k,rho> by the unbiased U-statistic
   (sum_{i != i'} z_{j,i} z_{k,i'}) / (n_p (n_p - 1)) -- the plain squared projection is
   biased upward by Var(phi d)/n_p. Individual modes may come out negative; E is linear in C,
   so the error estimate stays unbiased.
4. Unresolved tail: T_jk - sum_{rho <= R} C_jk,rho (T = pilot mean of <d_j, d_k>) is spread
   over the Nystrom modes R+1..m in proportion to eta_rho (a tail as smooth as the kernel).
5. Uncertainty: bootstrap over pilot samples (steps 3-4 redone per resample, spectrum fixed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._io import save_npz_atomic
from ntk_mlft._validation import as_finite_array, check_choice, check_positive_int
from ntk_mlft.estimators._linalg import psd_eigh
from ntk_mlft.estimators.spectral import SpectralEstimator

__all__ = ["Pilot", "PilotEstimator", "load_pilot", "save_pilot"]


@dataclass(frozen=True)
class Pilot:
    """x (n_p, *input_shape); ys (L, n_p, *output_shape); x_unlabeled (m, ...) or None."""

    x: np.ndarray
    ys: np.ndarray
    x_unlabeled: np.ndarray | None = None

    @property
    def n_levels(self) -> int:
        return int(self.ys.shape[0])


def _check_pilot(x: Any, ys: Any) -> tuple[np.ndarray, np.ndarray]:
    x = as_finite_array("x", x)
    if len({np.shape(y) for y in ys}) != 1:
        raise ValueError(f"ys: every level must have the same shape; got {[np.shape(y) for y in ys]}")
    ys = as_finite_array("ys", np.stack([np.asarray(y, dtype=np.float64) for y in ys]))
    if ys.shape[1] != x.shape[0]:
        raise ValueError(f"ys must have n_p = {x.shape[0]} rows per level (same inputs as x); "
                         f"got {ys.shape[1]}")
    return x, ys


def save_pilot(path: str | Path, x: Any, ys: Any, x_unlabeled: Any = None) -> Path:
    """Write a pilot ``.npz`` atomically (keys x, y_level1..y_levelL, optional x_unlabeled)."""
    x, ys = _check_pilot(x, ys)
    arrays = {"x": x, **{f"y_level{i + 1}": y for i, y in enumerate(ys)}}
    if x_unlabeled is not None:
        arrays["x_unlabeled"] = as_finite_array("x_unlabeled", x_unlabeled)
    save_npz_atomic(Path(path), **arrays)
    return Path(path)


def load_pilot(path: str | Path) -> Pilot:
    """Read a pilot file; ValueError naming the missing/inconsistent key."""
    with np.load(Path(path)) as data:
        keys = set(data.files)
        if "x" not in keys or "y_level1" not in keys:
            raise ValueError(f"pilot file {path} must contain 'x' and 'y_level1'..; got {sorted(keys)}")
        n_levels = 1
        while f"y_level{n_levels + 1}" in keys:
            n_levels += 1
        x, ys = _check_pilot(data["x"], [data[f"y_level{i + 1}"] for i in range(n_levels)])
        xu = data["x_unlabeled"] if "x_unlabeled" in keys else None
    return Pilot(x, ys, None if xu is None else as_finite_array("x_unlabeled", xu))


def _cross_powers(phi: np.ndarray, d: np.ndarray, w: np.ndarray, eta_tail: np.ndarray
                  ) -> tuple[np.ndarray, float]:
    """(L, L, P) cross powers and norm = mean||u_L||^2 from pilot samples with multiplicities w.

    U-statistic over pairs of DISTINCT pilot samples (a bootstrap copy paired with itself is
    excluded too): (S_j S_k - sum_i w_i^2 z_ji z_ki) / (n^2 - sum_i w_i^2), S = sum_i w_i z_i.
    """
    n_p = float(w.sum())
    z = np.einsum("ip,lid->lpdi", phi, d)                       # (L, R, D, n_p)
    s = z @ w
    diag = np.einsum("jpdi,kpdi->jkp", z * w ** 2, z)
    c = (np.einsum("jpd,kpd->jkp", s, s) - diag) / (n_p ** 2 - float(np.sum(w ** 2)))
    total = np.einsum("jid,kid,i->jk", d, d, w) / n_p
    tail = total - c.sum(-1)
    if eta_tail.size:
        spread = tail[:, :, None] * (eta_tail / eta_tail.sum())[None, None, :]
        c = np.concatenate([c, spread], axis=-1)
    else:                                   # unlearnable tail: one extra mode with eta = 0
        c = np.concatenate([c, tail[:, :, None]], axis=-1)
    norm = float(np.sum(w * np.sum(d.sum(0) ** 2, -1)) / n_p)
    return c, norm


@dataclass(frozen=True)
class PilotEstimator:
    """Spectral estimate from pilot data plus bootstrap replicates (satisfies ``ErrorModel``)."""

    estimate: SpectralEstimator
    replicates: tuple[SpectralEstimator, ...]
    n_modes: int

    @property
    def n_levels(self) -> int:
        return self.estimate.n_levels

    @classmethod
    def from_kernels(cls, k_uu: Any, k_pu: Any, ys: Any, *, ridge: Any = 0.0,
                     n_modes: int | None = None, tail: str = "kernel", n_boot: int = 100,
                     seed: int = 0) -> PilotEstimator:
        """k_uu (m, m) kernel on unlabeled inputs, k_pu (n_p, m) pilot-vs-unlabeled kernel,
        ys (L, n_p, *output_shape) pilot targets per level on the same inputs."""
        check_choice("tail", tail, ("kernel", "unlearnable"))
        evals, evecs = psd_eigh("k_uu", k_uu)
        m = evals.size
        k_pu = as_finite_array("k_pu", k_pu, ndim=2)
        ys = as_finite_array("ys", ys)
        if k_pu.shape != (ys.shape[1], m):
            raise ValueError(f"k_pu must have shape (n_p, m) = ({ys.shape[1]}, {m}); got {k_pu.shape}")
        n_p = ys.shape[1]
        if n_p < 10:
            raise ValueError(f"ys: need at least 10 pilot samples; got {n_p}")
        order = np.argsort(evals)[::-1]
        eta = evals[order] / m
        evecs = evecs[:, order]
        keep = eta > 1e-12 * eta[0]
        eta, evecs = eta[keep], evecs[:, keep]
        r = min(int(n_modes) if n_modes is not None else min(m // 2, 2 * n_p), eta.size)
        check_positive_int("n_modes", r)
        phi = k_pu @ evecs[:, :r] / (np.sqrt(m) * eta[:r])
        y2 = ys.reshape(ys.shape[0], n_p, -1)
        d = np.concatenate([y2[:1], np.diff(y2, axis=0)])
        if not np.any(y2[-1] != 0):
            raise ValueError("ys: finest-level pilot targets are identically zero")
        lam = np.broadcast_to(np.asarray(ridge, dtype=np.float64), (ys.shape[0],)).copy()
        zeros = np.zeros(ys.shape[0])

        spread = tail == "kernel"
        eta_all = eta if spread else np.concatenate([eta[:r], [0.0]])

        def build(w: np.ndarray) -> SpectralEstimator:
            c, norm = _cross_powers(phi, d, w, eta[r:] if spread else eta[:0])
            return SpectralEstimator(eta_all, c, norm, zeros, lam)

        rng = np.random.default_rng(seed)
        reps = tuple(build(np.bincount(rng.integers(0, n_p, n_p), minlength=n_p).astype(float))
                     for _ in range(n_boot))
        return cls(build(np.ones(n_p)), reps, r)

    @classmethod
    def from_pilot(cls, kernel_fn: Any, pilot: Pilot, *, get: str = "ntk", **kwargs: Any
                   ) -> PilotEstimator:
        """Kernels from ``kernel_fn(x1, x2, get=get)``; needs ``pilot.x_unlabeled``."""
        if pilot.x_unlabeled is None:
            raise ValueError("pilot.x_unlabeled is required (cheap unlabeled inputs for the spectrum)")
        k_uu = np.asarray(kernel_fn(pilot.x_unlabeled, None, get=get), dtype=np.float64)
        k_pu = np.asarray(kernel_fn(pilot.x, pilot.x_unlabeled, get=get), dtype=np.float64)
        return cls.from_kernels(k_uu, k_pu, pilot.ys, **kwargs)

    def error_many(self, counts: Any) -> np.ndarray:
        return np.maximum(self.estimate.error_many(counts), 0.0)

    def error(self, counts: Any) -> float:
        return float(self.error_many(np.asarray(counts, dtype=np.float64)[None])[0])

    def breakdown(self, counts: Any) -> Any:
        return self.estimate.breakdown(counts)

    def error_with_uncertainty(self, counts: Any, level: float = 0.9) -> dict[str, np.ndarray]:
        """Point estimate, bootstrap std and a normal interval est +- z_level * std, counts (M, L)."""
        from scipy.stats import norm

        est = self.error_many(counts)
        boot = np.stack([np.maximum(r.error_many(counts), 0.0) for r in self.replicates])
        std = boot.std(0, ddof=1)
        z = float(norm.ppf(0.5 + level / 2))
        return {"error": est, "std": std, "lower": np.maximum(est - z * std, 0.0),
                "upper": est + z * std}
