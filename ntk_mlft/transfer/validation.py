"""Trained networks against the predicted transfer curves: a 2-D CNN pre-trained on source
physics and fine-tuned (all layers) vs trained from scratch, at several widths and seeds.

Per source -> target pair: pools of ``n_pool`` solved samples each (as the predicted study,
:func:`ntk_mlft.transfer.study.pool_features`); the analytic NTK of :func:`cnn2d` on the pools;
the predicted curves (:class:`~ntk_mlft.transfer.estimator.TransferEstimator`, same ridge). For
every seed: a pre-training set of ``n_pre`` source-pool points, and per downstream N a set of N
target-pool points, drawn without replacement (``default_rng(seed)``); the rest of the target pool
is the test set. For every width: the centred network f - f_0 (``ntk_mlft.training.fit``,
CurveBall, ridge lambda = ``ridge`` x mean NTK diagonal as the proximal term, so the infinite-width
limit is kernel ridge regression) is pre-trained on the source set, then fine-tuned on each
target set starting from the pre-trained weights ("finetune"); and trained from initialisation on
each target set ("scratch"). Each row records the measured relative test MSE, the NTK limit on the
same sets (chained kernel ridge regression, the analytic NTK) and the prediction (expectation over
sets). Rows are appended atomically to ``checkpoint`` (JSON) and skipped on a re-run with the same
settings, so the background run resumes after an interruption.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._checks import check_positive_int, check_positive_scalar
from ntk_mlft._io import content_key, write_json_atomic
from ntk_mlft._progress import progress
from ntk_mlft.transfer.estimator import TransferEstimator, check_counts_within
from ntk_mlft.transfer.scaling import scaling_curve
from ntk_mlft.transfer.study import ScalingStudy, TargetSpec, kernel_matrix, pool_features

__all__ = ["CNN2D", "TransferRow", "cnn2d", "measured_points", "validate_transfer"]


@dataclasses.dataclass(frozen=True)
class CNN2D:
    """A 2-D CNN as an ``Architecture``-like record: 2 x [Conv(width, 3x3, circular), ReLU],
    Flatten, Dense(size^2); NTK parameterisation, W_std = sqrt(2) (readout 1), b_std = 0.1."""

    init_fn: Any
    apply_fn: Any
    kernel_fn: Any
    name: str
    options: dict[str, Any]


def cnn2d(width: int, size: int) -> CNN2D:
    from ntk_mlft import stax

    width, size = check_positive_int("width", width), check_positive_int("size", size)
    layers: list[Any] = []
    for _ in range(2):
        layers += [stax.Conv(width, (3, 3), padding="CIRCULAR", W_std=2 ** 0.5, b_std=0.1), stax.Relu()]
    init_fn, apply_fn, kernel_fn = stax.serial(*layers, stax.Flatten(), stax.Dense(size * size, W_std=1.0,
                                                                                    b_std=0.1))
    return CNN2D(init_fn, apply_fn, kernel_fn, "cnn2d-relu-2", {"width": width, "size": size})


@dataclasses.dataclass(frozen=True)
class TransferRow:
    """One trained network: target label, mode ("finetune" / "scratch"), width, seed, N_pre (0 for
    scratch), N, measured relative test MSE, NTK limit on the same sets, predicted error, training
    wall seconds (this stage; the pre-training stage's own row has n_down = 0) and steps."""

    label: str
    mode: str
    width: int
    seed: int
    n_pre: int
    n_down: int
    measured: float
    ntk_limit: float
    predicted: float
    seconds: float
    steps: int


def _krr(k_train: np.ndarray, k_eval: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    return k_eval @ np.linalg.solve(k_train + lam * np.eye(len(k_train)), y)


def _relative(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((pred - y) ** 2) / np.sum(y ** 2))


class _Checkpoint:
    def __init__(self, path: Path | None, description: dict[str, Any]):
        self.path = None if path is None else Path(path).with_name(
            f"{Path(path).stem}-{content_key(description, 12)}.json")
        self.rows: list[TransferRow] = []
        self.description = description
        if self.path is not None and self.path.exists():
            self.rows = [TransferRow(**r) for r in json.loads(self.path.read_text())["rows"]]

    def get(self, label: str, mode: str, width: int, seed: int, n_down: int) -> TransferRow | None:
        for r in self.rows:
            if (r.label, r.mode, r.width, r.seed, r.n_down) == (label, mode, width, seed, n_down):
                return r
        return None

    def add(self, row: TransferRow) -> None:
        self.rows.append(row)
        if self.path is not None:
            write_json_atomic(self.path, {"settings": self.description,
                                          "rows": [dataclasses.asdict(r) for r in self.rows]})


def _train(arch: CNN2D, params: Any, params0: Any, x: np.ndarray, y: np.ndarray, ridge: float,
           max_steps: int) -> tuple[Any, float, int]:
    import jax.numpy as jnp

    from ntk_mlft.training import FitOptions, fit

    offset = np.asarray(arch.apply_fn(params0, jnp.asarray(x)))
    t0 = time.perf_counter()
    res = fit(arch.apply_fn, params, x, y,
              FitOptions(optimizer="curveball", max_steps=max_steps, rtol=1e-5, chunk=25, ridge=ridge),
              offset=offset, progress_desc="train")
    return res.params, time.perf_counter() - t0, int(res.steps)


def validate_transfer(source: Any, targets: Sequence[TargetSpec], *, widths: Sequence[int] = (32, 64),
                      seeds: Sequence[int] = (0, 1), n_pre: int = 48, n_down: Sequence[int] = (16,),
                      n_pool: int = 96, size: int = 8, ridge: float = 0.1, max_steps: int = 150,
                      seed: int = 0, cache_dir: Any = None, checkpoint: Any = None
                      ) -> tuple[tuple[ScalingStudy, ...], tuple[TransferRow, ...]]:
    """Predicted curves (one ``ScalingStudy`` with one curve per target) and trained rows
    (module docstring). ``n_pre``, ``n_down`` must leave test points in the pools."""
    import jax
    import jax.numpy as jnp

    n_pool = check_positive_int("n_pool", n_pool)
    n_pre = int(check_counts_within("n_pre", [n_pre], n_pool, "the source pool (n_pool)")[0])
    n_down = check_counts_within("n_down", n_down, n_pool - 1, "the target pool minus one test point")
    ridge = check_positive_scalar("ridge", ridge)
    widths = [check_positive_int("widths", w) for w in widths]
    seeds = [check_positive_int("seeds", s, allow_zero=True) for s in seeds]
    if not targets or not widths or not seeds:
        raise ValueError("targets, widths and seeds must each name at least one entry")
    with jax.enable_x64(True):
        xs, ys = pool_features(source, n_pool, seed, size, cache_dir)
        kernel = cnn2d(1, size).kernel_fn
        k_ss = kernel_matrix(kernel, xs, block=128)
        lam = ridge * float(np.mean(np.diagonal(k_ss)))
        ck = _Checkpoint(checkpoint, {"source": source.params, "targets": [t.problem.params for t in targets],
                                      "widths": widths, "seeds": seeds, "n_pre": n_pre, "n_down": n_down.tolist(),
                                      "n_pool": n_pool, "size": size, "ridge": ridge, "max_steps": max_steps,
                                      "seed": seed})
        grid = np.unique(np.round(np.geomspace(4, n_pool // 2, 12)).astype(int))
        curves = []
        for i, spec in enumerate(targets):
            xt, yt = pool_features(spec.problem, n_pool, seed + 1 + i, size, cache_dir)
            k_ts, k_tt = kernel_matrix(kernel, xt, xs, block=128), kernel_matrix(kernel, xt, block=128)
            est = TransferEstimator.from_kernels(k_ss, k_ts, k_tt, ys, yt, ridge=lam)
            curves.append(scaling_curve(spec.label, n_pre, grid, est.errors(n_pre, grid), est.errors(0, grid),
                                        est.pretrained_error(n_pre)))
            predicted = {(m, n): float(est.errors(n_pre if m == "finetune" else 0, [n])[0])
                         for m in ("finetune", "scratch") for n in n_down}
            jobs = [(s, w) for s in seeds for w in widths]
            for s, w in progress(jobs, total=len(jobs), desc=f"{spec.label}: seeds x widths"):
                rng = np.random.default_rng([seed, s, i])
                pre_idx = rng.permutation(n_pool)[:n_pre]
                down_idx = {int(n): rng.permutation(n_pool)[:n] for n in n_down}
                f1 = _krr(k_ss[np.ix_(pre_idx, pre_idx)], k_ts[:, pre_idx], ys[pre_idx], lam)
                if all(ck.get(spec.label, m, w, s, int(n)) for m in ("finetune", "scratch") for n in n_down):
                    continue
                arch = cnn2d(w, size)
                _, params0 = arch.init_fn(jax.random.key(1000 * s + w), (-1, size, size, xs.shape[-1]))
                params_pre, t_pre, steps_pre = _train(arch, params0, params0, xs[pre_idx], ys[pre_idx], lam,
                                                      max_steps)
                for n in (int(v) for v in n_down):
                    idx = down_idx[n]
                    test = np.setdiff1d(np.arange(n_pool), idx)
                    for mode in ("finetune", "scratch"):
                        if ck.get(spec.label, mode, w, s, n):
                            continue
                        start = params_pre if mode == "finetune" else params0
                        base = f1 if mode == "finetune" else np.zeros_like(yt)
                        params, secs, steps = _train(arch, start, params0, xt[idx], yt[idx], lam,
                                                     max_steps)
                        pred = np.asarray(arch.apply_fn(params, jnp.asarray(xt[test]))
                                          - arch.apply_fn(params0, jnp.asarray(xt[test])))
                        ntk = base + _krr(k_tt[np.ix_(idx, idx)], k_tt[:, idx], yt[idx] - base[idx], lam)
                        ck.add(TransferRow(spec.label, mode, w, s, n_pre if mode == "finetune" else 0, n,
                                           _relative(pred, yt[test]), _relative(ntk[test], yt[test]),
                                           predicted[(mode, n)], secs + (t_pre if mode == "finetune" else 0.0),
                                           steps + (steps_pre if mode == "finetune" else 0)))
    study = ScalingStudy(getattr(source, "name", str(source)), "cnn2d-relu-2", n_pool, n_pool, size, ridge,
                         tuple(t.shift for t in targets), tuple(curves))
    return (study,), tuple(ck.rows)


def measured_points(rows: Sequence[TransferRow]) -> list[dict[str, Any]]:
    """Mean and standard error over seeds per (label, mode, width, N), for ``plot_scaling``."""
    groups: dict[tuple, list[TransferRow]] = {}
    for r in rows:
        groups.setdefault((r.label, r.mode, r.width, r.n_down), []).append(r)
    out = []
    for (label, mode, width, n), rs in sorted(groups.items()):
        v = np.array([r.measured for r in rs])
        out.append({"label": label, "mode": mode, "width": width, "n_down": n, "mean": float(v.mean()),
                    "stderr": float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0, "seeds": v.size,
                    "ntk_limit": float(np.mean([r.ntk_limit for r in rs])), "predicted": rs[0].predicted})
    return out
