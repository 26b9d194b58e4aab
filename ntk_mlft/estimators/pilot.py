"""Practical MLFT error estimator from paired pilot samples and cheap unlabeled inputs.

Pilot file (``.npz``): ``x`` (n_p, *input_shape), ``y_level1`` .. ``y_levelL`` (n_p,
*output_shape) solved on the SAME inputs, optional ``x_unlabeled`` (m, *input_shape).

``PilotEstimator`` (feeds ``spectral.SpectralEstimator``): the spectrum of the diagonal-normalised
kernel on the union U of pilot and unlabeled inputs (M = n_p + m points; a
``pool_spectrum.PoolSpectrum``, ``from_spectrum``; ``from_kernels`` builds it densely), the cross powers of the
level differences estimated without bias from the pilot pairs (control variate on the top modes,
PSD projection of rank bands keeping the trace, so E >= 0), bootstrap uncertainty over pilot
samples, and ``diagnostics`` (resolved rank and unresolved tail power per level). Label noise only
where the caller states one (``noise``). Predicts the fresh-input error on U's measure by default
(``target="pool"``: the error on all of U). Counts must stay below M; accuracy is documented up to
``studies.error_model.sample_cap``.

Derivation: ``docs/theory.md`` section 5 (pilot estimator), with sections 2-4.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._checks import as_finite_array, check_choice, check_magnitude, check_positive_int, check_positive_scalar
from ntk_mlft._io import save_npz_atomic
from ntk_mlft._linalg import kernel_float64
from ntk_mlft.estimators._modes import hat_matrix, knot_grid, projected_gram, runs
from ntk_mlft.estimators._pilot_file import read_pilot_arrays
from ntk_mlft.estimators._tail_entries import with_tail
from ntk_mlft.estimators.montecarlo import per_level_nonneg
from ntk_mlft.estimators.pool_spectrum import NORMALIZATIONS, PoolSpectrum, dense_pool_spectrum
from ntk_mlft.estimators.selfcheck import pilot_warnings
from ntk_mlft.estimators.spectral import SpectralEstimator

__all__ = ["Pilot", "PilotEstimator", "load_pilot", "save_pilot"]


@dataclass(frozen=True)
class Pilot:
    """x (n_p, *input_shape); ys (L, n_p, *output_shape); x_unlabeled (m, ...) or None."""

    x: np.ndarray
    ys: np.ndarray
    x_unlabeled: np.ndarray | None = None

    def __post_init__(self) -> None:
        x, ys = _check_pilot(self.x, self.ys)
        xu = None if self.x_unlabeled is None else _check_unlabeled(self.x_unlabeled, x)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "ys", ys)
        object.__setattr__(self, "x_unlabeled", xu)

    @property
    def n_levels(self) -> int:
        return int(self.ys.shape[0])


def _check_pilot(x: Any, ys: Any) -> tuple[np.ndarray, np.ndarray]:
    """x (n_p, *input_shape) and ys (L, n_p, *output_shape) as float64; ValueError naming the
    array unless both are finite, of a sane magnitude (``_checks.check_magnitude``) and agree."""
    x = as_finite_array("x", x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (n_p, *input_shape) with n_p >= 1 and at least one input axis "
                         f"(a scalar input: shape (n_p, 1)); got shape {x.shape}")
    check_magnitude("x", x)
    if (isinstance(ys, np.ndarray) and ys.ndim == 0) or len(ys) == 0:
        raise ValueError("ys must hold one array per level (y_level1..y_levelL); got none")
    if len({np.shape(y) for y in ys}) != 1:
        raise ValueError(f"ys: every level must have the same shape; got {[np.shape(y) for y in ys]}")
    ys = as_finite_array("ys", np.stack([np.asarray(y, dtype=np.float64) for y in ys]))
    if ys.shape[1] != x.shape[0]:
        raise ValueError(f"ys must have n_p = {x.shape[0]} rows per level (same inputs as x); "
                         f"got {ys.shape[1]}")
    check_magnitude("ys", ys)
    return x, ys


def _check_unlabeled(x_unlabeled: Any, x: np.ndarray) -> np.ndarray:
    """x_unlabeled (m, *input_shape) as float64, with the pilot inputs' ``input_shape``."""
    xu = as_finite_array("x_unlabeled", x_unlabeled)
    if xu.ndim != x.ndim or xu.shape[1:] != x.shape[1:] or xu.shape[0] == 0:
        raise ValueError(f"x_unlabeled must have shape (m, {', '.join(map(str, x.shape[1:]))}) with m >= 1, "
                         f"the pilot inputs' shape per row; got {xu.shape}")
    check_magnitude("x_unlabeled", xu)
    return xu


