"""One "which layers to re-train" study: base CNN -> per-layer predictions -> measured re-training.

:func:`run_layer_study` trains ``sgs_cnn`` on the base system, then for every target system:
predicts the relative test MSE of re-training each single layer and each adjacent pair
(:func:`ntk_mlft.transfer.layers.predict_layer_errors`), re-trains the single layers (and the
pairs when ``measure_pairs``) for ``seeds`` draws of the ``n_target`` training snapshots
(:mod:`ntk_mlft.transfer.layer_retraining`), scores them on held-out target snapshots and
compares predicted with measured errors: Spearman rank correlation, top-1 and top-3 agreement.
Filter spectra (:mod:`ntk_mlft.transfer.filters`) of the base network and of the most-changed
filters of each re-trained layer are recorded. Results are frozen, JSON-able dataclasses.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from ntk_mlft._checks import check_positive_int
from ntk_mlft.problems.sgs import SGSSystem
from ntk_mlft.training.masks import parameter_groups
from ntk_mlft.transfer.filters import classify_filters, filter_change
from ntk_mlft.transfer.layer_retraining import (
    Standardiser,
    predict,
    retrain,
    sgs_metrics,
    train_base,
)
from ntk_mlft.transfer.layers import predict_layer_errors, resolve_layer_sets, sgs_cnn

__all__ = ["LayerStudyConfig", "TargetResult", "rank_agreement", "run_layer_study"]


@dataclass(frozen=True)
class LayerStudyConfig:
    """Sizes of one study (CPU-sized defaults for the 1-D analogue)."""

    depth: int = 6
    width: int = 16
    kernel: int = 5
    n_base: int = 200
    n_base_test: int = 50
    base_steps: int = 400
    base_batch: int = 16
    n_target: int = 16
    n_target_test: int = 50
    retrain_steps: int = 150
    learning_rate: float = 1e-3
    seeds: int = 3
    positions: int = 32
    test_positions: int = 32
    n_test_predict: int = 12
    n_boot: int = 4
    ridge: float = 1e-3
    measure_pairs: bool = False
    layer_sets: tuple = ()
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("depth", "width", "kernel", "n_base", "n_base_test", "base_steps", "base_batch", "n_target",
                    "n_target_test", "retrain_steps", "seeds", "positions", "test_positions", "n_test_predict",
                    "n_boot"):
            check_positive_int(key, getattr(self, key))
        if self.seeds < 1 or self.depth < 2:
            raise ValueError(f"seeds must be >= 1 and depth >= 2; got {self.seeds}, {self.depth}")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def rank_agreement(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Spearman rank correlation, top-1 agreement (same best) and top-3 overlap (fraction of 3)."""
    p, m = np.asarray(predicted), np.asarray(measured)
    k = min(3, len(p))
    return {"spearman": _spearman(p, m), "top1": float(np.argmin(p) == np.argmin(m)),
            "top3_overlap": len(set(np.argsort(p)[:k]) & set(np.argsort(m)[:k])) / k}


@dataclass(frozen=True)
class TargetResult:
    """Predicted vs measured re-training errors for one base -> target transfer."""

    target: str
    sets: tuple[str, ...]
    predicted: dict[str, Any]
    measured: dict[str, list[dict[str, float]]]            # set -> one metrics dict per seed
    no_retraining: dict[str, float]
    agreement: dict[str, dict[str, float]]                 # "singles" / "all measured" -> metrics
    filters: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def measured_mean(self, metric: str = "rel_mse") -> dict[str, float]:
        return {s: float(np.mean([r[metric] for r in runs])) for s, runs in self.measured.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "sets": list(self.sets), "predicted": self.predicted,
                "measured": self.measured, "measured_mean_rel_mse": self.measured_mean(),
                "no_retraining": self.no_retraining, "agreement": self.agreement, "filters": self.filters,
                "seconds": self.seconds}


def _split(data, n_train: int, n_test: int, what: str) -> tuple[np.ndarray, ...]:
    if n_train + n_test > len(data):
        raise ValueError(f"{what}: {n_train} training + {n_test} test snapshots needed, {len(data)} available")
    return data.inputs[:n_train], data.targets[:n_train], data.inputs[-n_test:], data.targets[-n_test:]


def _filter_report(base_params, params, members_index, spatial_dims, grid) -> dict[str, Any]:
    out = {}
    for name in members_index:
        i = int(name.split("_")[1])
        w0, w1 = np.asarray(base_params[i][0]), np.asarray(params[i][0])
        change = filter_change(w0, w1, spatial_dims)
        cls0 = classify_filters(w0, grid)
        top = np.argsort(change)[::-1][:max(1, int(np.ceil(0.05 * change.size)))]
        out[name] = {"n_filters": int(change.size), "median_change": float(np.median(change)),
                     "top_change": change[top].tolist(),
                     "top_classes_before": cls0[top].tolist(),
                     "top_classes_after": classify_filters(w1, grid).reshape(-1)[top].tolist(),
                     "classes_before": {c: int(np.sum(cls0 == c)) for c in ("low", "band", "high")}}
    return out


