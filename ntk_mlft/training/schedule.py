"""Multi-Level Fine-Tuning (MLFT) schedule for a finite-width network.

Li, Fan, Ying, "Multi-level fine-tuning..." (arXiv 2102.07169): train on level 1 (coarsest, many
cheap samples), then fine-tune successively on levels 2..L, each to a stopping rule (relative
loss decrease per chunk below ``rtol``, or ``max_steps``), optionally re-training only some
parameter groups. In the NTK regime each stage is kernel regression on the residual
``u_l − f_{l−1}``; with ``center=True`` the net starts at f ≡ 0 so the limit is deterministic.
A level with no samples (an allocation that skips it) is passed over.

Test error is the relative MSE against finest-level targets on held-out inputs:
``Σ‖f(x) − u_L(x)‖² / Σ‖u_L(x)‖²``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_finite_array, check_choice
from .loop import FitOptions, centered, fit

__all__ = ["MLFT_OPTIONS", "EnsembleResult", "LevelRecord", "TrainingResult", "level_pairs", "relative_mse",
           "train_mlft", "train_mlft_ensemble"]

MLFT_OPTIONS = FitOptions(max_steps=2000)
"""The default stage options of :func:`train_mlft` (:class:`~ntk_mlft.training.loop.FitOptions`
with a 2000-step limit per stage)."""

PyTree = Any


@dataclasses.dataclass(frozen=True)
class LevelRecord:
    """One stage of the schedule: ``level`` (1-based), training-set size, loss curve
    (steps + 1,), steps taken, stopping reason, learning rate, test error after the stage
    (nan without test data) and wall time."""

    level: int
    n_train: int
    losses: np.ndarray
    steps: int
    stopped: str
    learning_rate: float
    test_error: float
    wall_seconds: float


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """Outcome of :func:`train_mlft`: per-level records, final params, predictions on the test
    inputs (N_test, K) or None, final test error, total wall time, and the settings used."""

    levels: tuple[LevelRecord, ...]
    params: PyTree
    test_predictions: np.ndarray | None
    test_error: float
    wall_seconds: float
    architecture: str
    width: int
    seed: int
    optimizer: str
    center: bool

    @property
    def test_errors(self) -> np.ndarray:
        """(L,) test error after each level's stage."""
        return np.array([r.test_error for r in self.levels])


@dataclasses.dataclass(frozen=True)
class EnsembleResult:
    """Runs over several seeds: the individual results, the mean and variance over seeds of the
    test predictions (N_test, K), the test error of the mean prediction and each run's error."""

    results: tuple[TrainingResult, ...]
    prediction_mean: np.ndarray
    prediction_var: np.ndarray
    test_error_of_mean: float
    test_errors: np.ndarray


def relative_mse(predictions: Any, targets: Any) -> float:
    """``Σ‖f − u‖² / Σ‖u‖²`` over all entries (targets not identically zero)."""
    p = np.asarray(predictions, np.float64).reshape(len(predictions), -1)
    t = np.asarray(targets, np.float64).reshape(len(targets), -1)
    if p.shape != t.shape:
        raise ValueError(f"predictions and targets must have the same shape; got {p.shape} and {t.shape}")
    denom = float(np.sum(t ** 2))
    if denom == 0:
        raise ValueError("targets must not be identically zero (relative error undefined)")
    return float(np.sum((p - t) ** 2) / denom)