def save_pilot(path: str | Path, x: Any, ys: Any, x_unlabeled: Any = None) -> Path:
    """Write a pilot ``.npz`` atomically (keys x, y_level1..y_levelL, optional x_unlabeled)."""
    x, ys = _check_pilot(x, ys)
    arrays = {"x": x, **{f"y_level{i + 1}": y for i, y in enumerate(ys)}}
    if x_unlabeled is not None:
        arrays["x_unlabeled"] = _check_unlabeled(x_unlabeled, x)
    save_npz_atomic(Path(path), **arrays)
    return Path(path)


def load_pilot(path: str | Path) -> Pilot:
    """Read a pilot file; ValueError naming the file and the missing/inconsistent key
    (``_pilot_file.read_pilot_arrays``)."""
    x, ys, xu = read_pilot_arrays(path)
    try:
        return Pilot(x, ys, xu)
    except ValueError as err:
        raise ValueError(f"pilot file {path}: {err}") from None


def _cross_powers(phi: np.ndarray, d: np.ndarray, w: np.ndarray, m_pool: float) -> np.ndarray:
    """Mode cross powers (L, L, P) (docs/theory.md section 5, step 2).

    phi (n_p, P) eigenfunctions on the pilot inputs, d (L, n_p, D) level differences, w (n_p,)
    sample multiplicities (bootstrap), m_pool = M. P excludes pairs of copies of one sample:
    (S_j S_k - sum_i w_i^2 z_ji z_ki) / (n^2 - sum_i w_i^2), S = sum_i w_i z_i, z_ji = phi(x_i)
    d_j(x_i). Cost O(L n_p P D).
    """
    n_p = float(w.sum())
    s = np.einsum("ip,lid->lpd", phi * w[:, None], d)            # (L, P, D)
    a_self = np.einsum("jid,kid->jki", d, d)                      # <d_j(x_i), d_k(x_i)>
    phi2 = phi * phi
    pairs = (np.einsum("jpd,kpd->jkp", s, s) - (a_self * w ** 2) @ phi2) \
        / (n_p ** 2 - float(np.sum(w ** 2)))
    return (1 - 1 / m_pool) * pairs + (a_self * w) @ phi2 / (n_p * m_pool)


