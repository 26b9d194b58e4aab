"""The predicted transfer-scaling study: data (cached), kernels, estimators, curves per shift.

For a source problem (one coefficient range of a periodic system, or the ``transfer-mixture``)
and target problems (the same system at in-distribution and shifted ranges), draw a source pool
of ``n_source_pool`` and a target pool of ``n_target_pool`` solved samples per target (seeds
``seed`` and ``seed + 1 + i``: the pools are independent even in-distribution; datasets come from
``ntk_mlft.problems.generate``, so they are cached and resumable with ``cache_dir``), map them to
network features (:mod:`ntk_mlft.transfer.features`), compute the analytic NTK of the
architecture in float64 (source block once, target blocks per shift), and predict the
fine-tune (N_pre source samples) and scratch curves over ``n_down`` with
:class:`~ntk_mlft.transfer.estimator.TransferEstimator`. One ridge ``ridge`` x mean NTK diagonal
of the source pool for both stages (the same number the trained networks use).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ntk_mlft._checks import check_positive_int, check_positive_scalar
from ntk_mlft._progress import progress
from ntk_mlft.problems import Problem, generate, get_problem
from ntk_mlft.transfer.estimator import TransferEstimator, check_counts_within
from ntk_mlft.transfer.features import network_inputs, network_targets
from ntk_mlft.transfer.scaling import ScalingCurve, TransferErrorModel, curve_from_dict, scaling_curve

__all__ = ["DEFAULT_SHIFTS", "ScalingStudy", "TargetSpec", "default_targets", "kernel_matrix", "pool_features",
           "predict_scaling", "shift_size"]

# system -> (source range, target ranges: in-distribution first, then shifts of growing size)
DEFAULT_SHIFTS: dict[str, tuple[tuple[float, float], tuple[tuple[float, float], ...]]] = {
    "poisson-aniso-2d": ((1.0, 5.0), ((1.0, 5.0), (2.5, 7.5), (5.0, 10.0), (10.0, 20.0))),
    "advdiff-2d": ((0.2, 1.0), ((0.2, 1.0), (0.6, 1.4), (1.0, 2.0), (2.0, 5.0))),
    "helmholtz-2d": ((1.0, 10.0), ((1.0, 10.0), (5.0, 15.0), (10.0, 20.0), (15.0, 25.0))),
}


def shift_size(source: tuple[float, float], target: tuple[float, float]) -> float:
    """|mid(target) - mid(source)| / width(source): 0 in-distribution, growing with the shift."""
    return abs(0.5 * (target[0] + target[1]) - 0.5 * (source[0] + source[1])) / (source[1] - source[0])


@dataclass(frozen=True)
class TargetSpec:
    """One downstream distribution: a label, its problem and its shift size."""

    label: str
    problem: Problem
    shift: float


def default_targets(system: str, **grid: Any) -> tuple[Problem, tuple[TargetSpec, ...]]:
    """The source problem and the default target ladder of ``system`` (``DEFAULT_SHIFTS``)."""
    if system not in DEFAULT_SHIFTS:
        raise ValueError(f"system must be one of {sorted(DEFAULT_SHIFTS)}; got {system!r}")
    src, targets = DEFAULT_SHIFTS[system]
    return get_problem(system, range=src, **grid), tuple(
        TargetSpec(f"{system} range {t[0]:g}-{t[1]:g}", get_problem(system, range=t, **grid), shift_size(src, t))
        for t in targets)


def pool_features(problem: Problem, n: int, seed: int, size: int, cache_dir: Any = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 7) network inputs and (n, size^2) finest-level targets of ``n`` solved
    samples (``generate`` with the same inputs at every grid level, cached in ``cache_dir``)."""
    data = generate(problem, [n] * problem.n_levels, seed=seed, paired=True, cache_dir=cache_dir)
    return network_inputs(data.inputs[-1], problem.n_input, size), network_targets(data.outputs[-1], size)


def kernel_matrix(kernel_fn: Any, x1: np.ndarray, x2: np.ndarray | None = None, block: int = 1000) -> np.ndarray:
    """The NTK (n1, n2) in float64 (``jax.enable_x64``), ``block`` rows of x1 per call."""
    import jax

    with jax.enable_x64(True):
        other = None if x2 is None else np.asarray(x2, np.float64)
        x1 = np.asarray(x1, np.float64)
        if other is None and x1.shape[0] <= block:
            k = np.asarray(kernel_fn(x1, None, get="ntk"), dtype=np.float64)
        else:
            other = x1 if other is None else other
            k = np.concatenate([np.asarray(kernel_fn(x1[i:i + block], other, get="ntk"), dtype=np.float64)
                                for i in range(0, x1.shape[0], block)])
    return 0.5 * (k + k.T) if x2 is None else k


