"""Practical MLFT error estimator from paired pilot samples and cheap unlabeled inputs.

Pilot file (``.npz``): ``x`` (n_p, *input_shape), ``y_level1`` .. ``y_levelL`` (n_p,
*output_shape) solved on the SAME inputs, optional ``x_unlabeled`` (m, *input_shape).

Estimator (feeds ``spectral.SpectralEstimator``). The input measure is the empirical measure
of the union U of the pilot and unlabeled inputs (M = n_p + m points); the pilot is a uniformly
random n_p-subset of U (both are i.i.d. draws), which is what makes the mode powers estimable.

1. Spectrum: eta_rho, v_rho = eig(K_UU / M), all M modes kept (null modes: eta = 0, i.e.
   unlearnable power). Eigenfunctions on the pilot inputs are exact: phi_rho(x_i) = sqrt(M) v_rho(i).
2. Level differences d_l = y_l - y_{l-1}; z_{l,i,rho} = phi_rho(x_i) d_l(x_i). The wanted cross
   powers C_{jk,rho} = t_{j,rho} t_{k,rho}, t_rho = mean_U phi_rho d, are estimated without bias
   under sampling without replacement from U:

       C_hat = (1 - 1/M) P + Q / M,    P = mean over ordered pairs i != i' of z_{j,i} z_{k,i'},
                                       Q = mean_i z_{j,i} z_{k,i}.

   (E[P] = (M^2 t_j t_k - M Q_U)/(M(M-1)), E[Q] = Q_U.) Because the M eigenvectors are
   complete, sum_rho P = 0 and sum_rho C_hat = mean_i d_j d_k exactly: the total power is the
   plain pilot mean and no separate tail model is needed.
3. Non-negativity (the fix for predicted errors of 0 or below): single-mode estimates are noisy
   and can be negative (a negative-power mode in the learnable range makes E negative). Modes are
   pooled into bands of geometrically growing rank (edges r_{b+1} = ceil(band_ratio r_b)), the
   (L, L) band sums are projected onto the PSD cone (negative eigenvalues set to 0) and spread
   evenly over the band's modes. With every C_rho PSD the recursion of ``spectral`` gives
   q_rho >= mu_rho^2 >= 0 and s_rho > 0, so E > 0 whenever the finest target is non-zero. The
   learning-curve weights s_rho^2, v_rho vary slowly with rank, so even spreading inside a band
   changes E little; the projection adds a small upward bias only in bands whose power is
   below their sampling noise.
4. Uncertainty: bootstrap over pilot samples (steps 2-3 redone on each resample, pairs of copies
   of one sample excluded from P; the spectrum is fixed).

Quantity predicted: the error on U's empirical measure, like ``montecarlo_error`` on the pool U
(test on all of U, training points included). It approaches the population error (fresh test
inputs) when sum_l N_l << M; measured on a 2,000-point pool, the error on points outside the
training sets exceeds the in-pool error by 1% at N = 20, 5% at N = 100 and 26% at
N = (400, 100, 40). Use many cheap unlabeled inputs (m >> N) when fresh-input error is wanted.

Without ``k_pp`` (the pilot-pilot kernel) the eigenfunctions are Nystrom extensions from the
unlabeled inputs, phi_rho(x) = K(x, X_u) v_rho / (sqrt(m) eta_rho), for the leading ``n_modes``
modes, the powers use P alone (i.i.d. population) and the unresolved power is spread over the
remaining modes in proportion to eta (``tail="kernel"``) or put in one unlearnable mode. This
is less accurate at large N: out-of-sample Nystrom eigenfunctions of high modes have mean
square well below 1 (about 0.1 beyond rank 100 for m = 1,000 in the tests), so their power is
underestimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._io import save_npz_atomic
from ntk_mlft._validation import (as_finite_array, check_choice, check_positive_int,
                                  check_positive_scalar)
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


def _cross_powers(phi: np.ndarray, d: np.ndarray, w: np.ndarray, m_pool: float
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """Mode cross powers (L, L, R), total powers (L, L) and norm = mean||u_L||^2.

    phi (n_p, R) eigenfunctions on the pilot inputs, d (L, n_p, D) level differences, w (n_p,)
    sample multiplicities (bootstrap), m_pool = M (inf: i.i.d. population). P excludes pairs of
    copies of one sample: (S_j S_k - sum_i w_i^2 z_ji z_ki) / (n^2 - sum_i w_i^2), S = sum w z.
    """
    n_p = float(w.sum())
    z = np.einsum("ip,lid->lpdi", phi, d)                       # (L, R, D, n_p)
    s = z @ w
    diag = np.einsum("jpdi,kpdi->jkp", z * w ** 2, z)
    pairs = (np.einsum("jpd,kpd->jkp", s, s) - diag) / (n_p ** 2 - float(np.sum(w ** 2)))
    c = (1 - 1 / m_pool) * pairs
    if np.isfinite(m_pool):
        c = c + np.einsum("jpdi,kpdi->jkp", z * w, z) / (n_p * m_pool)
    total = np.einsum("jid,kid,i->jk", d, d, w) / n_p
    norm = float(np.sum(w * np.sum(d.sum(0) ** 2, -1)) / n_p)
    return c, total, norm


def _band_edges(n_modes: int, ratio: float) -> np.ndarray:
    """Band boundaries 0 = r_0 < r_1 < ... = n_modes with r_{b+1} = max(r_b + 1, ceil(ratio r_b))."""
    edges = [0, 1]
    while edges[-1] < n_modes:
        edges.append(max(edges[-1] + 1, int(np.ceil(ratio * edges[-1]))))
    edges[-1] = n_modes
    return np.array(edges)


def _psd_banded(c: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Pool (L, L, P) powers into rank bands, project each band sum onto the PSD cone, spread it
    evenly over the band's modes (see module docstring, step 3)."""
    sums = np.add.reduceat(c, edges[:-1], axis=-1)              # (L, L, B)
    sym = 0.5 * (sums + np.swapaxes(sums, 0, 1))
    evals, evecs = np.linalg.eigh(np.moveaxis(sym, -1, 0))      # (B, L), (B, L, L)
    psd = np.einsum("bjr,br,bkr->jkb", evecs, np.maximum(evals, 0.0), evecs)
    return np.repeat(psd / np.diff(edges), np.diff(edges), axis=-1)