def _regression(phi: np.ndarray, d: np.ndarray, w: np.ndarray, r0: int, m_pool: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least-squares fit of d on the top ``r0`` eigenfunctions (step 2, control variate).

    Returns beta (L, r0, D), residuals (L, n_p, D) at the pilot inputs and the estimated
    covariance of the coefficients Cov(beta_j, beta_k) summed over outputs (L, L, r0, r0):
    sigma_jk (A^T W A)^{-1} (1 - n_p/M), sigma_jk = sum_i w_i <r_j, r_k>_i / (n - r0)."""
    a = phi[:, :r0]
    gram_inv = np.linalg.pinv((a * w[:, None]).T @ a)
    beta = np.einsum("rs,is,lid->lrd", gram_inv, a * w[:, None], d)
    resid = d - np.einsum("ir,lrd->lid", a, beta)
    n_p = float(w.sum())
    sigma = np.einsum("jid,kid,i->jk", resid, resid, w) / max(n_p - r0, 1.0)
    cov = sigma[:, :, None, None] * gram_inv * max(0.0, 1 - n_p / m_pool)
    return beta, resid, cov


def _choose_r0(phi: np.ndarray, d: np.ndarray) -> int:
    """Number of top modes for the control variate: the r0 in 1, 2, 3, 4, 6, 8, ... <= n_p / 2
    with the smallest leave-one-out (PRESS) residual sum_i ||r_i||^2 / (1 - h_ii)^2, summed over
    levels and outputs (h: the least-squares hat matrix)."""
    n_p = phi.shape[0]
    cands = sorted({int(v) for v in np.round(np.geomspace(1, max(1, n_p // 2), 16))})
    flat = np.moveaxis(d, 1, 0).reshape(n_p, -1)
    press = []
    for r0 in cands:
        q, _ = np.linalg.qr(phi[:, :r0])
        h = np.sum(q * q, axis=1)
        resid = flat - q @ (q.T @ flat)
        press.append(np.sum(np.sum(resid ** 2, 1) / np.maximum(1 - h, 1e-12) ** 2))
    return cands[int(np.argmin(press))]


def _gram(w_modes: np.ndarray, r_self: np.ndarray, phi: np.ndarray, beta: np.ndarray,
          resid: np.ndarray, cov: np.ndarray, w: np.ndarray, m_pool: float, hats: np.ndarray
          ) -> np.ndarray:
    """Estimated weighted Gram (L, L, J, J) of the mean error field on the knots, PSD-projected.

    Mode coefficients t = beta (top r0 modes, the regression) + those of the residual (the
    rest). w_modes (P, P) = V^T Omega V, hats (J, P) the knot interpolation
    (``_modes.hat_matrix``), r_self (n_p, J, J) = H (W o phi_i phi_i^T) H^T over the modes beyond
    r0 for each pilot sample, phi (n_p, P). Pair terms of the residual as ``_cross_powers``;
    beta's own noise (``cov``) is subtracted. Smoothing onto J knots averages the noise of the
    P^2 products before the PSD projection, which would otherwise inflate the estimate.
    """
    n_levels, n_p, r0 = resid.shape[0], float(w.sum()), beta.shape[1]
    scale = (1 - 1 / m_pool) / (n_p ** 2 - float(np.sum(w ** 2)))
    t = np.einsum("ip,lid->lpd", phi * w[:, None], resid) * np.sqrt(scale)
    t[:, :r0] = beta                                              # (L, P, D)
    a_self = np.einsum("jid,kid->jki", resid, resid)              # <r_j(x_i), r_k(x_i)>
    g = projected_gram(w_modes, t, hats)
    g -= scale * np.einsum("jki,ibc->jkbc", a_self * w ** 2, r_self)
    g += np.einsum("jki,ibc->jkbc", a_self * w, r_self) / (n_p * m_pool)
    h_top = hats[:, :r0]
    g -= np.einsum("ar,rs,jkrs,bs->jkab", h_top, w_modes[:r0, :r0], cov, h_top)
    n_knots = hats.shape[0]
    flat = np.moveaxis(g, 2, 1).reshape(n_levels * n_knots, n_levels * n_knots)
    flat = _psd_trace_kept(flat[None])[0]
    return np.moveaxis(flat.reshape(n_levels, n_knots, n_levels, n_knots), 1, 2)


def _psd_trace_kept(mats: np.ndarray) -> np.ndarray:
    """Project symmetric matrices (B, n, n) onto the PSD cone keeping each one's trace (the
    trace of the unbiased estimate is unbiased; clipping negative eigenvalues alone would add
    their magnitude as spurious power): positive part scaled by max(trace, 0) / its trace."""
    evals, evecs = np.linalg.eigh(0.5 * (mats + np.swapaxes(mats, 1, 2)))
    pos = np.maximum(evals, 0.0)
    total = pos.sum(1, keepdims=True)
    factor = np.where(total > 0, np.maximum(evals.sum(1, keepdims=True), 0.0)
                      / np.where(total > 0, total, 1.0), 0.0)
    return np.einsum("bjr,br,bkr->bjk", evecs, pos * factor, evecs)


def _band_edges(n_modes: int, ratio: float) -> np.ndarray:
    """Band boundaries 0 = r_0 < r_1 < ... = n_modes with r_{b+1} = max(r_b + 1, ceil(ratio r_b))."""
    edges = [0, 1]
    while edges[-1] < n_modes:
        edges.append(max(edges[-1] + 1, int(np.ceil(ratio * edges[-1]))))
    edges[-1] = n_modes
    return np.array(edges)


def _band_sums(c: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(L, L, P) per-mode powers (rank order) -> symmetrised (L, L, B) band sums."""
    sums = np.add.reduceat(c, edges[:-1], axis=-1)
    return 0.5 * (sums + np.swapaxes(sums, 0, 1))


