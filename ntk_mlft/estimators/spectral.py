"""Spectral closed form of the MLFT generalization error (learning-curve theory, multi-level).

``SpectralEstimator`` predicts the expected relative MSE of chained kernel ridge regression with
``N_l`` i.i.d. samples at level l from the Mercer spectrum of the kernel on a pool and the cross
powers of the level differences (Bordelon et al. 2020, Canatar et al. 2021, extended to levels).

Contract: ``from_kernel(K, targets, ridge=lambda)`` takes a PSD pool kernel (n, n) float64, targets
(L, n, D) and the unnormalised ridge (``K_SS + lambda I``); ``error(counts)`` / ``error_many`` return
the fresh-input error by default (``target="fresh"``: inputs outside every training set,
``MonteCarloResult.fresh_mean``) or the pool error (``target="pool"``: ``MonteCarloResult.mean``).
Counts may not exceed the pool size. ``normalize="diagonal"`` (default) runs the closed form on
the constant-diagonal kernel and measures the error in the matching weighted norm;
``normalize="none"`` is the plain closed form. Eigenvalues below ``_linalg.RCOND`` x the largest
are unlearnable null modes; ``compress`` merges near-equal eigenvalues.

Derivation: ``docs/theory.md`` sections 2 (closed form, multi-level recursion), 3 (diagonal
normalisation) and 4 (fresh-input step). Measured accuracy: ``tests/test_estimators_spectral.py``
and ``analysis/results/estimator_accuracy.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from ntk_mlft._checks import check_choice
from ntk_mlft._linalg import RCOND, check_psd, psd_eigh
from ntk_mlft.estimators._modes import binned_gram, diagonal_weights, runs
from ntk_mlft.estimators.fresh import TARGETS, fresh_second_moments
from ntk_mlft.estimators.montecarlo import as_level_targets, per_level_nonneg

__all__ = ["Breakdown", "SpectralEstimator", "solve_kappa"]


def solve_kappa(eta: np.ndarray, n: np.ndarray, lam: float, mult: np.ndarray | None = None
                ) -> np.ndarray:
    """kappa (M,) solving kappa = lam + kappa sum_b m_b eta_b/(n eta_b + kappa), n (M,) > 0.

    ``mult`` (P,): multiplicity m_b of each eigenvalue (default 1). Safeguarded Newton in
    log(kappa) on F = sum m eta/(n eta + kappa) + lam/kappa - 1 (decreasing), bracketed by
    [max(lam, tiny), lam + sum m eta]; started at lam + (sum of the eigenvalues beyond rank n).
    """
    n = np.asarray(n, dtype=np.float64)[:, None]
    w = eta if mult is None else mult * eta
    total = float(w.sum())
    lo = np.full(n.shape, np.log(max(lam, 1e-13 * total)))
    hi = np.full(n.shape, np.log(lam + total))

    def f_and_df(u):
        kap = np.exp(u)
        inv = 1.0 / (n * eta + kap)
        return ((inv @ w)[:, None] + lam / kap - 1,
                -kap * ((inv * inv) @ w)[:, None] - lam / kap)

    if lam == 0 and np.any(f_and_df(lo)[0] <= 0):
        bad = float(n[f_and_df(lo)[0][:, 0] <= 0].min())
        raise ValueError(f"counts: N = {bad:g} reaches the number of resolved kernel modes; "
                         f"ridge-less learning-curve theory needs N below it (use a ridge > 0 "
                         f"or a larger pool)")
    order = np.argsort(eta)[::-1]                             # start: lam + sum of the modes
    rank = np.cumsum(np.ones(eta.size) if mult is None else mult[order])   # beyond rank N
    tail = total - np.cumsum(w[order])
    start = tail[np.minimum(np.searchsorted(rank, n[:, 0]), eta.size - 1)][:, None] + lam
    u = np.log(np.clip(start, np.exp(lo), np.exp(hi)))
    for _ in range(100):
        f, df = f_and_df(u)
        lo = np.where(f > 0, u, lo)
        hi = np.where(f <= 0, u, hi)
        step = u - f / df
        if np.max(np.abs(step - u)) < 1e-7:      # quadratic convergence: step is good to ~1e-14
            return np.exp(step[:, 0])
        u = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
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


def _gram_as_matrix(gram: np.ndarray) -> np.ndarray:
    """(L, L, B, K) ``G[i, k, b, c]`` → (L K, L B) matrix ``M[(k, c), (i, b)]``, C-contiguous."""
    n_levels, _, bins, knots = gram.shape
    return np.ascontiguousarray(gram.transpose(1, 3, 0, 2).reshape(n_levels * knots, n_levels * bins))


@dataclass(frozen=True)
class SpectralEstimator:
    """Closed-form MLFT error from kernel eigenvalues and level-difference mode powers.

    eta (P,) eigenvalues of the kernel integral operator; cross (L, L, P) cross powers
    C_{jk,rho}; norm = mean ||u_L||^2; noise (L,) label-noise variance per level (summed over
    outputs); ridge (L,) unnormalised ridge per level; mult (P,) or None: number of modes each
    entry stands for (``compressed``; cross then holds their summed powers); gram: weighted Gram
    G of the mean error field (docs/theory.md section 3), (L, L, P, P) over the entries, or (L, L, J, J)
    over ``knots`` (J,) eigenvalues at which the mean-field coefficients are evaluated and
    interpolated (``_modes.hat_matrix``; the pilot estimator's smoothed form); None: G = diag C;
    weight (P,) or None: W_b, the weight of the fluctuations of each entry (None: mult);
    pool_size: number of points of the measure (the largest allowed count; None: no bound, the
    measure is the population and both targets coincide); label_noise (L,) or None: label-noise
    variance summed over outputs in the targets' units (the residual at a training point carries
    it, ``fresh``; None: ``noise``, equal when nothing is normalised); target: what ``error``
    predicts by default, "fresh" (inputs outside every training set, ``fresh``) or "pool" (the
    pool's measure, training points included). Satisfies ``ErrorModel``.
    """

    eta: np.ndarray
    cross: np.ndarray
    norm: float
    noise: np.ndarray
    ridge: np.ndarray
    mult: np.ndarray | None = None
    gram: np.ndarray | None = None
    weight: np.ndarray | None = None
    pool_size: int | None = None
    knots: np.ndarray | None = None
    label_noise: np.ndarray | None = None
    target: str = "fresh"

    def __post_init__(self) -> None:
        check_choice("target", self.target, TARGETS)

    @property
    def n_levels(self) -> int:
        return int(self.cross.shape[0])

    @classmethod
    def from_kernel(cls, k_pool: Any, targets: Any, *, ridge: Any = 0.0, noise: Any = 0.0,
                    compress: float = 0.03, normalize: str = "diagonal", target: str = "fresh"
                    ) -> SpectralEstimator:
        """Pool spectrum: k_pool (n, n) PSD kernel, targets (L, n, ...) levels u_l.

        ``ridge``: scalar or (L,) unnormalised ridge; ``noise``: scalar or (L,) label-noise
        variance per output component (as ``montecarlo_error``); ``compress``: eigenvalue
        ratio tolerance of the entries (0: every mode kept; with ``normalize="diagonal"`` the
        Gram then has n^2 L^2 entries); ``normalize``: "diagonal" or "none" (docs/theory.md section 3);
        ``target``: the default of ``error`` ("fresh" or "pool", class docstring).
        """
        check_choice("normalize", normalize, ("diagonal", "none"))
        if not (np.isscalar(compress) and np.isfinite(compress) and compress >= 0):
            raise ValueError(f"compress must be a finite number >= 0; got {compress!r}")
        k = check_psd("k_pool", k_pool)
        n = k.shape[0]
        u = as_level_targets(targets, n)
        omega = diagonal_weights("k_pool", k) if normalize == "diagonal" else np.ones(n)
        root = np.sqrt(omega)
        evals, evecs = psd_eigh("k_pool", k / np.outer(root, root))
        evals = np.where(evals > RCOND * evals.max(), evals, 0.0)    # as montecarlo's solves
        return cls.from_decomposition(evals, evecs, omega, u, ridge=ridge, noise=noise,
                                      compress=compress, normalize=normalize, target=target)

    @classmethod
    def from_decomposition(cls, evals: np.ndarray, evecs: np.ndarray, omega: np.ndarray,
                           u: np.ndarray, *, ridge: Any = 0.0, noise: Any = 0.0,
                           compress: float = 0.03, normalize: str = "diagonal",
                           target: str = "fresh", w_modes: np.ndarray | None = None
                           ) -> SpectralEstimator:
        """``from_kernel`` after its eigen-decomposition: evals (n,) (null modes already 0),
        evecs (n, n) of the normalised pool kernel, omega (n,) its diagonal weights (ones for
        ``normalize="none"``), u (L, n, D) validated targets (``as_level_targets``), w_modes
        (n, n) W = V^T Omega V or None (computed). Lets ``calibration`` evaluate many targets on
        one pool without a new decomposition."""
        n = evecs.shape[0]
        n_levels = u.shape[0]
        lam = per_level_nonneg("ridge", ridge, n_levels)
        sig2 = per_level_nonneg("noise", noise, n_levels) * u.shape[2]
        d = np.concatenate([u[:1], np.diff(u, axis=0)])
        root = np.sqrt(omega)
        a = np.einsum("xp,lxd->lpd", evecs, d / root[:, None]) / np.sqrt(n)   # t_rho (L, P, D)
        inv_mean = float(np.mean(1 / omega))
        est = cls(evals / n, np.einsum("jpd,kpd->jkp", a, a),
                  float(np.mean(np.sum(u[-1] ** 2, -1))), sig2 * inv_mean, lam * inv_mean,
                  pool_size=n, label_noise=sig2, target=target)
        if normalize == "none":
            return est.compressed(compress) if compress > 0 else est
        order = np.argsort(est.eta, kind="stable")
        starts = runs(est.eta[order], compress)
        w = (evecs * omega[:, None]).T @ evecs if w_modes is None else w_modes   # V^T Omega V
        gram = binned_gram(w[np.ix_(order, order)], a[:, order], starts)
        return est._merged(order, starts, gram, np.add.reduceat(np.diag(w)[order], starts))

    def _merged(self, order: np.ndarray, starts: np.ndarray, gram: np.ndarray | None,
                weight: np.ndarray | None) -> SpectralEstimator:
        """Entries = runs ``starts`` of the modes sorted by ``order``; gram/weight already merged."""
        mult = np.ones(self.eta.size) if self.mult is None else self.mult
        m = np.add.reduceat(mult[order], starts)
        return replace(self, eta=np.add.reduceat(self.eta[order] * mult[order], starts) / m,
                       cross=np.add.reduceat(self.cross[:, :, order], starts, axis=-1),
                       mult=m, gram=gram, weight=weight)

    def compressed(self, rtol: float = 0.03) -> SpectralEstimator:
        """Merge entries whose eigenvalues lie within a factor 1 + rtol into one entry.

        Entries: sorted eigenvalues split into runs with max/min <= 1 + rtol; each run becomes
        eta_b = mean eta (trace kept), mult_b = run length, cross powers, Gram blocks and
        weights summed. Error bound: every per-mode weight of the recursion (eta/(N eta +
        kappa), s, v) has |d log w / d log eta| <= 2, so it changes by a factor <= (1 + rtol)^2
        inside a run, for every N and kappa; E changes by O(rtol) relative (first order,
        amplified by 1/(1 - gamma) near interpolation). Measured on the 2,000-mode mlp-relu-3
        NTK spectrum of the benchmark (unnormalised), 3 levels, 200 random allocations:
        max |dE/E| = 3e-5, 6e-5, 1.6e-4, 1.2e-3 for rtol = 1e-3, 1e-2, 3e-2, 1e-1.
        """
        if not rtol > 0:
            raise ValueError(f"rtol must be > 0; got {rtol}")
        order = np.argsort(self.eta, kind="stable")
        starts = runs(self.eta[order], rtol)
        gram = self.gram if self.gram is None or self.knots is not None else np.add.reduceat(
            np.add.reduceat(self.gram[:, :, order][:, :, :, order], starts, axis=2), starts, axis=3)
        weight = None if self.weight is None else np.add.reduceat(self.weight[order], starts)
        return self._merged(order, starts, gram, weight)

    def _check(self, counts: Any) -> np.ndarray:
        c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        if c.ndim != 2 or c.shape[1] != self.n_levels:
            raise ValueError(f"counts must have shape (L,) or (M, L) with L = {self.n_levels}; "
                             f"got {np.shape(counts)}")
        if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c[:, -1] < 1):
            raise ValueError(f"counts must be finite, >= 0, with the finest level >= 1; "
                             f"got {counts}")
        if self.pool_size is not None and np.any(c > self.pool_size):
            raise ValueError(f"counts must not exceed the pool size {self.pool_size} (the "
                             f"estimate refers to the pool's measure); got max {c.max():g}")
        return c

    def _propagate(self, c: np.ndarray, cross: np.ndarray, noise: np.ndarray,
                   gram: np.ndarray | None, pairs: bool) -> tuple[np.ndarray, np.ndarray]:
        """Pool second moments Pi (unnormalised) and kappa (M, L) for counts c (M, L), cross
        powers (L, L, P), noise (L,): Pi (M, L, L) = E<e_j, e_k> for every level pair when
        ``pairs`` (``fresh`` needs them: Pi_jk = <mu_j, mu_k>_W + sum_b prod_{i=j+1..k} s_i,b
        F_j,b W_b, the fluctuations added after level j being uncorrelated with e_j), else
        (M, 1, 1) holding Pi_LL = E_L alone."""
        m, n_levels, p = c.shape[0], self.n_levels, self.eta.size
        eta = self.eta
        mult = np.ones(p) if self.mult is None else self.mult
        kappa = np.ones((m, n_levels))                            # one solve per ridge value
        for lam in np.unique(self.ridge):
            cols = np.flatnonzero(self.ridge == lam)
            sub = c[:, cols]
            live = sub > 0
            if np.any(live):
                vals = np.ones(sub.shape)
                vals[live] = solve_kappa(eta, sub[live], float(lam), self.mult)
                kappa[:, cols] = vals
        coef = np.zeros((m, n_levels, p))                         # mu = sum_k coef_k d_k
        at = self.knots if gram is not None and self.knots is not None else None
        coef_at = None if at is None else np.zeros((m, n_levels, at.size))
        q = np.zeros((m, p))                                      # E[e_rho^2], entry sums
        fluct = np.zeros((m, p))                                  # F per mode
        weight = mult if self.weight is None else self.weight
        pi = np.zeros((m, n_levels, n_levels) if pairs else (m, 1, 1))
        means, carried = [], []                                   # per level j <= current
        if gram is not None:
            gram_matrix = self._gram_matrix if gram is self.gram else _gram_as_matrix(gram)
        for lvl in range(n_levels):
            et2 = cross[lvl, lvl] + q
            if lvl:
                et2 -= 2 * np.einsum("mkp,kp->mp", coef[:, :lvl], cross[lvl, :lvl])
            n_l = c[:, lvl:lvl + 1]
            kap = kappa[:, lvl:lvl + 1]
            s = kap / (n_l * eta + kap)                           # n_l = 0 (skipped): s = 1
            v1 = (1 - s) ** 2 / np.maximum(n_l, 1)                # N eta^2/(N eta + kappa)^2
            s2 = s * s
            gamma = (v1 * mult).sum(1, keepdims=True)
            ebar = ((s2 * et2).sum(1, keepdims=True) + gamma * noise[lvl]) / (1 - gamma)
            q = s2 * et2 + v1 * mult * (ebar + noise[lvl])
            fluct = s2 * fluct + v1 * (ebar + noise[lvl])
            coef = s[:, None, :] * coef
            coef[:, lvl] -= s
            if at is not None:
                s_at = kap / (n_l * at + kap)
                coef_at = s_at[:, None, :] * coef_at
                coef_at[:, lvl] -= s_at
            if not pairs and lvl < n_levels - 1:
                continue
            mean = (coef if at is None else coef_at).copy()
            if gram is None:                                      # G = diag C: entries apart
                h = np.einsum("mkb,ikb->mib", mean, cross)
            else:                                                 # h_mib = sum_kc mean_mkc G_ikbc
                h = (mean.reshape(m, -1) @ gram_matrix).reshape(m, n_levels, -1)
            if not pairs:
                pi[:, 0, 0] = np.einsum("mib,mib->m", mean, h) + fluct @ weight
                continue
            means.append(mean)
            carried = [s * f for f in carried] + [fluct.copy()]  # prod_{i=j+1..lvl} s_i F_j
            for j in range(lvl + 1):
                pi[:, j, lvl] = pi[:, lvl, j] = np.einsum("mib,mib->m", means[j], h) \
                    + carried[j] @ weight
        return pi, kappa

    @cached_property
    def _gram_matrix(self) -> np.ndarray:
        """``gram`` (L, L, B, K) as the (L K, L B) matrix of the contraction in :meth:`_propagate`
        (made once: the transpose copy dominated an evaluation)."""
        return _gram_as_matrix(self.gram)

    def _evaluate(self, counts: Any, cross: np.ndarray, noise: np.ndarray, gram: np.ndarray | None,
                  label_noise: np.ndarray, target: str | None, guard: bool = True) -> np.ndarray:
        """Unnormalised predicted error (M,) of ``target`` (None: ``self.target``); ``guard``:
        a non-positive fresh value is replaced by the pool value (off for the breakdown's
        parts, which may be negative)."""
        target = self.target if target is None else target
        check_choice("target", target, TARGETS)
        c = self._check(counts)
        if target == "pool" or self.pool_size is None:
            return self._propagate(c, cross, noise, gram, pairs=False)[0][:, 0, 0]
        pi, kappa = self._propagate(c, cross, noise, gram, pairs=True)
        a = np.where(c > 0, 1 - self.ridge / kappa, 0.0)
        fresh = fresh_second_moments(pi, c / self.pool_size, a, label_noise)[:, -1, -1]
        if not guard:
            return fresh
        # guard: where the fresh step's linear system is driven below zero by inconsistent
        # second moments (large coarse errors, docs/theory.md section 9) keep the pool error
        return np.where(fresh > 0, fresh, pi[:, -1, -1])

    def _label_noise(self) -> np.ndarray:
        return self.noise if self.label_noise is None else self.label_noise

    def error_many(self, counts: Any, target: str | None = None) -> np.ndarray:
        """Predicted relative MSE for each row of counts (M, L); zeros = skipped levels.

        ``target``: "fresh" (inputs outside every training set, ``fresh``) or "pool" (the whole
        pool's measure, training points included); None: ``self.target``."""
        return self._evaluate(counts, self.cross, self.noise, self.gram, self._label_noise(),
                              target) / self.norm

    def error(self, counts: Any, target: str | None = None) -> float:
        """Predicted relative MSE for one allocation (L,) (``target`` as ``error_many``)."""
        return float(self.error_many(np.asarray(counts, dtype=np.float64)[None], target)[0])

    def breakdown(self, counts: Any) -> Breakdown:
        """Contribution of each level difference to the error of ``self.target`` (linear in C,
        G and the noise, pool and fresh alike)."""
        c = np.atleast_2d(np.asarray(counts, dtype=np.float64))[:1]
        n_levels = self.n_levels
        parts = np.zeros(n_levels)
        zero = np.zeros(n_levels)
        for k in range(n_levels):
            w = np.zeros((n_levels, n_levels))
            w[k, :] += 0.5
            w[:, k] += 0.5
            gram = None if self.gram is None else self.gram * w[:, :, None, None]
            parts[k] = self._evaluate(c, self.cross * w[:, :, None], zero, gram, zero,
                                      None, guard=False)[0] / self.norm
        gram = None if self.gram is None else 0 * self.gram
        noise = self._evaluate(c, 0 * self.cross, self.noise, gram, self._label_noise(),
                               None, guard=False)[0] / self.norm
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
        sl = slice(level - 1, level)
        sub = replace(self, cross=self.cross[sl, sl], noise=self.noise[sl], ridge=self.ridge[sl],
                      gram=None if self.gram is None else self.gram[sl, sl],
                      label_noise=None if self.label_noise is None else self.label_noise[sl])
        return sub.error_many(np.asarray(ns, dtype=np.float64)[:, None])
