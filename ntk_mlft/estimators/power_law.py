"""Per-level power-law fits E_l(N) ~ a_l N^(-alpha_l) + c_l of the spectral/pilot learning curves.

E_l(N) is the relative error of regressing the level difference d_l alone with N samples
(``SpectralEstimator.level_curve``). The separable model
E(N_1..N_L) = sum_l c_l + sum_l a_l N_l^(-alpha_l) is the ``PowerLawErrorModel`` the allocation
consumes (MLMC analogy, Giles 2008). Fits minimise squared log-residuals (relative errors) with
a >= 0, 0.01 <= alpha <= 5, c >= 0. Fit quality: RMS and max relative deviation on the fitted
curve; ``fit_error_model`` also reports how well the separable sum reproduces the full
(non-separable) multi-level estimate at random allocations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft._checks import as_finite_array

__all__ = ["PowerLawFit", "fit_error_model", "fit_power_law"]


@dataclass(frozen=True)
class PowerLawFit:
    """a N^-alpha + floor fitted on (ns, errors); rel_rms / max_rel: fit quality (relative)."""

    coef: float
    exponent: float
    floor: float
    rel_rms: float
    max_rel: float

    def __call__(self, n: Any) -> np.ndarray:
        return self.floor + self.coef * np.asarray(n, dtype=np.float64) ** (-self.exponent)


def fit_power_law(ns: Any, errors: Any, *, with_floor: bool = True) -> PowerLawFit:
    """Fit E(N) = a N^-alpha (+ c) to positive errors at sample sizes ns (>= 3 points)."""
    from scipy.optimize import least_squares

    n = as_finite_array("ns", ns, ndim=1)
    e = as_finite_array("errors", errors, ndim=1)
    if n.shape != e.shape or n.size < 3:
        raise ValueError(f"ns and errors must be 1-D of equal length >= 3; got {n.shape}, {e.shape}")
    if np.any(n <= 0) or np.any(e <= 0):
        raise ValueError("ns and errors must be > 0 for a power-law fit in log space")
    slope = -np.polyfit(np.log(n), np.log(e), 1)[0]
    alpha0 = float(np.clip(slope, 0.05, 4.0))
    a0 = float(e[0] * n[0] ** alpha0)

    def resid(p):
        a, alpha, c = np.exp(p[0]), p[1], (np.exp(p[2]) if with_floor else 0.0)
        return np.log(a * n ** (-alpha) + c) - np.log(e)

    p0 = np.array([np.log(a0), alpha0, np.log(max(e.min() * 1e-3, 1e-300))])
    sol = least_squares(resid, p0, bounds=([-np.inf, 0.01, -np.inf], [np.inf, 5.0, np.inf]))
    a, alpha = float(np.exp(sol.x[0])), float(sol.x[1])
    c = float(np.exp(sol.x[2])) if with_floor else 0.0
    rel = (c + a * n ** (-alpha)) / e - 1
    return PowerLawFit(a, alpha, c, float(np.sqrt(np.mean(rel ** 2))), float(np.max(np.abs(rel))))


def fit_error_model(estimator: Any, ns: Any = None, *, n_check: int = 200, seed: int = 0
                    ) -> tuple[Any, tuple[PowerLawFit, ...], dict[str, float]]:
    """Per-level fits of ``estimator.level_curve`` -> (PowerLawErrorModel, fits, quality).

    ``estimator``: a ``SpectralEstimator`` (or anything with ``level_curve``, ``error_many``,
    ``n_levels``; a ``PilotEstimator`` passes its ``.estimate``). ``quality`` compares the
    separable model with the estimator at ``n_check`` random allocations drawn log-uniformly
    from ``ns``: keys ``rel_rms``, ``max_rel``.
    """
    from ntk_mlft.estimators.base import PowerLawErrorModel

    est = getattr(estimator, "estimate", estimator)
    ns = np.unique(np.round(np.geomspace(10, 1000, 12))) if ns is None else \
        as_finite_array("ns", ns, ndim=1)
    fits = tuple(fit_power_law(ns, np.maximum(est.level_curve(lvl, ns), 1e-300))
                 for lvl in range(1, est.n_levels + 1))
    model = PowerLawErrorModel(np.array([f.coef for f in fits]),
                               np.array([f.exponent for f in fits]),
                               float(sum(f.floor for f in fits)))
    rng = np.random.default_rng(seed)
    counts = np.round(np.exp(rng.uniform(np.log(ns.min()), np.log(ns.max()),
                                         (n_check, est.n_levels))))
    rel = model.error_many(counts) / est.error_many(counts) - 1
    return model, fits, {"rel_rms": float(np.sqrt(np.mean(rel ** 2))),
                         "max_rel": float(np.max(np.abs(rel)))}