def _psd_banded(c: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Pool (L, L, P) powers into rank bands, project each band sum onto the PSD cone, spread it
    evenly over the band's modes (docs/theory.md section 5, step 3)."""
    psd = np.moveaxis(_psd_trace_kept(np.moveaxis(_band_sums(c, edges), -1, 0)), 0, -1)
    return np.repeat(psd / np.diff(edges), np.diff(edges), axis=-1)


def _resolved(point: np.ndarray, boot: list[np.ndarray], edges: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per level: the end rank of the last band whose power exceeds 2 bootstrap s.d. (0 if none),
    and the fraction of the level's power in bands that do not (docs/theory.md section 5, step 5)."""
    n_levels = point.shape[0]
    idx = np.arange(n_levels)
    p_band = _band_sums(point, edges)[idx, idx]                                 # (L, B)
    b_band = np.stack([_band_sums(c, edges)[idx, idx] for c in boot])           # (R, L, B)
    ok = p_band > 2 * b_band.std(0, ddof=1)
    last = np.where(ok.any(1), ok.shape[1] - np.argmax(ok[:, ::-1], axis=1), 0)
    total = np.maximum(np.abs(p_band).sum(1), np.finfo(float).tiny)
    tail = np.where(ok, 0.0, np.abs(p_band)).sum(1) / total
    return edges[last], tail


@dataclass(frozen=True)
class PilotEstimator:
    """Spectral estimate from pilot data plus bootstrap replicates (satisfies ``ErrorModel``).

    ``pool_size``: M = n_p + m, the size of the measure the error refers to (counts above it
    are refused); ``resolved_rank``, ``tail_fraction`` (L,): docs/theory.md section 5, step 5;
    ``mode_powers`` (L, L, r) or None: the point estimate's non-negative per-mode cross powers
    in the spectrum's rank order (step 3), what ``calibration.pilot_coefficients`` draws
    surrogates from.
    """

    estimate: SpectralEstimator
    replicates: tuple[SpectralEstimator, ...]
    pool_size: int
    resolved_rank: np.ndarray
    tail_fraction: np.ndarray
    mode_powers: np.ndarray | None = None

    @property
    def n_levels(self) -> int:
        return self.estimate.n_levels

    @classmethod
    def from_kernels(cls, k_uu: Any, k_pu: Any, ys: Any, *, k_pp: Any, ridge: Any = 0.0,
                     noise: Any = 0.0, normalize: str = "diagonal", **kwargs: Any
                     ) -> PilotEstimator:
        """k_uu (m, m) kernel on unlabeled inputs, k_pu (n_p, m) pilot-vs-unlabeled kernel,
        k_pp (n_p, n_p) pilot kernel, ys (L, n_p, *output_shape) pilot targets per level on the
        same inputs: the dense spectrum of the kernel on pilot + unlabeled inputs
        (``pool_spectrum.dense_pool_spectrum``, one (M, M) eigen-decomposition) fed to
        :meth:`from_spectrum` (``ridge``, ``noise``, ``normalize`` and ``kwargs`` as there)."""
        k_uu = as_finite_array("k_uu", k_uu, ndim=2)
        k_pu = as_finite_array("k_pu", k_pu, ndim=2)
        k_pp = as_finite_array("k_pp", k_pp, ndim=2)
        n_p, m = np.shape(ys)[1] if np.ndim(ys) >= 2 else k_pp.shape[0], k_uu.shape[0]
        if k_pu.shape != (n_p, m):
            raise ValueError(f"k_pu must have shape (n_p, m) = ({n_p}, {m}); got {k_pu.shape}")
        if k_pp.shape != (n_p, n_p):
            raise ValueError(f"k_pp must have shape (n_p, n_p) = ({n_p}, {n_p}); got {k_pp.shape}")
        check_choice("normalize", normalize, NORMALIZATIONS)
        spectrum = dense_pool_spectrum(np.block([[k_pp, k_pu], [k_pu.T, k_uu]]), n_p,
                                       normalize=normalize)
        return cls.from_spectrum(spectrum, ys, ridge=ridge, noise=noise, **kwargs)

    @classmethod
    def from_spectrum(cls, spectrum: PoolSpectrum, ys: Any, *, ridge: Any = 0.0,
                      noise: Any = 0.0, band_ratio: float = 2.0, compress: float = 0.03,
                      knot_ratio: float = 2.0, n_regress: int | None = None, n_boot: int = 30,
                      seed: int = 0) -> PilotEstimator:
        """Estimator from the kernel's spectrum on pilot + unlabeled inputs (``PoolSpectrum``,
        pilot rows first) and ys (L, n_p, *output_shape) pilot targets per level on the pilot
        inputs. ``ridge``: unnormalised, scalar or (L,); ``noise``: label-noise variance
        per output component, scalar or (L,) (0 for deterministic solvers); ``band_ratio`` > 1:
        growth of the rank bands that are projected onto non-negative powers; ``compress``: entry
        tolerance (``spectral``); ``knot_ratio`` > 1: spacing of the eigenvalue knots of the
        smoothed Gram (``_gram``); ``n_regress``: top modes fitted by least squares before the
        powers are estimated (step 2; default: chosen by leave-one-out error, ``_choose_r0``).
        Cost beyond the spectrum: W = V^T Omega V, plus per replicate L (L + 1) / 2 products of
        (r, D) x (D, r)."""
        band_ratio = check_positive_scalar("band_ratio", band_ratio)
        if band_ratio <= 1:
            raise ValueError(f"band_ratio must be > 1; got {band_ratio}")
        compress = check_positive_scalar("compress", compress)
        knot_ratio = check_positive_scalar("knot_ratio", knot_ratio)
        if knot_ratio <= 1:
            raise ValueError(f"knot_ratio must be > 1; got {knot_ratio}")
        n_boot = check_positive_int("n_boot", n_boot)
        if n_boot < 2:
            raise ValueError(f"n_boot must be >= 2 (bootstrap standard deviation); got {n_boot}")
        ys = as_finite_array("ys", ys)
        if ys.ndim < 2:
            raise ValueError(f"ys must have shape (L, n_p, *output_shape); got {ys.shape}")
        n_levels, n_p = ys.shape[0], ys.shape[1]
        if n_p != spectrum.n_pilot:
            raise ValueError(f"ys must have n_p = {spectrum.n_pilot} rows per level (the "
                             f"spectrum's pilot inputs); got {n_p}")
        if n_p < 10:
            raise ValueError(f"ys: need at least 10 pilot samples; got {n_p}")
        y2 = ys.reshape(n_levels, n_p, -1)
        if not np.any(y2[-1] != 0):
            raise ValueError("ys: finest-level pilot targets are identically zero; the relative "
                             "error sum||f-u_L||^2/sum||u_L||^2 is undefined")
        lam = per_level_nonneg("ridge", ridge, n_levels)
        sig2 = per_level_nonneg("noise", noise, n_levels) * y2.shape[2]
        size, eta, phi = spectrum.size, spectrum.eta, spectrum.phi
        d = np.concatenate([y2[:1], np.diff(y2, axis=0)]) \
            / np.sqrt(spectrum.omega_pilot)[None, :, None]
        r0 = _choose_r0(phi, d) if n_regress is None else check_positive_int("n_regress", n_regress)
        if r0 > n_p // 2:
            raise ValueError(f"n_regress must be <= n_p / 2 = {n_p // 2}; got {r0}")
        phi_rest = phi.copy()
        phi_rest[:, :r0] = 0.0
        edges = _band_edges(spectrum.rank, band_ratio)
        inv_mean = spectrum.inv_mean
        order = np.argsort(eta, kind="stable")                        # entries: eigenvalue runs
        starts = runs(eta[order], compress)
        if spectrum.normalize == "diagonal":
            w_modes = spectrum.w_modes
            weight = np.add.reduceat(np.diag(w_modes)[order], starts)
            knots = knot_grid(eta, knot_ratio)
            hats = hat_matrix(eta, knots)
            r_self = spectrum.self_terms(phi_rest, hats)

        def build(w: np.ndarray) -> tuple[SpectralEstimator, np.ndarray]:
            beta, resid, cov = _regression(phi, d, w, r0, float(size))
            c = _cross_powers(phi_rest, resid, w, float(size))
            c[:, :, :r0] = np.einsum("jrd,krd->jkr", beta, beta) \
                - np.diagonal(cov, axis1=2, axis2=3)
            norm = float(w @ np.sum(y2[-1] ** 2, -1)) / float(w.sum())    # mean ||u_L||^2
            est = SpectralEstimator(eta, _psd_banded(c, edges), norm, sig2 * inv_mean,
                                    lam * inv_mean, pool_size=size, label_noise=sig2)
            if spectrum.normalize == "none":
                return est.compressed(compress), c
            gram = _gram(w_modes, r_self, phi_rest, beta, resid, cov, w, float(size), hats)
            est = replace(est._merged(order, starts, gram, weight), knots=knots)
            return (est if spectrum.tail is None else with_tail(est, spectrum, c, resid, w, r0)), c

        rng = np.random.default_rng(seed)
        boot = [build(np.bincount(rng.integers(0, n_p, n_p), minlength=n_p).astype(float))
                for _ in range(n_boot)]
        point, c_point = build(np.ones(n_p))
        rank, tail = _resolved(c_point, [c for _, c in boot], edges)
        return cls(point, tuple(e for e, _ in boot), size, rank, tail, _psd_banded(c_point, edges))

    @classmethod
    def from_pilot(cls, kernel_fn: Any, pilot: Pilot, *, get: str = "ntk", **kwargs: Any
                   ) -> PilotEstimator:
        """Kernel ``kernel_fn(z, None, get=get)`` on the union z of ``pilot.x`` and
        ``pilot.x_unlabeled`` (one call, in float64: ``_linalg.kernel_float64``), split into k_pp,
        k_pu, k_uu; needs ``x_unlabeled``."""
        if pilot.x_unlabeled is None:
            raise ValueError("pilot.x_unlabeled is required (cheap unlabeled inputs for the spectrum)")
        n_p = len(pilot.x)
        k = kernel_float64(kernel_fn, np.concatenate([pilot.x, pilot.x_unlabeled]), get=get)
        return cls.from_kernels(k[n_p:, n_p:], k[:n_p, n_p:], pilot.ys, k_pp=k[:n_p, :n_p],
                                **kwargs)

    def diagnostics(self) -> dict[str, Any]:
        """Resolved rank, tail fraction (docs/theory.md section 5, step 5), the noise in use and
        ``warnings`` naming the diagnostics that no check can vouch for (``selfcheck``)."""
        return {"pool_size": self.pool_size, "resolved_rank": self.resolved_rank.tolist(),
                "tail_fraction": self.tail_fraction.tolist(),
                "noise_summed_over_outputs": self.estimate.noise.tolist(),
                "warnings": list(pilot_warnings(self.resolved_rank, self.tail_fraction))}

    def error_many(self, counts: Any, target: str | None = None) -> np.ndarray:
        """Predicted relative MSE (M,) for counts (M, L); > 0 by construction (docstring step 3).
        ``target``: "fresh" or "pool" (``SpectralEstimator.error_many``; None: the estimate's)."""
        return self.estimate.error_many(counts, target)

    def error(self, counts: Any, target: str | None = None) -> float:
        return float(self.error_many(np.asarray(counts, dtype=np.float64)[None], target)[0])

    def breakdown(self, counts: Any) -> Any:
        return self.estimate.breakdown(counts)

    def error_with_uncertainty(self, counts: Any, level: float = 0.9, target: str | None = None
                               ) -> dict[str, np.ndarray]:
        """Point estimate, bootstrap std and a normal interval est +- z_level * std, counts (M, L)."""
        from statistics import NormalDist

        est = self.error_many(counts, target)
        boot = np.stack([r.error_many(counts, target) for r in self.replicates])
        std = boot.std(0, ddof=1)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return {"error": est, "std": std, "lower": np.maximum(est - z * std, 0.0),
                "upper": est + z * std}
