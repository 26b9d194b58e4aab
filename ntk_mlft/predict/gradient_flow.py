"""Kernel regression = NTK gradient flow on the MSE loss (neural-tangents ``nt.predict`` contract).

Gradient flow on ``L(f) = ||f(X) - Y||^2 / (2 * Y.size)`` with learning rate ``eta`` in the NTK
regime (Jacot et al. 2018; Lee et al. 2019, "Wide neural networks ... evolve as linear models"):

    d f(X)/dt = -(eta / Y.size) * Theta_reg (f(X) - Y),      Theta_reg = Theta + lambda I
    f_train(t) = Y + exp(-eta t Theta_reg / Y.size) (f_train(0) - Y)
    f_test(t)  = f_test(0) + Theta(x*, X) Theta_reg^{-1} (I - exp(-eta t Theta_reg / Y.size)) (Y - f_train(0))

At ``t = None`` (infinity) this is kernel ridge regression. ``lambda = diag_reg * trace(Theta)/n``
unless ``diag_reg_absolute_scale`` (as in neural-tangents). Shapes: ``k_train_train`` (n, n),
``y_train`` (n,) or (n, D) (outputs share the kernel: ``trace_axes=(-1,)``), ``k_test_train``
(m, n). The eigendecomposition is computed once and cached in the returned closure; ridge-less
singular kernels use the pseudo-inverse of ``estimators._linalg`` (minimum-norm interpolant).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ntk_mlft._checks import as_finite_array, check_positive_scalar
from ntk_mlft._linalg import psd_eigh, safe_inverse

__all__ = ["Gaussian", "gradient_descent_mse", "gradient_descent_mse_ensemble"]


class Gaussian(NamedTuple):
    """Mean (m, D) and covariance (m, m) of an ensemble of trained networks."""

    mean: np.ndarray
    covariance: np.ndarray


def _regularised(k: np.ndarray, diag_reg: float, absolute: bool) -> np.ndarray:
    n = k.shape[0]
    reg = diag_reg if absolute else diag_reg * float(np.trace(k)) / n
    return k + reg * np.eye(n)


def _time_factors(evals: np.ndarray, t: Any, learning_rate: float, size: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(decay, gain) per eigenvalue: exp(-eta t e / size) and (1 - decay) / e; shape (T, n).

    Eigenvalues outside the resolved range (``safe_inverse`` = 0, i.e. the null space) get
    decay 1 and gain 0 at every t, t = inf included (the pseudo-inverse convention; no inf * 0).
    """
    t = np.atleast_1d(np.asarray(t, dtype=np.float64)) * learning_rate
    if np.any(np.isnan(t)) or np.any(t < 0):
        raise ValueError(f"t must be >= 0 (or None for infinity); got {t / learning_rate}")
    keep = (safe_inverse(evals) > 0)[None, :]
    e_kept = np.where(keep[0], evals, 1.0)
    expo = np.where(keep, -np.outer(t, e_kept) / size, 0.0)
    gain = np.where(keep, -np.expm1(expo) / e_kept, 0.0)
    return np.exp(expo), gain


def gradient_descent_mse(k_train_train: Any, y_train: Any, learning_rate: float = 1.0,
                         diag_reg: float = 0.0, diag_reg_absolute_scale: bool = False,
                         trace_axes: tuple[int, ...] = (-1,)) -> Callable[..., Any]:
    """Predictor of NTK gradient flow; returns ``predict_fn(t=None, fx_train_0=0., fx_test_0=None,
    k_test_train=None)``.

    ``predict_fn`` returns ``fx_train_t`` if ``fx_test_0`` is None, else ``(fx_train_t, fx_test_t)``
    (``fx_test_t`` only when ``fx_train_0`` is None). A scalar/array ``t`` adds leading time axes
    for finite t; ``t=None`` means t = infinity.
    """
    if tuple(trace_axes) not in ((-1,), ()):
        raise ValueError(f"trace_axes must be (-1,) or (); got {trace_axes!r}")
    k = as_finite_array("k_train_train", k_train_train, ndim=2)
    y = as_finite_array("y_train", y_train, ndim=(1, 2))
    if k.shape != (y.shape[0], y.shape[0]):
        raise ValueError(f"k_train_train must have shape ({y.shape[0]}, {y.shape[0]}) to match "
                         f"y_train {y.shape}; got {k.shape}")
    learning_rate = check_positive_scalar("learning_rate", learning_rate)
    diag_reg = check_positive_scalar("diag_reg", diag_reg, allow_zero=True)
    evals, evecs = psd_eigh("k_train_train", _regularised(k, diag_reg, diag_reg_absolute_scale))
    size = y.size

    def predict_fn(t: Any = None, fx_train_0: Any = 0.0, fx_test_0: Any = None,
                   k_test_train: Any = None) -> Any:
        if fx_test_0 is not None and k_test_train is None:
            raise ValueError("k_test_train is required when fx_test_0 is given")
        f0 = np.zeros_like(y) if fx_train_0 is None else np.broadcast_to(
            as_finite_array("fx_train_0", fx_train_0), y.shape)
        rhs = evecs.T @ (y - f0).reshape(y.shape[0], -1)           # (n, D) in eigenbasis
        if t is None:
            fx_train = np.array(y, dtype=np.float64)
            coef = evecs @ (safe_inverse(evals)[:, None] * rhs)
        else:
            t_arr = np.asarray(t, dtype=np.float64)
            decay, gain = _time_factors(evals, t_arr, learning_rate, size)
            fx_train = (y.reshape(y.shape[0], -1)[None]
                        - np.einsum("ij,tj,jd->tid", evecs, decay, rhs))
            fx_train = fx_train.reshape(t_arr.shape + y.shape)
            coef = np.einsum("ij,tj,jd->tid", evecs, gain, rhs)
        if fx_test_0 is None:
            return fx_train
        kt = as_finite_array("k_test_train", k_test_train, ndim=2)
        if kt.shape[1] != y.shape[0]:
            raise ValueError(f"k_test_train must have {y.shape[0]} columns; got shape {kt.shape}")
        out_shape = (kt.shape[0],) + y.shape[1:]
        ft0 = np.broadcast_to(as_finite_array("fx_test_0", fx_test_0), out_shape)
        if t is None:
            fx_test = ft0 + (kt @ coef).reshape(out_shape)
        else:
            fx_test = ft0 + np.einsum("mi,tid->tmd", kt, coef).reshape(
                np.shape(t) + out_shape)
        return fx_test if fx_train_0 is None else (fx_train, fx_test)

    return predict_fn


