"""Which layers to re-train: per-layer NTK predictions of single-layer (and pair) re-training.

Setting (Subel et al., PNAS Nexus 2023): a CNN ``f(w; x)`` (``sgs_cnn``: ``depth`` circular 5x5
conv layers, ReLU, linear output) trained on a base system maps filtered fields to the SGS term.
Re-training only the parameter group(s) ``G`` on ``N`` target snapshots, from the base weights
``w_b``, is in the lazy regime kernel (ridge) regression of the residual ``r = y - f(w_b; x)``
with ``Theta_G = sum_{g in G} Theta_g``, the part of the empirical NTK of the TRAINED base
network that comes from ``G`` (``ntk_mlft.empirical.empirical_ntk_by_group``;
``docs/theory.md`` section 7; ``ntk_mlft.training.masks``):

    f_G(x) = f(w_b; x) + Theta_G(x, X) (Theta_G(X, X) + lambda I)^{-1} r(X),

so the target test error of every choice of ``G`` is predicted before any re-training.

Field outputs: the network is translation-equivariant (circular padding), so the kernel between
output position ``p`` of snapshot ``i`` and position ``q`` of snapshot ``j`` is the kernel of the
CENTRE output between the snapshots shifted so that ``p`` and ``q`` sit at the centre
(:func:`centred_points`). A training "point" is a (snapshot, position) pair; the prediction
uses ``positions`` random positions of each of the ``N`` training snapshots (the real
re-training sees all of them: the prediction is of a re-training on a subsample, which is
what makes it affordable; the ranking is what is compared). Test points: random positions of
held-out snapshots; the predicted error is the relative MSE ``sum (r - r_hat)^2 / sum y^2``
over them. ``lambda = ridge * mean diag Theta_G(X, X)`` (relative, so a group's overall scale
does not matter: the converged re-training is predicted, not the speed).

Uncertainty: ``n_boot`` repetitions with fresh draws of the training snapshots, the positions
and the test points give a distribution of every group's predicted error and of the ranking
(median, 10 / 90 % quantiles, probability of being the best).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ntk_mlft import stax
from ntk_mlft._checks import check_positive_int, check_positive_scalar
from ntk_mlft.empirical import NtkImplementation, empirical_ntk_by_group
from ntk_mlft.training.masks import parameter_groups

__all__ = ["LayerPrediction", "centred_points", "group_kernels", "predict_layer_errors", "resolve_layer_sets",
           "sgs_cnn"]


def sgs_cnn(spatial_dims: int, depth: int = 6, width: int = 16, kernel: int = 5):
    """``(init_fn, apply_fn, kernel_fn)``: ``depth`` conv layers (``kernel`` per spatial axis, circular
    padding, standard parameterisation, He init), ReLU between them, one output channel, linear."""
    check_positive_int("depth", depth)
    check_positive_int("width", width)
    check_positive_int("kernel", kernel)
    if spatial_dims not in (1, 2):
        raise ValueError(f"spatial_dims must be 1 or 2; got {spatial_dims}")
    if depth < 2:
        raise ValueError(f"depth must be >= 2 (hidden conv layers + the linear output layer); got {depth}")
    shape = (kernel,) * spatial_dims
    layers: list = []
    for _ in range(depth - 1):
        layers += [stax.Conv(width, shape, padding="CIRCULAR", W_std=2 ** 0.5, b_std=0.0,
                             parameterization="standard"), stax.Relu()]
    layers.append(stax.Conv(1, shape, padding="CIRCULAR", W_std=1.0, b_std=0.0, parameterization="standard"))
    return stax.serial(*layers)


def resolve_layer_sets(params: Any, sets: Sequence[Any]) -> list[tuple[str, ...]]:
    """Group-name tuples for ``sets``: each entry a group name, a 0-based index into the network's
    groups (``parameter_groups``; negative counts from the output), or a sequence of those.

    Unknown names / out-of-range indices raise a ValueError listing the groups; an empty set
    (nothing left to train) too."""
    names = parameter_groups(params)
    out = []
    for s in sets:
        members = [s] if isinstance(s, (str, int, np.integer)) else list(s)
        if not members:
            raise ValueError(f"a layer set must name at least one group (else nothing is trainable); "
                             f"the network's groups: {list(names)}")
        chosen = []
        for m in members:
            if isinstance(m, (int, np.integer)) and not isinstance(m, bool):
                if not -len(names) <= int(m) < len(names):
                    raise ValueError(f"layer index {int(m)} is out of range: the network has {len(names)} groups "
                                     f"(indices 0..{len(names) - 1} or -{len(names)}..-1): {list(names)}")
                chosen.append(names[int(m)])
            elif isinstance(m, str) and m in names:
                chosen.append(m)
            else:
                raise ValueError(f"unknown layer {m!r}; the network's groups are {list(names)} "
                                 f"(or their indices 0..{len(names) - 1})")
        out.append(tuple(dict.fromkeys(chosen)))
    return out


def centred_points(x: np.ndarray, snapshot: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Snapshots ``x[snapshot]`` (m, *grid, C) rolled so that ``position`` (m, d) lands on the centre."""
    grid = x.shape[1:-1]
    centre = np.array([g // 2 for g in grid])
    out = np.empty((len(snapshot), *x.shape[1:]), dtype=x.dtype)
    for j, (i, p) in enumerate(zip(snapshot, position)):
        out[j] = np.roll(x[i], tuple(int(c) for c in centre - p), axis=tuple(range(len(grid))))
    return out


def centre_value(y: np.ndarray, snapshot: np.ndarray, position: np.ndarray) -> np.ndarray:
    """``y[snapshot, *position, 0]`` (m,)."""
    return y[(snapshot, *position.T, np.zeros(len(snapshot), int))]


def group_kernels(apply_fn: Any, params: Any, points: np.ndarray, *, block: int = 1024) -> dict[str, np.ndarray]:
    """``{group: Theta_g}`` (m, m) of the centre output on ``points`` (m, *grid, C), float64.

    Jacobian contraction per parameter leaf (``empirical_ntk_by_group``) on the scalar centre
    output, in row / column blocks of ``block`` points (memory ~ block x parameters)."""
    grid = points.shape[1:-1]
    centre = tuple(g // 2 for g in grid)

    def f(p, x):
        return apply_fn(p, x)[(slice(None), *centre, 0)]

    m = points.shape[0]
    starts = list(range(0, m, block))
    out: dict[str, np.ndarray] = {}
    for a in starts:
        for b in starts:
            if b < a:
                continue
            kb = empirical_ntk_by_group(f, params, jnp.asarray(points[a:a + block]), jnp.asarray(points[b:b + block]),
                                        trace_axes=(), vmap_axes=0,
                                        implementation=NtkImplementation.JACOBIAN_CONTRACTION)
            for name, val in kb.items():
                k = out.setdefault(name, np.zeros((m, m)))
                k[a:a + block, b:b + block] = np.asarray(val, dtype=np.float64)
                k[b:b + block, a:a + block] = np.asarray(val, dtype=np.float64).T
    return out


def _krr_error(k: np.ndarray, tr: np.ndarray, te: np.ndarray, r: np.ndarray, y: np.ndarray,
               ridge: float) -> float:
    ktt = k[np.ix_(tr, tr)]
    lam = ridge * float(np.mean(np.diag(ktt)))
    alpha = np.linalg.solve(ktt + lam * np.eye(tr.size), r[tr])
    resid = r[te] - k[np.ix_(te, tr)] @ alpha
    return float(np.sum(resid ** 2) / np.sum(y[te] ** 2))


@dataclass(frozen=True)
class LayerPrediction:
    """Predicted relative test MSE of re-training each layer set.

    ``sets``: group-name tuples; ``errors``: (n_boot, n_sets) one value per repetition;
    ``no_retraining``: (n_boot,) error of the base network itself on the same test points."""

    sets: tuple[tuple[str, ...], ...]
    errors: np.ndarray
    no_retraining: np.ndarray
    n_train: int
    positions: int
    ridge: float

    @property
    def median(self) -> np.ndarray:
        return np.median(self.errors, axis=0)

    def quantile(self, q: float) -> np.ndarray:
        return np.quantile(self.errors, q, axis=0)

    @property
    def best_probability(self) -> np.ndarray:
        """(n_sets,) fraction of repetitions in which each set has the lowest predicted error."""
        best = np.argmin(self.errors, axis=1)
        return np.bincount(best, minlength=len(self.sets)) / self.errors.shape[0]

    def to_dict(self) -> dict[str, Any]:
        return {"sets": ["+".join(s) for s in self.sets], "median": self.median.tolist(),
                "q10": self.quantile(0.1).tolist(), "q90": self.quantile(0.9).tolist(),
                "best_probability": self.best_probability.tolist(),
                "no_retraining_median": float(np.median(self.no_retraining)), "n_train": self.n_train,
                "positions": self.positions, "ridge": self.ridge, "n_boot": int(self.errors.shape[0])}


def predict_layer_errors(apply_fn: Any, params: Any, x: np.ndarray, y: np.ndarray, sets: Sequence[Any], *,
                         n_train: int, positions: int = 64, n_test: int = 16, test_positions: int = 32,
                         ridge: float = 1e-3, n_boot: int = 8, seed: int = 0) -> LayerPrediction:
    """Predicted relative test MSE of re-training each layer set on ``n_train`` target snapshots.

    ``x`` (n, *grid, C), ``y`` (n, *grid, 1): the target pool (standardised as the network's
    training data); each repetition draws ``n_train`` training and ``n_test`` test snapshots
    (disjoint) from it, ``positions`` / ``test_positions`` positions in each, one kernel per group
    on all those points, then kernel ridge regression of the residual per set (module docstring).
    """
    n_train = check_positive_int("n_train", n_train)
    positions = check_positive_int("positions", positions)
    n_test = check_positive_int("n_test", n_test)
    check_positive_int("test_positions", test_positions)
    check_positive_int("n_boot", n_boot)
    ridge = check_positive_scalar("ridge", ridge)
    if n_train + n_test > x.shape[0]:
        raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds the {x.shape[0]} target snapshots")
    layer_sets = resolve_layer_sets(params, sets)
    grid = np.array(x.shape[1:-1])
    rng = np.random.default_rng(seed)
    errors, base = np.zeros((n_boot, len(layer_sets))), np.zeros(n_boot)
    for b in range(n_boot):
        order = rng.permutation(x.shape[0])
        snap = np.concatenate([np.repeat(order[:n_train], positions),
                               np.repeat(order[n_train:n_train + n_test], test_positions)])
        pos = rng.integers(0, grid, size=(snap.size, grid.size))
        pts = centred_points(x, snap, pos).astype(np.asarray(jax.tree.leaves(params)[0]).dtype)
        yv = centre_value(y, snap, pos)
        centre = tuple(int(g) // 2 for g in grid)
        r = yv - _centre_predictions(apply_fn, params, pts, centre)
        kernels = group_kernels(apply_fn, params, pts)
        tr = np.arange(n_train * positions)
        te = np.arange(n_train * positions, snap.size)
        base[b] = float(np.sum(r[te] ** 2) / np.sum(yv[te] ** 2))
        for s, members in enumerate(layer_sets):
            k = sum(kernels[g] for g in members)
            errors[b, s] = _krr_error(k, tr, te, r, yv, ridge)
    return LayerPrediction(tuple(layer_sets), errors, base, n_train, positions, ridge)


def _centre_predictions(apply_fn: Any, params: Any, points: np.ndarray, centre: tuple[int, ...],
                        batch: int = 256) -> np.ndarray:
    out = [np.asarray(apply_fn(params, jnp.asarray(points[i:i + batch])))[(slice(None), *centre, 0)]
           for i in range(0, points.shape[0], batch)]
    return np.concatenate(out).astype(np.float64)
