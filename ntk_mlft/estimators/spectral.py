r"""Spectral closed form of the MLFT generalization error (learning-curve theory, multi-level).

Single level (Bordelon, Canatar, Pehlevan ICML 2020; Canatar, Bordelon, Pehlevan Nat. Commun.
2021). Mercer modes of the kernel on the input measure: K(x, x') = sum_rho eta_rho phi_rho(x)
phi_rho(x'), E_x[phi_rho phi_rho'] = delta. On a pool of n points: eta = eig(K/n), phi_rho =
sqrt(n) v_rho. For N i.i.d. samples, unnormalised ridge lambda (K_SS + lambda I), target
t = sum_rho t_rho phi_rho (+ label noise sigma^2), the deterministic equivalent is

    kappa = lambda + kappa sum_rho eta_rho / (N eta_rho + kappa)           (solved per N)
    s_rho = kappa / (N eta_rho + kappa),   v_rho = N eta_rho^2 / (N eta_rho + kappa)^2,
    gamma = sum_rho v_rho,
    E[e_rho | t]   = -s_rho t_rho,
    E[e_rho^2 | t] = s_rho^2 t_rho^2 + v_rho (E(t) + sigma^2),
    E(t) = (sum_rho s_rho^2 t_rho^2 + gamma sigma^2) / (1 - gamma)         (Canatar et al.)

(summing the second line over rho reproduces E(t)). For lambda = 0, kappa solves
1 = sum eta / (N eta + kappa) (needs N < number of non-zero modes).

Multi-level derivation. Let e_l = f_l - u_l. Level l regresses t_l = u_l - f_{l-1} =
d_l - e_{l-1} on X_l, and X_l is independent of X_1..X_{l-1}, hence of e_{l-1}. Then
e_l = f_{l-1} + P_l t_l - u_l = -(t_l - P_l t_l): the single-level error of regressing t_l.
Conditionally on the earlier draws the formulas above hold with t = t_l; they involve t only
through the mode powers t_rho^2 (linearly), so the expectation over earlier draws needs only
the per-mode mean mu_{l-1} = E[e_{l-1,rho}] and second moment q_{l-1} = E[e_{l-1,rho}^2]:

    E[t_rho]   = d_rho - mu_{l-1,rho}
    E[t_rho^2] = d_rho^2 - 2 d_rho mu_{l-1,rho} + q_{l-1,rho}
    mu_l = -s (d - mu_{l-1}),    q_l = s^2 E[t^2] + v (Ebar_l + sigma_l^2),
    Ebar_l = (sum_rho s^2 E[t_rho^2] + gamma sigma_l^2) / (1 - gamma),

with mu_0 = q_0 = 0 (f_0 = 0) and total error E_L = sum_rho q_{L,rho}. Cross-mode correlations
of e_{l-1} never enter: the deterministic equivalent is diagonal in the modes, so the only
approximation beyond the single-level theory is the one it already makes (Gaussian-equivalent
features, N large); tests measure it against Monte-Carlo. A skipped level (N_l = 0) has f_l =
f_{l-1}, i.e. e_l = -t_l: the same recursion with s = 1, v = 0 (its d_l joins the next level).

Multi-output targets: powers are summed over output components (trace over outputs). Because
mu_l is a linear combination sum_k c_{l,k} d_k, everything is expressed through the per-mode
cross powers C_{jk,rho} = <d_{j,rho}, d_{k,rho}> (shape (L, L, P)); E_L is linear in C and
sigma^2, which gives the per-level breakdown. The result is divided by mean ||u_L||^2 (relative
MSE). Finite training time is not covered (t = infinity only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft.estimators._linalg import psd_eigh
from ntk_mlft.estimators.montecarlo import as_level_targets

__all__ = ["Breakdown", "SpectralEstimator", "solve_kappa"]


def solve_kappa(eta: np.ndarray, n: np.ndarray, lam: float) -> np.ndarray:
    """kappa (M,) solving kappa = lam + kappa sum eta/(n eta + kappa) for sample sizes n (M,) > 0.

    Safeguarded Newton in log(kappa) on F = sum eta/(n eta + kappa) + lam/kappa - 1 (decreasing),
    bracketed by [max(lam, tiny), lam + sum eta].
    """
    n = np.asarray(n, dtype=np.float64)[:, None]
    total = float(eta.sum())
    lo = np.full(n.shape, np.log(max(lam, 1e-13 * total)))
    hi = np.full(n.shape, np.log(lam + total))

    def f_and_df(u):
        kap = np.exp(u)
        inv = 1.0 / (n * eta + kap)
        r = eta * inv
        df = -kap * (r * inv).sum(1, keepdims=True) - lam / kap
        return r.sum(1, keepdims=True) + lam / kap - 1, df

    f_lo, _ = f_and_df(lo)
    if lam == 0 and np.any(f_lo <= 0):
        bad = float(n[f_lo[:, 0] <= 0].min())
        raise ValueError(f"counts: N = {bad:g} reaches the number of resolved kernel modes; "
                         f"ridge-less learning-curve theory needs N below it (use a ridge > 0 "
                         f"or a larger pool)")
    desc = eta[::-1] if eta.size < 2 or eta[0] <= eta[-1] else eta
    u = np.log(np.clip(n * desc[np.minimum(n.astype(int), eta.size - 1)] + lam,
                       np.exp(lo), np.exp(hi)))
    for _ in range(100):
        f, df = f_and_df(u)
        lo = np.where(f > 0, u, lo)
        hi = np.where(f <= 0, u, hi)
        step = u - f / df
        new = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
        if np.max(np.abs(new - u)) < 1e-10:
            u = new
            break
        u = new
    return np.exp(u[:, 0])


@dataclass(frozen=True)
class Breakdown:
    """Per-level contributions to the predicted relative error for one allocation.

    contributions[k]: part of the error carried by level difference d_k (its own power plus
    half of each cross term with other levels; sums with ``noise`` to ``total``).
    """

    counts: np.ndarray
    total: float
    contributions: np.ndarray
    noise: float
    single_level: float


@dataclass(frozen=True)
class SpectralEstimator:
    """Closed-form MLFT error from kernel eigenvalues and level-difference mode powers.

    eta (P,) eigenvalues of the kernel integral operator; cross (L, L, P) cross powers
    C_{jk,rho}; norm = mean ||u_L||^2; noise (L,) label-noise variance per level (summed over
    outputs); ridge (L,) unnormalised ridge per level. Satisfies ``ErrorModel``.
    """

    eta: np.ndarray
    cross: np.ndarray
    norm: float
    noise: np.ndarray
    ridge: np.ndarray

    @property
    def n_levels(self) -> int:
        return int(self.cross.shape[0])

    @classmethod
    def from_kernel(cls, k_pool: Any, targets: Any, *, ridge: Any = 0.0) -> SpectralEstimator:
        """Exact pool spectrum: k_pool (n, n) PSD kernel, targets (L, n, ...) levels u_l."""
        evals, evecs = psd_eigh("k_pool", k_pool)
        n = evals.size
        u = as_level_targets(targets, n)
        d = np.concatenate([u[:1], np.diff(u, axis=0)])
        a = np.einsum("xp,lxd->lpd", evecs, d) / np.sqrt(n)          # t_rho per level/output
        cross = np.einsum("jpd,kpd->jkp", a, a)
        n_levels = u.shape[0]
        lam = np.broadcast_to(np.asarray(ridge, dtype=np.float64), (n_levels,)).copy()
        if np.any(lam < 0):
            raise ValueError(f"ridge must be >= 0; got {ridge}")
        keep = evals > 0
        return cls(evals[keep] / n, cross[:, :, keep], float(np.mean(np.sum(u[-1] ** 2, -1))),
                   np.zeros(n_levels), lam)

    def _check(self, counts: Any) -> np.ndarray:
        c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        if c.ndim != 2 or c.shape[1] != self.n_levels:
            raise ValueError(f"counts must have shape (L,) or (M, L) with L = {self.n_levels}; "
                             f"got {np.shape(counts)}")
        if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c[:, -1] < 1):
            raise ValueError(f"counts must be finite, >= 0, with the finest level >= 1; "
                             f"got {counts}")
        return c

    def _propagate(self, c: np.ndarray, cross: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Unnormalised E_L (M,) for counts c (M, L), cross powers (L, L, P), noise (L,)."""
        m, n_levels, p = c.shape[0], self.n_levels, self.eta.size
        coef = np.zeros((m, n_levels, p))                         # mu = sum_k coef_k d_k
        q = np.zeros((m, p))
        for lvl in range(n_levels):
            et2 = cross[lvl, lvl] - 2 * np.einsum("mkp,kp->mp", coef, cross[lvl]) + q
            n_l = c[:, lvl]
            s = np.ones((m, p))
            v = np.zeros((m, p))
            active = n_l > 0
            if np.any(active):
                kap = solve_kappa(self.eta, n_l[active], float(self.ridge[lvl]))[:, None]
                den = n_l[active, None] * self.eta + kap
                s[active] = kap / den
                v[active] = n_l[active, None] * self.eta ** 2 / den ** 2
            gamma = v.sum(1, keepdims=True)
            ebar = ((s ** 2 * et2).sum(1, keepdims=True) + gamma * noise[lvl]) / (1 - gamma)
            q = s ** 2 * et2 + v * (ebar + noise[lvl])
            unit = np.zeros((1, n_levels, 1))
            unit[0, lvl] = 1.0
            coef = s[:, None, :] * (coef - unit)
        return q.sum(1)

    def error_many(self, counts: Any) -> np.ndarray:
        """Predicted relative MSE for each row of counts (M, L); zeros = skipped levels."""
        c = self._check(counts)
        return self._propagate(c, self.cross, self.noise) / self.norm

    def error(self, counts: Any) -> float:
        """Predicted relative MSE for one allocation (L,)."""
        return float(self.error_many(np.asarray(counts, dtype=np.float64)[None])[0])

    def breakdown(self, counts: Any) -> Breakdown:
        """Contribution of each level difference (E is linear in the cross powers and noise)."""
        c = self._check(counts)[:1]
        n_levels = self.n_levels
        parts = np.zeros(n_levels)
        for k in range(n_levels):
            w = np.zeros((n_levels, n_levels, 1))
            w[k, :] += 0.5
            w[:, k] += 0.5
            parts[k] = self._propagate(c, self.cross * w, np.zeros(n_levels))[0] / self.norm
        noise = self._propagate(c, 0 * self.cross, self.noise)[0] / self.norm
        single = self.single_level_error(float(c[0, -1]))
        return Breakdown(c[0], float(parts.sum() + noise), parts, float(noise), single)

    def single_level_error(self, n: float) -> float:
        """Finest level only with n samples (all level differences learned at once)."""
        counts = np.zeros(self.n_levels)
        counts[-1] = n
        return self.error(counts)

    def level_curve(self, level: int, ns: Any) -> np.ndarray:
        """E_l(N): relative error of regressing d_level alone with N samples (level 1-based)."""
        if not 1 <= level <= self.n_levels:
            raise ValueError(f"level must be in 1..{self.n_levels}; got {level}")
        sub = SpectralEstimator(self.eta, self.cross[level - 1:level, level - 1:level],
                                self.norm, self.noise[level - 1:level],
                                self.ridge[level - 1:level])
        return sub.error_many(np.asarray(ns, dtype=np.float64)[:, None])