def gradient_descent_mse_ensemble(kernel_fn: Callable[..., Any], x_train: Any, y_train: Any,
                                  learning_rate: float = 1.0, diag_reg: float = 0.0,
                                  diag_reg_absolute_scale: bool = False
                                  ) -> Callable[..., Any]:
    """Mean and covariance over random initialisations of infinitely wide networks trained by
    gradient flow on MSE (Lee et al. 2019, eqs. 15-16). Returns
    ``predict_fn(t=None, x_test=None, get=('nngp', 'ntk'), compute_cov=False)``.

    With f_0 ~ GP(0, K) (NNGP kernel K) and NTK Theta, A(t) = Theta_*x Theta^{-1}(I - e^{-eta t Theta/|Y|}):
      mean = A Y;  cov = K_** - A K_x* - K_*x A^T + A K A^T       ("ntk")
    and for "nngp" (only the read-out trained) Theta is replaced by K, giving
      cov = K_** - K_*x K^{-1} (I - e^{-2 eta t K/|Y|}) K_x*.
    With ``diag_reg`` the train kernels are regularised (K_reg = K + lambda I, Theta_reg) wherever
    they are inverted; the "nngp" covariance then uses K_reg throughout (at t = inf the GP
    posterior with noise variance lambda). ``x_test=None`` predicts on the training set with
    K_*x = K_reg (neural-tangents 0.6.5 semantics; at t = inf: mean y_train, covariance 0).
    ``kernel_fn(x1, x2, get=('nngp', 'ntk'))`` must return an object with ``.nngp`` and ``.ntk``.
    """
    y = as_finite_array("y_train", y_train, ndim=(1, 2))
    learning_rate = check_positive_scalar("learning_rate", learning_rate)
    diag_reg = check_positive_scalar("diag_reg", diag_reg, allow_zero=True)
    ktt = kernel_fn(x_train, None, get=("nngp", "ntk"))
    mats = {g: np.asarray(getattr(ktt, g), dtype=np.float64) for g in ("nngp", "ntk")}
    regs = {g: _regularised(m, diag_reg, diag_reg_absolute_scale) for g, m in mats.items()}
    eig = {g: psd_eigh(f"k_train_train.{g}", r) for g, r in regs.items()}
    y2 = y.reshape(y.shape[0], -1)

    def gain_of(get: str, t: Any) -> np.ndarray:
        evals = eig[get][0]
        if t is None:
            return safe_inverse(evals)
        return _time_factors(evals, float(t), learning_rate, y.size)[1][0]

    def one(get: str, t: Any, x_test: Any, compute_cov: bool) -> Gaussian:
        evecs = eig[get][1]
        op = (evecs * gain_of(get, t)) @ evecs.T                    # Theta_reg^{-1}(I - e^{..})
        if x_test is None:
            # training set (neural-tangents): the cross kernels are the regularised train kernels
            k_star = regs
            k_ss = mats["nngp"]
        else:
            kst = kernel_fn(x_test, x_train, get=("nngp", "ntk"))
            k_star = {g: np.asarray(getattr(kst, g), dtype=np.float64) for g in ("nngp", "ntk")}
            k_ss = np.asarray(kernel_fn(x_test, None, get="nngp"), dtype=np.float64) \
                if compute_cov else None
        a = k_star[get] @ op
        mean = (a @ y2).reshape((a.shape[0],) + y.shape[1:])
        if not compute_cov:
            return Gaussian(mean, None)
        if get == "nngp":
            # GP posterior with noise diag_reg (neural-tangents): K_** - K_*x K_reg^{-1}
            # (I - e^{-2 eta t K_reg/|Y|}) K_x*; on the training set K_** = K_*x = K_reg.
            t2 = None if t is None else 2.0 * float(t)
            op2 = (evecs * gain_of(get, t2)) @ evecs.T
            kx = k_star["nngp"]
            cov = (regs["nngp"] if x_test is None else k_ss) - kx @ op2 @ kx.T
        else:
            cross = a @ k_star["nngp"].T if x_test is not None else a @ mats["nngp"]
            cov = k_ss - cross - cross.T + a @ mats["nngp"] @ a.T
        return Gaussian(mean, 0.5 * (cov + cov.T))

    def predict_fn(t: Any = None, x_test: Any = None, get: Any = ("nngp", "ntk"),
                   compute_cov: bool = False) -> Any:
        if isinstance(get, str):
            if get not in ("nngp", "ntk"):
                raise ValueError(f"get must be 'nngp', 'ntk' or a tuple of them; got {get!r}")
            return one(get, t, x_test, compute_cov)
        return {g: one(g, t, x_test, compute_cov) for g in get}

    return predict_fn
