"""Monte-Carlo reference for the MLFT fresh-input error at large counts (N_l up to ~2e4).

Each trial draws fresh, independent inputs for every level's training set and for a test set
from the input distribution (``draw``: disjoint level sets, i.e. continuous sampling), runs the
chained kernel ridge regression f_l = f_{l-1} + P_l (u_l - f_{l-1}) of
``ntk_mlft.predict.multilevel`` and measures

    E = sum_test ||f_L(x) - u_L(x)||^2 / sum_test ||u_L(x)||^2,

the fresh-input error of ``montecarlo`` (docs/theory.md section 1) without a finite pool
(docs/theory.md section 10, last paragraph). The
kernel is never formed beyond one level's (N_l, N_l) matrix: it is streamed in float64 row blocks
(``kernels.kernel_blocks``) into that matrix, factorised by one in-place Cholesky
(LAPACK ``potrf``, N_l^3 / 3 flops), and the cross kernels K(X_l, X_j) and K(X_test, X_j) are
streamed block by block into matrix-vector products. A ridge > 0 is required (the Cholesky
needs K + lambda I positive definite). Peak memory: 8 N_max^2 bytes plus one block;
``streamed_memory`` says how much before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft._checks import check_positive_int
from ntk_mlft.estimators.montecarlo import per_level_nonneg

__all__ = ["FreshDrawResult", "problem_draw", "streamed_memory", "streamed_montecarlo"]

Draw = Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class FreshDrawResult:
    """counts (A, L); mean, stderr (A,) fresh-input relative MSE over trials; per_trial (A, T);
    n_test: test inputs per trial."""

    counts: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    per_trial: np.ndarray
    n_test: int


def problem_draw(problem: Any) -> Draw:
    """``draw(rng, level, n)`` for a built-in problem: n fresh inputs ``problem.sample_inputs``
    and their level-``level`` (1-based) solutions ``problem.solve``, flattened to (n, D)."""

    def draw(rng: np.random.Generator, level: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = problem.sample_inputs(rng, n)
        y = np.asarray(problem.solve(x, level), dtype=np.float64)
        return x, y.reshape(n, -1)

    return draw


def streamed_memory(counts: Any, n_test: int, block: int) -> int:
    """Peak bytes of ``streamed_montecarlo``: the largest level's (N, N) float64 matrix, one
    (block, N) kernel block twice (computed, converted) and the test/training arrays' kernels."""
    c = np.atleast_2d(np.asarray(counts, dtype=np.int64))
    n_max = int(c.max())
    return 8 * (n_max * n_max + 2 * int(block) * max(n_max, int(n_test)))


def _blocks(kernel_fn: Any, x1: np.ndarray, x2: np.ndarray, block: int, get: str):
    import jax

    from ntk_mlft.kernels import kernel_blocks

    with jax.enable_x64(True):
        yield from kernel_blocks(kernel_fn, np.asarray(x1, np.float64), np.asarray(x2, np.float64),
                                 block=block, get=get)


def _apply(kernel_fn: Any, x_out: np.ndarray, fits: list[tuple[np.ndarray, np.ndarray]],
           block: int, get: str) -> np.ndarray:
    """sum_j K(x_out, X_j) alpha_j for the fitted levels ``fits`` = [(X_j, alpha_j (N_j, D))]."""
    out = np.zeros((len(x_out), fits[0][1].shape[1]))
    for x_j, alpha in fits:
        for start, rows in _blocks(kernel_fn, x_out, x_j, block, get):
            out[start:start + rows.shape[0]] += rows @ alpha
    return out


