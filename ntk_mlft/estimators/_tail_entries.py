"""The modes beyond a large-pool spectrum's computed rank, as entries of the closed form.

``with_tail(est, spectrum, d, w)`` appends to a knot-form ``SpectralEstimator`` built on the
top r modes (``pilot.PilotEstimator.from_spectrum`` on a ``PoolSpectrum`` with a ``tail``):

- eigenvalues: the tail bands of ``_nystrom.PowerLawTail.bands`` (entries with mult > 1);
- target powers: T_jk = (power of the residual of the top-r0 regression, its unbiased residual
  variance) - (its powers in the computed modes r0 < rho <= r) (``tail_powers``; Parseval over
  all modes of the measure), projected onto the PSD cone and spread over the bands in
  proportion to mult_b eta_b^gamma, gamma = ``tail.power_exponent`` (the tail's shape of target
  power is not resolvable from a pilot of a few hundred points: gamma = 1, the default, is a
  target whose tail looks like the kernel's own process; gamma = 2 a smoother one,
  docs/theory.md section 10);
- mean-field Gram and fluctuation weights: the knot grid extended downwards with its own ratio
  to cover the tail, tail modes weighted by the mean weight the trace leaves them,
  w_bar = (size - tr W_r) / (size - r) (tr V^T Omega V = sum omega = size over all modes), and
  W taken diagonal among tail modes.

A ``TailWarning`` names the levels' power shares when the tail carries more than half of a
level's target power (the prediction then rests on the tail model).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from ntk_mlft.estimators._modes import hat_matrix
from ntk_mlft.estimators._nystrom import TailWarning

__all__ = ["tail_powers", "with_tail"]


def tail_powers(c: np.ndarray, resid: np.ndarray, w: np.ndarray, r0: int) -> np.ndarray:
    """PSD (L, L) power beyond the computed modes: the residual variance of the top-r0 regression
    sum_i w_i <resid_j, resid_k>_i / (n_p - r0) (resid (L, n_p, D), weights w (n_p,)) minus the
    residual's powers in the computed modes beyond r0 (``c`` (L, L, P), modes r0.. used);
    negative eigenvalues clipped. Both parts are of the small residual, so the difference has
    far less variance than the pilot mean of ||d||^2 minus all computed powers."""
    total = np.einsum("jid,kid,i->jk", resid, resid, w) / max(float(w.sum()) - r0, 1.0)
    rest = total - c[:, :, r0:].sum(-1)
    rest = 0.5 * (rest + rest.T)
    evals, evecs = np.linalg.eigh(rest)
    return (evecs * np.maximum(evals, 0.0)) @ evecs.T


def with_tail(est: Any, spectrum: Any, c: np.ndarray, resid: np.ndarray, w: np.ndarray,
              r0: int) -> Any:
    """``est`` (knot form: ``knots`` and ``gram`` (L, L, J, J) set) with the tail entries of
    ``spectrum.tail`` appended (module docstring; ``tail_powers`` for c, resid, w, r0);
    unchanged when the tail is empty."""
    tail = spectrum.tail
    eta_t, mult_t = tail.bands()
    if eta_t.size == 0:
        return est
    power = tail_powers(c, resid, w, r0)                               # (L, L)
    level_power = np.diagonal(c.sum(-1)) + np.diag(power)
    share_l = np.diag(power) / np.maximum(level_power, np.finfo(float).tiny)
    if np.all(w == 1) and np.any(share_l > 0.5):                      # the point estimate only
        warnings.warn(f"tail model: the modes beyond the computed rank {spectrum.rank} carry "
                      f"{', '.join(f'{v:.0%}' for v in share_l)} of the levels' target power; "
                      f"predictions then rest on the tail model (eigenvalue exponent "
                      f"{tail.alpha:.3g}); use more landmarks", TailWarning, stacklevel=3)
    gamma = tail.power_exponent
    share = eta_t ** gamma * mult_t / float(np.sum(eta_t ** gamma * mult_t))
    cross_t = power[:, :, None] * share                                # (L, L, B)
    w_bar = max(spectrum.size - float(np.trace(spectrum.w_modes)), 0.0) \
        / max(spectrum.size - spectrum.rank, 1)
    knots = est.knots
    step = knots[2] / knots[1] if knots.size > 2 else 2.0
    n_new = max(0, int(np.ceil(np.log(knots[1] / eta_t.min()) / np.log(step))))
    low = knots[1] / step ** np.arange(n_new, 0, -1)
    new_knots = np.concatenate([[0.0], low, knots[1:]])
    n_levels, n_j = est.cross.shape[0], new_knots.size
    gram = np.zeros((n_levels, n_levels, n_j, n_j))
    keep = np.concatenate([[0], np.arange(n_new + 1, n_j)])
    gram[np.ix_(range(n_levels), range(n_levels), keep, keep)] = est.gram
    hats = hat_matrix(eta_t, new_knots)                                # (J, B)
    gram += w_bar * np.einsum("ab,cb,jkb->jkac", hats, hats, cross_t)
    weight = est.weight if est.weight is not None else est.mult
    return replace(est, eta=np.concatenate([est.eta, eta_t]),
                   cross=np.concatenate([est.cross, cross_t], axis=-1),
                   mult=np.concatenate([est.mult, mult_t]), gram=gram, knots=new_knots,
                   weight=np.concatenate([weight, w_bar * mult_t]))
