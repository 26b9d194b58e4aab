"""Measured side of ``ntk_mlft.transfer.layers``: train the base CNN, re-train layer sets, score them.

- :func:`standardise`: inputs scaled per channel, targets by one scale (each system by its own
  training data's standard deviations; means are ~0 for these fields and are kept).
- :func:`train_base`: minibatch Adam (optax) on the base system.
- :func:`retrain`: full-batch Adam on the target training snapshots with only the layer set's
  groups trainable (``ntk_mlft.training.fit``, ``FitOptions.trainable``: the others are frozen bitwise).
- :func:`sgs_metrics`: offline metrics of a predicted SGS field against the truth on test
  snapshots: relative MSE ``sum (p - y)^2 / sum y^2``, the correlation coefficient, and the
  relative L1 error of the shell-averaged power spectrum ``sum_k |S_p(k) - S_y(k)| / sum_k S_y(k)``
  (correlation alone misses amplitude and scale errors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ntk_mlft._checks import check_positive_int, check_positive_scalar
from ntk_mlft.training import FitOptions, fit

__all__ = ["Standardiser", "flat_apply", "predict", "retrain", "sgs_metrics", "spectrum", "train_base"]


@dataclass(frozen=True)
class Standardiser:
    """``x / x_scale`` (per channel) and ``y / y_scale``."""

    x_scale: np.ndarray
    y_scale: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> Standardiser:
        axes = tuple(range(x.ndim - 1))
        return cls(np.std(x, axis=axes), float(np.std(y)))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (x / self.x_scale).astype(np.float32), (y / self.y_scale).astype(np.float32)


@lru_cache(maxsize=8)
def flat_apply(apply_fn: Callable) -> Callable:
    """``apply_fn`` with outputs flattened to (N, K), as ``ntk_mlft.training.fit`` expects (cached: one
    wrapper per network, so fits reuse compiled steps)."""
    def apply(params, x):
        out = apply_fn(params, x)
        return out.reshape(out.shape[0], -1)
    return apply


def predict(apply_fn: Callable, params: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    return np.concatenate([np.asarray(apply_fn(params, jnp.asarray(x[i:i + batch])))
                           for i in range(0, x.shape[0], batch)])


def train_base(apply_fn: Callable, params: Any, x: np.ndarray, y: np.ndarray, *, steps: int = 400,
               batch: int = 16, learning_rate: float = 1e-3, seed: int = 0) -> tuple[Any, np.ndarray]:
    """Minibatch Adam on MSE; returns ``(params, losses per step)``."""
    import optax

    check_positive_int("steps", steps)
    batch = min(check_positive_int("batch", batch), x.shape[0])
    check_positive_scalar("learning_rate", learning_rate)
    tx = optax.adam(learning_rate)
    state = tx.init(params)

    @jax.jit
    def step(p, st, xb, yb):
        loss, g = jax.value_and_grad(lambda q: jnp.mean((apply_fn(q, xb) - yb) ** 2))(p)
        upd, st = tx.update(g, st, p)
        return optax.apply_updates(p, upd), st, loss

    rng = np.random.default_rng(seed)
    losses = np.zeros(steps)
    order = rng.permutation(x.shape[0])
    at = 0
    for s in range(steps):
        if at + batch > x.shape[0]:
            order, at = rng.permutation(x.shape[0]), 0
        idx = order[at:at + batch]
        at += batch
        params, state, loss = step(params, state, jnp.asarray(x[idx]), jnp.asarray(y[idx]))
        losses[s] = float(loss)
        if not np.isfinite(losses[s]):
            raise ValueError(f"base training diverged at step {s} (loss {losses[s]}); lower learning_rate")
    return params, losses


def retrain(apply_fn: Callable, params: Any, x: np.ndarray, y: np.ndarray, trainable: Sequence[str], *,
            steps: int = 150, learning_rate: float = 1e-3) -> Any:
    """Full-batch Adam for ``steps`` steps on (x, y) with only the groups ``trainable`` moving."""
    options = FitOptions(optimizer="adam", max_steps=steps, learning_rate=learning_rate, rtol=0.0,
                         trainable=tuple(trainable), chunk=min(steps, 50))
    result = fit(flat_apply(apply_fn), params, x, y, options, progress_desc="retrain")
    return result.params


def spectrum(field: np.ndarray) -> np.ndarray:
    """Shell-summed power spectrum, averaged over samples: field (n, *grid) -> (k_max + 1,)."""
    dims = field.ndim - 1
    power = np.abs(np.fft.fftn(field, axes=tuple(range(1, dims + 1)), norm="forward")) ** 2
    ks = np.meshgrid(*[np.fft.fftfreq(g, 1.0 / g) for g in field.shape[1:]], indexing="ij")
    shell = np.rint(np.sqrt(sum(k ** 2 for k in ks))).astype(int)
    return np.bincount(shell.ravel(), weights=power.mean(axis=0).ravel())


def sgs_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Relative MSE, correlation coefficient and spectrum error of ``pred`` vs ``truth`` (n, *grid, 1)."""
    p, t = pred[..., 0].astype(np.float64), truth[..., 0].astype(np.float64)
    sp, st = spectrum(p), spectrum(t)
    return {"rel_mse": float(np.sum((p - t) ** 2) / np.sum(t ** 2)),
            "corr": float(np.corrcoef(p.ravel(), t.ravel())[0, 1]),
            "spectrum_error": float(np.sum(np.abs(sp - st)) / np.sum(st))}