def _solve(kernel_fn: Any, x: np.ndarray, rhs: np.ndarray, lam: float, block: int, get: str,
           level: int) -> np.ndarray:
    """alpha = (K(x, x) + lam I)^{-1} rhs by one in-place Cholesky of the streamed matrix."""
    from scipy.linalg import cho_factor, cho_solve

    n = len(x)
    k = np.empty((n, n))
    for start, rows in _blocks(kernel_fn, x, x, block, get):
        k[start:start + rows.shape[0]] = rows
    k += lam * np.eye(n)
    try:
        factor = cho_factor(k, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError(f"ridge: K + lambda I of level {level} ({n} samples) is not numerically "
                         f"positive definite at lambda = {lam:.3e}; use a larger ridge") from None
    return cho_solve(factor, rhs, check_finite=False)


def streamed_montecarlo(kernel_fn: Any, draw: Draw, counts: Any, *, ridge: Any,
                        noise: Any = 0.0, n_trials: int = 4, n_test: int = 2000, seed: int = 0,
                        block: int = 1024, get: str = "ntk", memory_limit: float = 8e9
                        ) -> FreshDrawResult:
    """Fresh-draw Monte-Carlo MLFT error (module docstring).

    kernel_fn: an analytic ``kernel_fn`` of ``ntk_mlft.stax``; draw(rng, level, n) -> (x (n, ...),
    u_level(x) (n, D)) fresh inputs and labels (``problem_draw``); counts (A, L) non-negative
    integers, finest level >= 1; ridge: scalar or (L,) unnormalised, > 0; noise: scalar or (L,)
    label-noise variance per output component added to the training labels (the error is
    measured against the noiseless u_L); n_test: test inputs per trial (finest level labels);
    memory_limit: bytes; a larger ``streamed_memory`` is refused before any work. Trial t of
    every allocation uses the random stream (seed, t, allocation index).
    """
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    if c.ndim != 2 or not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c != np.round(c)):
        raise ValueError(f"counts must be an (A, L) array of non-negative integers; got {counts}")
    c = c.astype(np.int64)
    if np.any(c[:, -1] < 1):
        raise ValueError("counts: the finest level needs at least 1 sample")
    n_levels = c.shape[1]
    lam = per_level_nonneg("ridge", ridge, n_levels)
    if np.any(lam <= 0):
        raise ValueError(f"ridge must be > 0 at every level (the Cholesky solve needs K + lambda I "
                         f"positive definite); got {ridge}")
    sig2 = per_level_nonneg("noise", noise, n_levels)
    t_count = check_positive_int("n_trials", n_trials)
    n_test = check_positive_int("n_test", n_test)
    block = check_positive_int("block", block)
    need = streamed_memory(c, n_test, block)
    if need > memory_limit:
        raise ValueError(f"counts: the largest level ({int(c.max())} samples) needs "
                         f"{need / 1e9:.1f} GB for its kernel matrix, above memory_limit = "
                         f"{memory_limit / 1e9:.1f} GB; use fewer samples per level or raise "
                         f"memory_limit")
    per_trial = np.zeros((c.shape[0], t_count))
    for a, alloc in enumerate(c):
        for t in range(t_count):
            rng = np.random.default_rng([seed, t, a])
            fits: list[tuple[np.ndarray, np.ndarray]] = []
            for lvl in range(n_levels):
                if alloc[lvl] == 0:
                    continue
                x, y = draw(rng, lvl + 1, int(alloc[lvl]))
                if sig2[lvl] > 0:
                    y = y + np.sqrt(sig2[lvl]) * rng.standard_normal(y.shape)
                resid = y - _apply(kernel_fn, x, fits, block, get) if fits else y
                fits.append((x, _solve(kernel_fn, x, resid, float(lam[lvl]), block, get,
                                       lvl + 1)))
            x_test, u_test = draw(rng, n_levels, n_test)
            err = _apply(kernel_fn, x_test, fits, block, get) - u_test
            norm = float(np.sum(u_test ** 2))
            if norm == 0:
                raise ValueError("draw: the finest-level labels of a test set are identically "
                                 "zero; the relative error is undefined")
            per_trial[a, t] = float(np.sum(err ** 2)) / norm
    stderr = per_trial.std(1, ddof=1) / np.sqrt(t_count) if t_count > 1 \
        else np.full(c.shape[0], np.nan)
    return FreshDrawResult(counts=c, mean=per_trial.mean(1), stderr=stderr, per_trial=per_trial,
                           n_test=n_test)
