r"""Predicted downstream error of fine-tuning vs training from scratch: two-level MLFT whose
levels live on two input measures (source physics, target physics).

In the NTK regime a network pre-trained on N_pre source samples (X_s, u_s) is the kernel
regression f_1 = K(., X_s)(K_ss + lambda I)^{-1} u_s; fine-tuning all layers on N target samples
is kernel regression of the residual u_t - f_1 on X_t (same kernel), f_2 = f_1 + P_t(u_t - f_1):
MLFT with level 1 = source, level 2 = target (``docs/transfer.md``). The difference from
``ntk_mlft.estimators`` is that X_s and X_t come from different distributions, so the level-1
deterministic equivalent is taken on the source pool and carried to the target pool:

1. Level 1 (source pool of n_s points, diagonal-normalised kernel K_hat, modes eta_rho, v_rho of
   K_hat_ss / n_s, ridge lambda mean(1/omega)): kappa(N_pre) from ``solve_kappa``; the expected
   predictor at any point x is the effective-ridge regression
   ``fbar(x) = sqrt(omega_x) K_hat(x, S) V diag(N / (n_s (N eta + kappa))) V^T (u_s / sqrt(omega_s))``
   and its fluctuation is Gaussian-equivalent, diagonal in the source modes with variance
   ``v_rho E_1`` (E_1 the level-1 pool error, Canatar et al. 2021), i.e. a random field with
   covariance ``A A^T``, ``A(x, rho) = sqrt(omega_x E_1 N / n_s) K_hat(x, S) v_rho / (N eta_rho + kappa)``.
2. Level 2 (target pool): the single-level closed form (``SpectralEstimator.from_kernel``) is
   linear in the second moments of its target, and X_t is independent of X_s, so the expected
   fine-tune error is the single-level error of the deterministic multi-output target
   ``[u_t - fbar, A]`` (mean and fluctuation channels), normalised by mean ||u_t||^2.
   Scratch is the same with N_pre = 0 (fbar = 0, A = 0).

The error is the relative MSE at fresh target inputs (target pool points outside the downstream
training set), as ``montecarlo_error``'s ``fresh_mean``; :func:`transfer_montecarlo` is the
reference (same pools, sets drawn without replacement). N_pre <= n_s and N <= n_t (the pools'
measures); the fresh-input accuracy is documented up to N = n_t / 2 (``spectral``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft._checks import as_finite_array, check_choice, check_positive_int, check_positive_scalar
from ntk_mlft._linalg import RCOND, check_psd, psd_eigh
from ntk_mlft.estimators import SpectralEstimator, solve_kappa
from ntk_mlft.estimators._modes import binned_gram, diagonal_weights, runs
from ntk_mlft.estimators.montecarlo import MonteCarloResult, _level_fit

__all__ = ["TransferEstimator", "check_counts_within", "transfer_montecarlo"]


def check_counts_within(name: str, counts: Any, limit: int, what: str, *, allow_zero: bool = False) -> np.ndarray:
    """1-D integer counts in [1 (or 0), limit], else a ValueError naming ``name`` and ``what`` bounds it."""
    c = np.atleast_1d(np.asarray(counts))
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c.astype(float))) or np.any(c != np.round(c)):
        raise ValueError(f"{name} must be a non-empty list of integers; got {counts!r}")
    c = c.astype(np.int64)
    low = 0 if allow_zero else 1
    if np.any(c < low):
        raise ValueError(f"{name} must be >= {low}; got {c.min()}")
    if np.any(c > limit):
        raise ValueError(f"{name}: {int(c.max())} exceeds {what} ({limit} samples); generate more data "
                         f"or ask for fewer samples")
    return c


def _targets(name: str, u: Any, n: int) -> np.ndarray:
    arr = as_finite_array(name, u)
    if arr.ndim < 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have {n} rows (one per pool point); got shape {arr.shape}")
    return arr.reshape(n, -1)


@dataclass(frozen=True)
class _TargetModes:
    """The target pool's diagonal-normalised modes, computed once and shared by every N_pre:
    eigenvalues ``eta`` (P,) of K_hat_tt / n_t, eigenvectors ``evecs`` (n_t, P), ``root`` =
    sqrt(omega_t), the sorted weight matrix W = V^T Omega V (``w_sorted``, P x P in eigenvalue
    order ``order``), the entry runs ``starts`` and their weights, as in
    ``SpectralEstimator.from_kernel`` (which recomputes them on every call)."""

    eta: np.ndarray
    evecs: np.ndarray
    root: np.ndarray
    inv_mean: float
    order: np.ndarray
    starts: np.ndarray
    w_sorted: np.ndarray | None
    weight: np.ndarray | None

    @classmethod
    def of(cls, k_tt: np.ndarray, normalize: str, compress: float) -> _TargetModes:
        n = k_tt.shape[0]
        omega = diagonal_weights("k_tt", k_tt) if normalize == "diagonal" else np.ones(n)
        root = np.sqrt(omega)
        evals, evecs = psd_eigh("k_tt", k_tt / np.outer(root, root))
        evals = np.where(evals > RCOND * evals.max(), evals, 0.0)
        eta = evals / n
        order = np.argsort(eta, kind="stable")
        starts = runs(eta[order], compress) if compress > 0 else np.arange(n)
        if normalize == "none":
            return cls(eta, evecs, root, 1.0, order, starts, None, None)
        w = (evecs * omega[:, None]).T @ evecs
        w_sorted = w[np.ix_(order, order)]
        return cls(eta, evecs, root, float(np.mean(1 / omega)), order, starts, w_sorted,
                   np.add.reduceat(np.diag(w_sorted), starts))

    def estimator(self, a: np.ndarray, norm: float, ridge: float) -> SpectralEstimator:
        """Single-level ``SpectralEstimator`` for a target with mode components a (P, D), the
        construction of ``SpectralEstimator.from_kernel`` from its eigen-decomposition on."""
        n = self.evecs.shape[0]
        est = SpectralEstimator(self.eta, np.einsum("pd,pd->p", a, a)[None, None], norm, np.zeros(1),
                                np.array([ridge * self.inv_mean]), pool_size=n, label_noise=np.zeros(1))
        if self.w_sorted is None:
            return est._merged(self.order, self.starts, None, None)
        gram = binned_gram(self.w_sorted, a[None, self.order], self.starts)
        return est._merged(self.order, self.starts, gram, self.weight)


@dataclass(frozen=True)
class TransferEstimator:
    """Closed-form fine-tune and scratch errors for one (source pool, target pool) pair.

    Built by :meth:`from_kernels`. Holds the source modes (``eta`` (n_s,) of K_hat_ss / n_s,
    ``coeffs`` = V^T u_hat_s (n_s, D)), the target-pool features of the source modes ``basis`` =
    sqrt(omega_t) K_hat_ts V (n_t, n_s), the target modes (``_TargetModes``) with the mode
    components of the targets (``a_u`` (P, D)) and of the basis (``a_basis`` (P, n_s)), the
    source ridge (normalised), the unnormalised ridge and mean ||u_t||^2."""

    eta: np.ndarray
    coeffs: np.ndarray
    basis: np.ndarray
    u_t: np.ndarray
    modes: _TargetModes
    a_u: np.ndarray
    a_basis: np.ndarray
    ridge_source: float
    ridge: float
    norm: float

    @property
    def n_source(self) -> int:
        return int(self.eta.size)

    @property
    def n_target(self) -> int:
        return int(self.u_t.shape[0])

    @classmethod
    def from_kernels(cls, k_ss: Any, k_ts: Any, k_tt: Any, u_s: Any, u_t: Any, *, ridge: float = 0.0,
                     normalize: str = "diagonal", compress: float = 0.03) -> TransferEstimator:
        """k_ss (n_s, n_s) kernel on the source pool, k_ts (n_t, n_s) target-vs-source, k_tt
        (n_t, n_t) target pool; u_s (n_s, ...), u_t (n_t, ...) labels; ``ridge`` unnormalised
        (>= 0; both stages); ``normalize`` "diagonal" or "none" and ``compress`` as
        ``SpectralEstimator.from_kernel``. Cost: eigen-decompositions of both pools and
        W = V^T Omega V of the target pool, once."""
        check_choice("normalize", normalize, ("diagonal", "none"))
        ridge = check_positive_scalar("ridge", ridge, allow_zero=True)
        compress = check_positive_scalar("compress", compress, allow_zero=True)
        k_ss = check_psd("k_ss", k_ss)
        k_tt = check_psd("k_tt", k_tt)
        n_s, n_t = k_ss.shape[0], k_tt.shape[0]
        k_ts = as_finite_array("k_ts", k_ts, ndim=2)
        if k_ts.shape != (n_t, n_s):
            raise ValueError(f"k_ts must have shape (n_t, n_s) = ({n_t}, {n_s}); got {k_ts.shape}")
        us, ut = _targets("u_s", u_s, n_s), _targets("u_t", u_t, n_t)
        if us.shape[1] != ut.shape[1]:
            raise ValueError(f"u_s and u_t must have the same output size; got {us.shape[1]} and {ut.shape[1]}")
        if not np.any(ut != 0):
            raise ValueError("u_t is identically zero; the relative error is undefined")
        if normalize == "diagonal":
            omega_s = diagonal_weights("k_ss", k_ss)
            diag_t = np.diagonal(k_tt)
            if np.any(diag_t <= 0):
                raise ValueError("k_tt: diagonal normalisation needs K(x, x) > 0 (use normalize='none')")
            omega_t = diag_t / float(np.mean(np.diagonal(k_ss)))
        else:
            omega_s, omega_t = np.ones(n_s), np.ones(n_t)
        rs, rt = np.sqrt(omega_s), np.sqrt(omega_t)
        evals, evecs = psd_eigh("k_ss", k_ss / np.outer(rs, rs))
        evals = np.where(evals > RCOND * evals.max(), evals, 0.0)
        basis = (k_ts / np.outer(rt, rs)) @ evecs * rt[:, None]
        modes = _TargetModes.of(k_tt, normalize, compress)
        project = modes.evecs.T / (modes.root[None, :] * np.sqrt(n_t))    # t_rho = mean phi_rho y / root
        return cls(evals / n_s, evecs.T @ (us / rs[:, None]), basis, ut, modes, project @ ut, project @ basis,
                   ridge * float(np.mean(1 / omega_s)), ridge, float(np.mean(np.sum(ut ** 2, axis=1))))

    def _level_one(self, n_pre: int) -> tuple[np.ndarray, np.ndarray]:
        """Per source mode, the weight of the mean predictor N / (n_s (N eta + kappa)) and of the
        fluctuation channels sqrt(E_1 N / n_s) / (N eta + kappa) (0 on null modes)."""
        n_s, eta = self.n_source, self.eta
        kappa = float(solve_kappa(eta, np.array([float(n_pre)]), self.ridge_source)[0])
        denom = n_pre * eta + kappa
        s = kappa / denom
        gamma = float(np.sum(n_pre * eta ** 2 / denom ** 2))
        e1 = float(np.sum(s ** 2 * np.sum(self.coeffs ** 2, axis=1) / n_s)) / (1 - gamma)
        return n_pre / (n_s * denom), np.where(eta > 0, np.sqrt(e1 * n_pre / n_s) / denom, 0.0)

    def level_two(self, n_pre: int) -> SpectralEstimator:
        """The single-level target-pool estimator after pre-training on ``n_pre`` source samples
        (target ``[u_t - fbar, A]``, module docstring)."""
        n_pre = int(check_counts_within("n_pre", [n_pre], self.n_source, "the source pool", allow_zero=True)[0])
        if n_pre == 0:
            return self.modes.estimator(self.a_u, self.norm, self.ridge)
        mean_w, fluct_w = self._level_one(n_pre)
        a = np.concatenate([self.a_u - self.a_basis @ (self.coeffs * mean_w[:, None]),
                            self.a_basis[:, fluct_w > 0] * fluct_w[fluct_w > 0]], axis=1)
        return self.modes.estimator(a, self.norm, self.ridge)

    def errors(self, n_pre: int, n_down: Any) -> np.ndarray:
        """Predicted fresh-input relative MSE (M,) after fine-tuning on each downstream count
        (n_pre = 0: from scratch)."""
        n = check_counts_within("n_down", n_down, self.n_target, "the target pool")
        return self.level_two(n_pre).error_many(n[:, None].astype(float))

    def pretrained_error(self, n_pre: int) -> float:
        """Predicted relative MSE of the pre-trained network on the target pool (no fine-tuning):
        mean of ||u_t - fbar||^2 + the fluctuation variance, over mean ||u_t||^2."""
        n_pre = int(check_counts_within("n_pre", [n_pre], self.n_source, "the source pool", allow_zero=True)[0])
        if n_pre == 0:
            return 1.0
        mean_w, fluct_w = self._level_one(n_pre)
        resid = self.u_t - self.basis @ (self.coeffs * mean_w[:, None])
        fluct = np.sum((self.basis * fluct_w) ** 2)
        return float((np.sum(resid ** 2) + fluct) / np.sum(self.u_t ** 2))


def transfer_montecarlo(k_ss: Any, k_ts: Any, k_tt: Any, u_s: Any, u_t: Any, n_pre: int, n_down: Any, *,
                        ridge: float = 0.0, n_trials: int = 20, seed: int = 0) -> MonteCarloResult:
    """Monte-Carlo reference: per trial draw N_pre source points (without replacement), fit;
    draw N target points, fit the residual; error on the target points outside that set
    (``fresh_*``) and on the whole target pool (``mean``). Returns a ``MonteCarloResult`` with
    counts (M, 2) = (N_pre, N)."""
    k_ss, k_tt = check_psd("k_ss", k_ss), check_psd("k_tt", k_tt)
    n_s, n_t = k_ss.shape[0], k_tt.shape[0]
    k_ts = as_finite_array("k_ts", k_ts, ndim=2)
    us, ut = _targets("u_s", u_s, n_s), _targets("u_t", u_t, n_t)
    n_pre = int(check_counts_within("n_pre", [n_pre], n_s, "the source pool", allow_zero=True)[0])
    ns = check_counts_within("n_down", n_down, n_t, "the target pool")
    t_count = check_positive_int("n_trials", n_trials)
    ridge = check_positive_scalar("ridge", ridge, allow_zero=True)
    rng = np.random.default_rng(seed)
    if n_pre:
        idx = np.argsort(rng.random((t_count, n_s)), axis=1)[:, :n_pre]
        alpha = _level_fit(k_ss, idx, us[idx], ridge)                       # (T, N_pre, D)
        f1 = np.einsum("tnm,tmd->tnd", k_ts[:, idx].transpose(1, 0, 2), alpha)   # (T, n_t, D)
    else:
        f1 = np.zeros((t_count, n_t, ut.shape[1]))
    power = np.sum(ut ** 2, axis=1)
    pool, fresh = np.zeros((ns.size, t_count)), np.zeros((ns.size, t_count))
    for m, n in enumerate(ns):
        idx = np.argsort(rng.random((t_count, n_t)), axis=1)[:, :n]
        resid = ut[idx] - np.take_along_axis(f1, idx[:, :, None], axis=1)
        alpha = _level_fit(k_tt, idx, resid, ridge)
        f2 = f1 + np.einsum("tnm,tmd->tnd", k_tt[:, idx].transpose(1, 0, 2), alpha)
        sq = np.sum((f2 - ut) ** 2, axis=2)
        keep = np.ones((t_count, n_t))
        np.put_along_axis(keep, idx, 0.0, axis=1)
        pool[m] = sq.sum(1) / power.sum()
        fresh[m] = (sq * keep).sum(1) / (keep @ power)
    se = (lambda v: v.std(1, ddof=1) / np.sqrt(t_count)) if t_count > 1 else (lambda v: np.full(v.shape[0], np.nan))
    counts = np.stack([np.full(ns.size, n_pre), ns], axis=1)
    return MonteCarloResult(counts, pool.mean(1), se(pool), pool, fresh.mean(1), se(fresh), fresh)
