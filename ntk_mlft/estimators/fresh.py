"""Fresh-input (held-out) MLFT error from the closed form on a pool: the training atoms removed.

The spectral closed form predicts the error over the whole pool, training points included; what a
user meets is the error at inputs outside every training set (``MonteCarloResult.fresh_mean``).
``membership_moments`` and the fresh solve turn the closed form's pool second moments of every
pair of levels into fresh ones, given per-level coverage ``q_l = N_l / m`` and leave-one-out
factors ``a_l = 1 - lambda_l / kappa_l``, assuming level memberships independent across levels
(the ``sets="independent"`` Monte-Carlo scheme). Cost per allocation: O(L^2 (2L)^2) for the
moments and one (L (L + 1) / 2)^2 solve.

Derivation (leave-one-out identity, propagation through later levels, the linear system):
``docs/theory.md`` section 4. Measured accuracy: ``tests/test_estimators_spectral.py``,
``analysis/results/estimator_accuracy.md``; counts are capped by ``studies.error_model.sample_cap``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TARGETS", "fresh_second_moments", "membership_moments"]

TARGETS = ("fresh", "pool")


def membership_moments(q: np.ndarray, a: np.ndarray) -> np.ndarray:
    """T (M, L, L, 2L, 2L): E[b_j b_k^T] over memberships, basis (e_1^out..e_L^out, eps_1..eps_L).

    q (M, L) probabilities that a pool point is in S_l (N_l / m), a (M, L) fitted fractions
    a_l = 1 - lambda_l / kappa_l (docs/theory.md section 4, steps 1-3; a level with q = 0 is unused).
    """
    n_rows, n_levels = q.shape
    size = 2 * n_levels
    eye = np.eye(size)
    w = eye[n_levels:] - eye[:n_levels]                           # (L, 2L)
    qa = q * a
    means, seconds = [], []
    m_prev, s_prev = np.zeros((n_rows, size)), np.zeros((n_rows, size, size))
    for k in range(n_levels):
        outer = m_prev[:, :, None] * w[k][None, None, :]
        qk, ak = q[:, k, None, None], a[:, k, None, None]
        s_prev = (1 - qk + qk * (1 - ak) ** 2) * s_prev \
            + qk * ak * (1 - ak) * (outer + np.swapaxes(outer, 1, 2)) \
            + qk * ak ** 2 * np.outer(w[k], w[k])
        m_prev = (1 - qa[:, k, None]) * m_prev + qa[:, k, None] * w[k]
        means.append(m_prev)
        seconds.append(s_prev)
    out = np.empty((n_rows, n_levels, n_levels, size, size))
    for j in range(n_levels):
        gain, beta = np.ones((n_rows, 1, 1)), np.zeros((n_rows, size))
        for k in range(j, n_levels):
            if k > j:
                gain = gain * (1 - qa[:, k, None, None])
                beta = (1 - qa[:, k, None]) * beta + qa[:, k, None] * w[k]
            cc = gain * seconds[j] + means[j][:, :, None] * beta[:, None, :]   # E[c_j c_k^T]
            t = cc + means[j][:, :, None] * eye[k][None, None, :] \
                + eye[j][None, :, None] * means[k][:, None, :]
            t[:, j, k] += 1.0
            out[:, j, k] = t
            out[:, k, j] = np.swapaxes(t, 1, 2)
    return out


def fresh_second_moments(pi: np.ndarray, q: np.ndarray, a: np.ndarray, noise: np.ndarray
                         ) -> np.ndarray:
    """Fresh moments G (M, L, L) from pool moments pi (M, L, L) (docs/theory.md section 4, step 3).

    q, a (M, L) as ``membership_moments``; noise (L,) label-noise variance at a training point,
    summed over outputs, in the units of pi. Raises ValueError when the system is singular
    (a level covering the pool: no input is left outside its set).
    """
    n_rows, n_levels = q.shape
    t = membership_moments(q, a)
    pairs = [(j, k) for j in range(n_levels) for k in range(j, n_levels)]
    rows = np.array([p[0] for p in pairs])
    cols = np.array([p[1] for p in pairs])
    lhs = t[:, rows, cols][:, :, rows, cols]                      # (M, P, P): G_ab, a <= b
    off = rows != cols
    lhs[:, :, off] += t[:, rows, cols][:, :, cols[off], rows[off]]
    noise_idx = n_levels + np.arange(n_levels)
    known = t[:, rows, cols][:, :, noise_idx, noise_idx] @ noise  # (M, P)
    rhs = pi[:, rows, cols] - known
    if np.any(np.linalg.cond(lhs) > 1e8):
        raise ValueError("counts: a level's sample set covers (almost) the whole pool; the "
                         "fresh-input error is undefined there (use counts well below the pool "
                         "size)")
    g = np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]
    out = np.empty((n_rows, n_levels, n_levels))
    out[:, rows, cols] = g
    out[:, cols, rows] = g
    return out
