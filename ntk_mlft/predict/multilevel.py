"""Multi-Level Fine-Tuning (MLFT) in the NTK regime: chained residual kernel regressions.

Levels l = 1..L with sample sets X_l (N_l inputs) and targets Y_l = u_l(X_l). With f_0 = 0
(centred initialisation) and P_l the kernel-regression operator of level l (ridge lambda_l,
training time t_l; see ``ntk_mlft.predict``):

    f_l = f_{l-1} + P_l (u_l - f_{l-1})         (level l regresses the residual on X_l)

so the kernel never changes between levels (NTK regime) and fine-tuning is regression on the
residual; the error obeys e_L = f_L - u_L = -sum_l (I - P_L)...(I - P_l) d_l, d_l = u_l - u_{l-1}
(Li, Fan, Ying 2021; docs/design.md). A level with N_l = 0 is skipped (f_l = f_{l-1}).
Ridge lambda_l is unnormalised (K + lambda_l I); ``times[l] = None`` means t = infinity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ntk_mlft._checks import as_finite_array
from ntk_mlft.predict import gradient_descent_mse

__all__ = ["chained_regression", "mlft_predict"]


def _per_level(name: str, value: Any, n_levels: int, allow_none: bool) -> list:
    if value is None or np.isscalar(value):
        return [value] * n_levels
    vals = list(value)
    if len(vals) != n_levels:
        raise ValueError(f"{name} must be a scalar or have one entry per level ({n_levels}); "
                         f"got {len(vals)}")
    if not allow_none and any(v is None for v in vals):
        raise ValueError(f"{name} entries must be numbers; got {vals}")
    return vals


def chained_regression(k_zz: Any, index_sets: Sequence[Any], targets: Sequence[Any], *,
                       ridge: Any = 0.0, times: Any = None, learning_rate: float = 1.0
                       ) -> np.ndarray:
    """MLFT prediction on all points Z of a kernel matrix.

    k_zz: (n_z, n_z) kernel on the points Z; index_sets[l]: int indices (N_l,) of X_l in Z;
    targets[l]: (N_l,) or (N_l, D) values u_l(X_l). Returns f_L on Z, shape (n_z, D) or (n_z,).
    """
    k = as_finite_array("k_zz", k_zz, ndim=2)
    n_levels = len(index_sets)
    if n_levels == 0 or len(targets) != n_levels:
        raise ValueError(f"index_sets and targets must be non-empty with equal length; got "
                         f"{len(index_sets)} and {len(targets)}")
    ridges = _per_level("ridge", ridge, n_levels, allow_none=False)
    ts = _per_level("times", times, n_levels, allow_none=True)
    ys = [as_finite_array(f"targets[{i}]", y, ndim=(1, 2)) for i, y in enumerate(targets)]
    if len({y.shape[1:] for y in ys}) != 1:
        raise ValueError(f"targets must share one output shape; got {[y.shape for y in ys]}")
    out_shape = ys[0].shape[1:]
    f = np.zeros((k.shape[0],) + out_shape)
    for lvl, (idx, y) in enumerate(zip(index_sets, ys)):
        idx = np.asarray(idx, dtype=np.intp)
        if idx.shape != (y.shape[0],):
            raise ValueError(f"index_sets[{lvl}] must have shape ({y.shape[0]},) to match "
                             f"targets[{lvl}]; got {idx.shape}")
        if idx.size == 0:
            continue
        if idx.min() < 0 or idx.max() >= k.shape[0]:
            raise ValueError(f"index_sets[{lvl}] must index into k_zz rows 0..{k.shape[0] - 1}")
        predict = gradient_descent_mse(k[np.ix_(idx, idx)], y - f[idx], learning_rate,
                                       diag_reg=float(ridges[lvl]), diag_reg_absolute_scale=True)
        f = f + predict(ts[lvl], fx_train_0=None, fx_test_0=np.zeros_like(f),
                        k_test_train=k[:, idx])
    return f


def mlft_predict(kernel_fn: Callable[..., Any], xs: Sequence[Any], ys: Sequence[Any],
                 x_test: Any, *, ridge: Any = 0.0, times: Any = None,
                 learning_rate: float = 1.0, get: str = "ntk") -> np.ndarray:
    """MLFT prediction f_L(x_test) from per-level training sets (xs[l], ys[l]).

    ``kernel_fn(x1, x2=None, get=get)`` returns the (n1, n2) kernel (NTK by default).
    Empty levels (0 samples) are skipped. Returns (m, D) or (m,) predictions.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys must have one entry per level; got {len(xs)} and {len(ys)}")
    x_test = np.asarray(x_test)
    parts = [np.asarray(x) for x in xs if len(x)] + [x_test]
    z = np.concatenate(parts, axis=0)
    k_zz = np.asarray(kernel_fn(z, None, get=get), dtype=np.float64)
    sets, start = [], 0
    for x in xs:
        sets.append(np.arange(start, start + len(x)))
        start += len(x)
    f = chained_regression(k_zz, sets, ys, ridge=ridge, times=times,
                           learning_rate=learning_rate)
    return f[start:]