@dataclass(frozen=True)
class PilotEstimator:
    """Spectral estimate from pilot data plus bootstrap replicates (satisfies ``ErrorModel``).

    ``n_modes``: modes whose powers come from the pilot (M with ``k_pp``; the Nystrom rank
    without); ``pool_size``: M = n_p + m, the size of the measure the error refers to.
    """

    estimate: SpectralEstimator
    replicates: tuple[SpectralEstimator, ...]
    n_modes: int
    pool_size: int

    @property
    def n_levels(self) -> int:
        return self.estimate.n_levels

    @classmethod
    def from_kernels(cls, k_uu: Any, k_pu: Any, ys: Any, *, k_pp: Any = None,
                     ridge: Any = 0.0, n_modes: int | None = None, tail: str = "kernel",
                     band_ratio: float = 2.0, n_boot: int = 100, seed: int = 0
                     ) -> PilotEstimator:
        """k_uu (m, m) kernel on unlabeled inputs, k_pu (n_p, m) pilot-vs-unlabeled kernel,
        ys (L, n_p, *output_shape) pilot targets per level on the same inputs; k_pp (n_p, n_p)
        pilot kernel (recommended: exact eigenfunctions on the pilot, see module docstring).
        ``n_modes`` and ``tail`` apply only without ``k_pp``. ``band_ratio`` > 1: growth of
        the rank bands that are projected onto non-negative powers."""
        check_choice("tail", tail, ("kernel", "unlearnable"))
        band_ratio = check_positive_scalar("band_ratio", band_ratio)
        if band_ratio <= 1:
            raise ValueError(f"band_ratio must be > 1; got {band_ratio}")
        k_uu = as_finite_array("k_uu", k_uu, ndim=2)
        k_pu = as_finite_array("k_pu", k_pu, ndim=2)
        ys = as_finite_array("ys", ys)
        n_p, m = ys.shape[1], k_uu.shape[0]
        if k_pu.shape != (n_p, m):
            raise ValueError(f"k_pu must have shape (n_p, m) = ({n_p}, {m}); got {k_pu.shape}")
        if n_p < 10:
            raise ValueError(f"ys: need at least 10 pilot samples; got {n_p}")
        y2 = ys.reshape(ys.shape[0], n_p, -1)
        if not np.any(y2[-1] != 0):
            raise ValueError("ys: finest-level pilot targets are identically zero")
        d = np.concatenate([y2[:1], np.diff(y2, axis=0)])
        lam = np.broadcast_to(np.asarray(ridge, dtype=np.float64), (ys.shape[0],)).copy()
        if np.any(lam < 0):
            raise ValueError(f"ridge must be >= 0; got {ridge}")
        if k_pp is not None:
            k_pp = as_finite_array("k_pp", k_pp, ndim=2)
            if k_pp.shape != (n_p, n_p):
                raise ValueError(f"k_pp must have shape (n_p, n_p) = ({n_p}, {n_p}); "
                                 f"got {k_pp.shape}")
            size = n_p + m
            evals, evecs = psd_eigh("kernel on pilot + unlabeled inputs",
                                    np.block([[k_pp, k_pu], [k_pu.T, k_uu]]))
            eta = evals[::-1] / size
            phi = np.sqrt(size) * evecs[:n_p, ::-1]
            tail_eta, r = eta[:0], size
        else:
            evals, evecs = psd_eigh("k_uu", k_uu)
            size = m
            eta, evecs = evals[::-1] / m, evecs[:, ::-1]
            keep = eta > 1e-12 * eta[0]
            eta, evecs = eta[keep], evecs[:, keep]
            r = min(int(n_modes) if n_modes is not None else min(m // 2, 2 * n_p), eta.size)
            check_positive_int("n_modes", r)
            phi = k_pu @ evecs[:, :r] / (np.sqrt(m) * eta[:r])
            tail_eta = eta[r:] if tail == "kernel" and r < eta.size else np.zeros(1)
            eta = np.concatenate([eta[:r], tail_eta])
        edges = _band_edges(eta.size, band_ratio)
        zeros = np.zeros(ys.shape[0])
        m_pool = float(size) if k_pp is not None else np.inf

        def build(w: np.ndarray) -> SpectralEstimator:
            c, total, norm = _cross_powers(phi, d, w, m_pool)
            if tail_eta.size:           # Nystrom path: unresolved power over the remaining modes
                rest = total - c.sum(-1)
                share = tail_eta / tail_eta.sum() if tail_eta.sum() > 0 else np.ones(1)
                c = np.concatenate([c, rest[:, :, None] * share], axis=-1)
            return SpectralEstimator(eta, _psd_banded(c, edges), norm, zeros, lam).compressed()

        rng = np.random.default_rng(seed)
        reps = tuple(build(np.bincount(rng.integers(0, n_p, n_p), minlength=n_p).astype(float))
                     for _ in range(n_boot))
        return cls(build(np.ones(n_p)), reps, r, size)

    @classmethod
    def from_pilot(cls, kernel_fn: Any, pilot: Pilot, *, get: str = "ntk", **kwargs: Any
                   ) -> PilotEstimator:
        """Kernels (k_uu, k_pu, k_pp) from ``kernel_fn(x1, x2, get=get)``; needs
        ``pilot.x_unlabeled``."""
        if pilot.x_unlabeled is None:
            raise ValueError("pilot.x_unlabeled is required (cheap unlabeled inputs for the spectrum)")
        k_uu = np.asarray(kernel_fn(pilot.x_unlabeled, None, get=get), dtype=np.float64)
        k_pu = np.asarray(kernel_fn(pilot.x, pilot.x_unlabeled, get=get), dtype=np.float64)
        k_pp = np.asarray(kernel_fn(pilot.x, None, get=get), dtype=np.float64)
        return cls.from_kernels(k_uu, k_pu, pilot.ys, k_pp=k_pp, **kwargs)

    def error_many(self, counts: Any) -> np.ndarray:
        """Predicted relative MSE (M,) for counts (M, L); > 0 by construction (docstring step 3)."""
        return self.estimate.error_many(counts)

    def error(self, counts: Any) -> float:
        return float(self.error_many(np.asarray(counts, dtype=np.float64)[None])[0])

    def breakdown(self, counts: Any) -> Any:
        return self.estimate.breakdown(counts)

    def error_with_uncertainty(self, counts: Any, level: float = 0.9) -> dict[str, np.ndarray]:
        """Point estimate, bootstrap std and a normal interval est +- z_level * std, counts (M, L)."""
        from statistics import NormalDist

        est = self.error_many(counts)
        boot = np.stack([r.error_many(counts) for r in self.replicates])
        std = boot.std(0, ddof=1)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return {"error": est, "std": std, "lower": np.maximum(est - z * std, 0.0),
                "upper": est + z * std}