def level_pairs(level_datasets: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Normalise ``[(x_1, y_1), ...]`` or an object with ``.inputs``/``.outputs`` (a
    ``MultiLevelDataset``) to a list of ``(x (N_l, ...), y (N_l, K))`` arrays."""
    if hasattr(level_datasets, "inputs") and hasattr(level_datasets, "outputs"):
        raw = list(zip(level_datasets.inputs, level_datasets.outputs))
    else:
        raw = list(level_datasets)
    if not raw:
        raise ValueError("level_datasets must contain at least one level")
    out = []
    for i, pair in enumerate(raw):
        if len(pair) != 2:
            raise ValueError(f"level_datasets[{i}] must be an (inputs, outputs) pair")
        x = as_finite_array(f"level_datasets[{i}] inputs", pair[0])
        y = as_finite_array(f"level_datasets[{i}] outputs", pair[1])
        if len(x) != len(y):
            raise ValueError(f"level_datasets[{i}]: {len(x)} inputs but {len(y)} outputs")
        out.append((x, y.reshape(len(y), int(np.prod(y.shape[1:], dtype=int)))))
    if len(out[-1][0]) == 0:
        raise ValueError("the finest level must have at least one sample")
    return out


@functools.lru_cache(maxsize=32)
def _predictors(apply_fn: Any):
    """Jitted centred and raw forward passes, cached per model so repeated runs reuse the code."""
    return jax.jit(centered(apply_fn)), jax.jit(apply_fn)


def _per_level(name: str, values: Any, default: Any, n_levels: int) -> list:
    if values is None:
        return [default] * n_levels
    if isinstance(values, str) or len(values) != n_levels:
        raise ValueError(f"{name} must have one entry per level ({n_levels}); got {values!r}")
    return list(values)


def train_mlft(architecture: Any, level_datasets: Any, options: FitOptions = MLFT_OPTIONS, *,
               x_test: Any = None, y_test: Any = None, seed: int = 0, center: bool = True, dtype: str = "float64",
               max_steps_per_level: Sequence[int] | None = None,
               trainable_per_level: Sequence[Sequence[str] | None] | None = None) -> TrainingResult:
    """Train ``architecture`` (an ``Architecture`` from :mod:`ntk_mlft.architectures`, or any
    object with ``init_fn``/``apply_fn``) level by level with MLFT.

    Args:
      level_datasets: per level (coarse → fine) an ``(inputs, outputs)`` pair, or a
        ``MultiLevelDataset``; levels with zero samples are skipped.
      options: every stage's :class:`~ntk_mlft.training.loop.FitOptions` (optimizer: ``"gd"`` with
        η from the NTK's largest eigenvalue, ``"sgd"``, ``"adam"``, ``"curveball"``; the stopping
        rule ``rtol``/``atol``/``max_steps``; ``ridge``: unnormalised ridge λ of every stage,
        ``‖w − w_stage start‖²`` penalty — in the NTK regime a centred net then converges to
        chained kernel *ridge* regression, :func:`ntk_mlft.predict.multilevel.mlft_predict` with
        ``ridge=λ``; ``trainable``: the groups re-trained in every stage, None = all, with names
        from :func:`ntk_mlft.empirical.resolve_groups` for ``groups`` — by default
        ``"layer_01_Dense"``, ... (stax index and kind), the same split as
        :func:`ntk_mlft.empirical.empirical_ntk_by_group`, so re-training groups ``G`` is
        regression with the kernel ``Σ_{g ∈ G} Θ_g``, see :mod:`.masks`).
      x_test, y_test: held-out inputs and finest-level targets for the per-level test error.
      seed: PRNG seed of the initialisation.
      center: train ``f − f₀`` (zero at initialisation).
      dtype: ``"float32"`` or ``"float64"`` for params and data.
      max_steps_per_level: one step limit per level instead of ``options.max_steps``.
      trainable_per_level: one ``trainable`` (groups, or None = all) per level instead of
        ``options.trainable``.
    """
    if not isinstance(options, FitOptions):
        raise TypeError(f"options must be a FitOptions; got {type(options).__name__}")
    check_choice("dtype", dtype, ("float32", "float64"))
    if not (hasattr(architecture, "init_fn") and hasattr(architecture, "apply_fn")):
        raise TypeError("architecture must have init_fn and apply_fn (see ntk_mlft.architectures)")
    levels = level_pairs(level_datasets)
    n_levels = len(levels)
    steps_per = _per_level("max_steps_per_level", max_steps_per_level, options.max_steps, n_levels)
    trainable_per = _per_level("trainable_per_level", trainable_per_level, options.trainable, n_levels)
    if (x_test is None) != (y_test is None):
        raise ValueError("give both x_test and y_test, or neither")
    dt = jnp.dtype(dtype)
    t_start = time.perf_counter()
    x_shape = levels[-1][0].shape[1:]
    _, params = architecture.init_fn(jax.random.key(seed), (-1, *x_shape))
    params = jax.tree.map(lambda p: jnp.asarray(p, dt), params)
    params0 = params
    apply_fn = architecture.apply_fn
    predict_c, predict_raw = _predictors(apply_fn)

    def predict(p, x):
        return predict_c(p, params0, x) if center else predict_raw(p, x)

    if x_test is not None:
        x_test = jnp.asarray(as_finite_array("x_test", x_test), dt)
        y_test = as_finite_array("y_test", y_test).reshape(len(x_test), -1)
        if len(y_test) != len(x_test):
            raise ValueError("x_test and y_test must have the same number of rows")

    records = []
    for level, ((x, y), steps, train_groups) in enumerate(zip(levels, steps_per, trainable_per), start=1):
        t0 = time.perf_counter()
        if len(x) == 0:
            res = None
        else:
            offset = np.asarray(predict_raw(params0, jnp.asarray(x, dt))) if center else None
            res = fit(apply_fn, params, x, y, options.replace(max_steps=int(steps), trainable=train_groups),
                      offset=offset, progress_desc=f"level {level}")
            params = res.params
        err = float("nan")
        if x_test is not None:
            err = relative_mse(np.asarray(predict(params, x_test)), y_test)
        records.append(LevelRecord(
            level=level, n_train=len(x), losses=res.losses if res else np.zeros(0),
            steps=res.steps if res else 0, stopped=res.stopped if res else "skipped",
            learning_rate=res.learning_rate if res else float("nan"), test_error=err,
            wall_seconds=time.perf_counter() - t0))
    preds = np.asarray(predict(params, x_test)) if x_test is not None else None
    return TrainingResult(
        levels=tuple(records), params=params, test_predictions=preds,
        test_error=records[-1].test_error, wall_seconds=time.perf_counter() - t_start,
        architecture=getattr(architecture, "name", type(architecture).__name__),
        width=int(getattr(architecture, "options", {}).get("width", -1)), seed=seed,
        optimizer=options.optimizer, center=center)


def train_mlft_ensemble(architecture: Any, level_datasets: Any, options: FitOptions = MLFT_OPTIONS, *,
                        x_test: Any, y_test: Any, seeds: Sequence[int] = (0, 1, 2), center: bool = True,
                        dtype: str = "float64") -> EnsembleResult:
    """:func:`train_mlft` once per seed (same data); mean/variance of the test predictions over
    seeds — the finite-width counterpart of the NTK predictive mean and variance."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    results = tuple(train_mlft(architecture, level_datasets, options, x_test=x_test, y_test=y_test,
                               seed=int(s), center=center, dtype=dtype) for s in seeds)
    preds = np.stack([r.test_predictions for r in results])
    mean = preds.mean(axis=0)
    return EnsembleResult(results=results, prediction_mean=mean, prediction_var=preds.var(axis=0),
                          test_error_of_mean=relative_mse(mean, y_test),
                          test_errors=np.array([r.test_error for r in results]))