@dataclass(frozen=True)
class ScalingStudy:
    """Predicted curves of one source against its targets (``curves[i]`` for ``targets[i]``),
    the settings, per-target ``grids`` (P, M) of errors over ``n_pre_grid`` (empty without a
    grid) and wall times (seconds: data, kernels, estimators)."""

    source: str
    architecture: str
    n_source_pool: int
    n_target_pool: int
    size: int
    ridge: float
    shifts: tuple[float, ...]
    curves: tuple[ScalingCurve, ...]
    n_pre_grid: tuple[int, ...] = ()
    grids: tuple[np.ndarray, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    def error_model(self, i: int) -> TransferErrorModel:
        """The (N_pre, N) error model of target ``i`` (needs ``n_pre_grid``)."""
        if not self.grids:
            raise ValueError("this study has no N_pre grid (pass n_pre_grid to predict_scaling)")
        return TransferErrorModel(np.array(self.n_pre_grid, dtype=float), self.curves[i].n_down.astype(float),
                                  self.grids[i])

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScalingStudy:
        """Inverse of :meth:`to_dict` (re-plot a saved study without recomputing it)."""
        return cls(d["source"], d["architecture"], int(d["n_source_pool"]), int(d["n_target_pool"]),
                   int(d["feature_grid"]), float(d["ridge_relative"]), tuple(float(v) for v in d["shifts"]),
                   tuple(curve_from_dict(c) for c in d["curves"]), tuple(int(v) for v in d["n_pre_grid"]),
                   tuple(np.asarray(g, dtype=float) for g in d["grids"]), dict(d.get("seconds", {})))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "architecture": self.architecture, "n_source_pool": self.n_source_pool,
                "n_target_pool": self.n_target_pool, "feature_grid": self.size, "ridge_relative": self.ridge,
                "shifts": list(self.shifts), "curves": [c.to_dict() for c in self.curves],
                "n_pre_grid": list(self.n_pre_grid), "grids": [g.tolist() for g in self.grids],
                "seconds": self.seconds}


def _label(problem: Problem) -> str:
    rng = getattr(problem, "range", None)
    return f"{problem.name} range {rng[0]:g}-{rng[1]:g}" if rng is not None else problem.name


def _kernel_inputs(architecture: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``mlp-*`` architectures begin with Flatten, so their kernel is a function of the
    flattened vector: give it (n, d) rows (same values to round-off, tested) instead of images,
    whose per-pixel covariances cost (n, n, size^2) memory (about 4 GB at n = 1000, size 16)."""
    return (x.reshape(x.shape[0], -1), y) if architecture.startswith("mlp-") else (x, y)


def predict_scaling(source: Problem, targets: Sequence[TargetSpec], *, n_source_pool: int = 2000,
                    n_target_pool: int = 2000, n_pre: int = 1000, n_down: Any = None, size: int = 16,
                    architecture: str = "mlp-relu-3", ridge: float = 0.1, seed: int = 0, cache_dir: Any = None,
                    target_error: float | None = None, n_pre_grid: Sequence[int] = ()) -> ScalingStudy:
    """Predicted fine-tune vs scratch curves for every target (module docstring).

    ``n_down`` default: 20 log-spaced counts from 10 to n_target_pool / 2 (the documented range
    of the fresh-input closed form). ``n_pre`` must not exceed the source pool, ``n_down`` the
    target pool (ValueError naming the pool). ``n_pre_grid``: also predict the curves for these
    N_pre (0 = scratch is added) for :meth:`ScalingStudy.error_model`.
    """
    from ntk_mlft.architectures import get_architecture

    n_s = check_positive_int("n_source_pool", n_source_pool)
    n_t = check_positive_int("n_target_pool", n_target_pool)
    n_pre = int(check_counts_within("n_pre", [n_pre], n_s, "the source pool (n_source_pool)")[0])
    if n_down is None:
        n_down = np.unique(np.round(np.geomspace(10, max(n_t // 2, 11), 20)).astype(int))
    n_down = check_counts_within("n_down", n_down, n_t, "the target pool (n_target_pool)")
    if np.any(np.diff(n_down) <= 0):
        raise ValueError(f"n_down must be strictly increasing; got {n_down.tolist()}")
    grid = sorted({0, *check_counts_within("n_pre_grid", list(n_pre_grid) or [0], n_s,
                                           "the source pool (n_source_pool)", allow_zero=True).tolist()})
    ridge = check_positive_scalar("ridge", ridge, allow_zero=True)
    size = check_positive_int("size", size)
    if not targets:
        raise ValueError("targets must name at least one downstream distribution")
    t0 = time.perf_counter()
    arch = get_architecture(architecture, output_dim=size * size, width=1)
    xs, ys = _kernel_inputs(architecture, *pool_features(source, n_s, seed, size, cache_dir))
    pools = [_kernel_inputs(architecture, *pool_features(t.problem, n_t, seed + 1 + i, size, cache_dir))
             for i, t in enumerate(targets)]
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    k_ss = kernel_matrix(arch.kernel_fn, xs)
    lam = ridge * float(np.mean(np.diagonal(k_ss)))
    t_kernel, t_est = time.perf_counter() - t0, 0.0
    curves, grids = [], []
    for spec, (xt, yt) in progress(list(zip(targets, pools)), total=len(targets), desc="transfer targets"):
        t0 = time.perf_counter()
        k_ts, k_tt = kernel_matrix(arch.kernel_fn, xt, xs), kernel_matrix(arch.kernel_fn, xt)
        t_kernel += time.perf_counter() - t0
        t0 = time.perf_counter()
        est = TransferEstimator.from_kernels(k_ss, k_ts, k_tt, ys, yt, ridge=lam)
        ft, sc = est.errors(n_pre, n_down), est.errors(0, n_down)
        curves.append(scaling_curve(spec.label, n_pre, n_down, ft, sc, est.pretrained_error(n_pre), target_error))
        if len(grid) > 1:
            grids.append(np.stack([sc if g == 0 else ft if g == n_pre else est.errors(g, n_down) for g in grid]))
        t_est += time.perf_counter() - t0
    return ScalingStudy(_label(source), architecture, n_s, n_t, size, ridge, tuple(t.shift for t in targets),
                        tuple(curves), tuple(grid) if len(grid) > 1 else (), tuple(grids),
                        {"data": t_data, "kernels": t_kernel, "estimators": t_est})