def run_layer_study(base: SGSSystem, targets: dict[str, SGSSystem], config: LayerStudyConfig, *,
                    cache_dir: str | None = None, log: Any = None) -> tuple[dict[str, Any], list[TargetResult]]:
    """Base training, then one :class:`TargetResult` per target (module docstring)."""
    say = log or (lambda msg: None)
    c = config
    t0 = time.perf_counter()
    init, apply_fn, _ = sgs_cnn(base.spatial_dims, c.depth, c.width, c.kernel)
    _, params = init(jax.random.key(c.seed), (1, *base.grid_shape, base.in_channels))
    params = jax.tree.map(lambda a: a.astype(np.float32), params)
    groups = parameter_groups(params)
    if c.layer_sets:                          # checked before any training: bad names fail fast
        chosen = resolve_layer_sets(params, c.layer_sets)
        singles, pairs = [s for s in chosen if len(s) == 1], [s for s in chosen if len(s) > 1]
    else:
        singles = [(g,) for g in groups]
        pairs = list(itertools.pairwise(groups))
    base_data = base.generate(c.n_base + c.n_base_test, c.seed, cache_dir, chunk=25)
    xb, yb, xbt, ybt = _split(base_data, c.n_base, c.n_base_test, f"base system {base.name}")
    scale = Standardiser.fit(xb, yb)
    xb, yb = scale(xb, yb)
    xbt, ybt = scale(xbt, ybt)
    params, losses = train_base(apply_fn, params, xb, yb, steps=c.base_steps, batch=c.base_batch,
                                learning_rate=c.learning_rate, seed=c.seed)
    base_metrics = sgs_metrics(predict(apply_fn, params, xbt), ybt)
    say(f"base {base.name}: trained {c.base_steps} steps, test {base_metrics}")
    base_report = {"system": base.params, "groups": list(groups), "final_loss": float(np.mean(losses[-20:])),
                   "test": base_metrics, "seconds": time.perf_counter() - t0,
                   "filters": {g: {cl: int(np.sum(classify_filters(np.asarray(params[int(g.split('_')[1])][0]),
                                                                     xb.shape[1:-1]) == cl))
                                   for cl in ("low", "band", "high")} for g in groups}}
    results = []
    for label, system in targets.items():
        t1 = time.perf_counter()
        data = system.generate(c.n_target * c.seeds + c.n_target_test, c.seed, cache_dir, chunk=25)
        tscale = Standardiser.fit(data.inputs[:c.n_target * c.seeds], data.targets[:c.n_target * c.seeds])
        x_all, y_all = tscale(data.inputs, data.targets)
        x_pool, y_pool = x_all[:-c.n_target_test], y_all[:-c.n_target_test]
        x_test, y_test = x_all[-c.n_target_test:], y_all[-c.n_target_test:]
        pred = predict_layer_errors(apply_fn, params, x_pool, y_pool.astype(np.float64),
                                    singles + pairs, n_train=c.n_target, positions=c.positions,
                                    n_test=min(c.n_test_predict, x_pool.shape[0] - c.n_target),
                                    test_positions=c.test_positions, ridge=c.ridge, n_boot=c.n_boot, seed=c.seed)
        t2 = time.perf_counter()
        say(f"{label}: predicted in {t2 - t1:.0f} s: " + ", ".join(f"{'+'.join(s)} {e:.3g}"
                                                               for s, e in zip(pred.sets, pred.median)))
        measured: dict[str, list[dict[str, float]]] = {}
        to_measure = singles + (pairs if c.measure_pairs else [])
        retrained = {}
        for s in to_measure:
            name = "+".join(s)
            measured[name] = []
            for k in range(c.seeds):
                xs = x_pool[k * c.n_target:(k + 1) * c.n_target]
                ys = y_pool[k * c.n_target:(k + 1) * c.n_target]
                new = retrain(apply_fn, params, xs, ys, s, steps=c.retrain_steps, learning_rate=c.learning_rate)
                measured[name].append(sgs_metrics(predict(apply_fn, new, x_test), y_test))
                if k == 0 and len(s) == 1:
                    retrained[s[0]] = new
            say(f"{label}: re-trained {name}: rel MSE " + ", ".join(f"{m['rel_mse']:.3g}" for m in measured[name]))
        none = sgs_metrics(predict(apply_fn, params, x_test), y_test)
        names = ["+".join(s) for s in pred.sets]
        pmed = dict(zip(names, pred.median))
        mean = {s: float(np.mean([r["rel_mse"] for r in runs])) for s, runs in measured.items()}
        agreement = {"singles": rank_agreement([pmed["+".join(s)] for s in singles],
                                               [mean["+".join(s)] for s in singles])}
        if c.measure_pairs:
            agreement["singles+pairs"] = rank_agreement([pmed[s] for s in mean], list(mean.values()))
        filters = {g: _filter_report(params, retrained[g], [g], base.spatial_dims, xb.shape[1:-1])[g]
                   for g in retrained}
        results.append(TargetResult(label, tuple(names), pred.to_dict(), measured, none, agreement, filters,
                                    {"predict": t2 - t1, "measure": time.perf_counter() - t2}))
        say(f"{label}: agreement {agreement}")
    return base_report, results
