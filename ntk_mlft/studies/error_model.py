"""From paired pilot data to an MLFT error model: the one construction the CLI and validation share.

A pilot study solves the same inputs ``x_1..x_n`` at every level, giving targets ``u_l(x_i)``
(L, n, D). With the NTK ``Θ`` of an architecture (``ntk_mlft.architectures``) on those inputs:

1. ``K = Θ(X, X)`` (n, n), computed in float64 whether or not ``jax_enable_x64`` is on
   (``estimators._linalg.kernel_float64``: a float32 NTK is asymmetric at ~1e-3 and its small
   eigenvalues, which the learning curves need, are noise). Its eigen-decomposition ``K/n = Σ_ρ η_ρ v_ρ v_ρᵀ`` is the
   Mercer spectrum of the kernel on the empirical input measure (``SpectralEstimator.from_kernel``).
2. The level differences ``d_l = u_l − u_{l−1}`` (``u_0 = 0``) projected on the modes give the
   cross powers ``C_{jk,ρ}``; the spectral (learning-curve) closed form then predicts the expected
   relative MSE ``E(N_1..N_L) = E Σ‖f_L − u_L‖² / Σ‖u_L‖²`` of chained kernel ridge regression
   with ``N_l`` i.i.d. samples at level l (Bordelon et al. 2020, Canatar et al. 2021, extended to
   levels in :mod:`ntk_mlft.estimators.spectral`).
3. Ridge: the user gives it *relative* to the mean kernel diagonal, ``λ = r · mean_i K_ii``
   (unnormalised: regressions solve ``(K_SS + λ I) α = y``), so the same ``r`` means the same
   regularisation for every architecture and input scaling. :func:`absolute_ridge` is that map,
   so finite-width training and kernel regression can use exactly the estimator's ``λ``.

The practical path (what a user with a solver has): a few paired pilot solves plus many cheap
unlabeled inputs (``Pilot.x_unlabeled``, m of them: ``problem.sample_inputs``, no solves). The
spectrum then comes from the kernel on the union U of pilot and unlabeled inputs (M = n_p + m
points, exact eigenfunctions on the pilot) and the mode powers from the pilot pairs
(:class:`ntk_mlft.estimators.pilot.PilotEstimator`), so counts far beyond the pilot size can be
predicted. :func:`practical_estimator_from_problem` builds it for a built-in problem.

4. What is predicted, and up to which counts. Both estimators predict the fresh-input (held-out)
   error by default: the closed form on the pool's measure with its training atoms removed
   (:mod:`ntk_mlft.estimators.fresh`; ``target="pool"`` keeps the whole-pool error). The step is
   exact in its assumptions; what remains is the closed form's own error, which grows with the
   fraction q_l = N_l / M of the pool that the sets cover and with the overlap of the levels'
   sets. :func:`sample_cap` is the per-level cap ``floor(MAX_COVERAGE * M)`` up to which the
   accuracy is documented (``tests/test_estimators_fresh.py``,
   ``analysis/results/estimator_accuracy.md``): within 10% of the Monte-Carlo fresh-input error
   with every level at the cap on the tested cases, and on 55 of 60 allocations of the built-in
   problems; the misses (up to -21%) are multi-level allocations whose sets together cover much
   of the pool, hence :data:`COVERAGE_WARNING`. A larger budget needs a larger pool (unlabeled inputs are
   cheap; the cost is one (M, M) eigen-decomposition, measured in ``benchmarks/estimators.py``).

Used by ``ntk-mlft allocate --problem/--pilot``, ``ntk-mlft demo`` and :mod:`ntk_mlft.studies.trained_networks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft._checks import check_distinct_inputs, check_memory, check_positive_int, check_positive_scalar
from ntk_mlft._linalg import kernel_float64
from ntk_mlft._progress import stage

__all__ = ["COVERAGE_WARNING", "MAX_COVERAGE", "PracticalSetup", "absolute_ridge", "estimator_from_pilot",
           "check_pool", "estimator_from_pilot_file", "pilot_from_problem", "pilot_kernel",
           "practical_estimator_from_problem", "sample_cap", "unlabeled_inputs"]

MAX_COVERAGE = 0.2
"""Largest fraction N_l / M of the estimator's pool one level may use (module docstring, step 4)."""

COVERAGE_WARNING = 0.5
"""Total fraction sum_l N_l / M above which reports warn: there the fresh-input prediction of
multi-level allocations tends to be optimistic (up to ~20 % low against disjoint-set Monte-Carlo,
``analysis/results/estimator_accuracy.md``), since ``estimators.fresh`` models independent level
memberships."""


MIN_PILOT = 10
"""Fewest paired pilot inputs a pilot file may have: below it the sample cap is a single sample
and the estimate has no bootstrap to speak of (README recommends 50-300)."""


def sample_cap(pool_size: int) -> int:
    """Per-level count cap ``max(1, floor(MAX_COVERAGE * pool_size))`` for an estimator whose
    pool (the measure its error refers to) has ``pool_size`` points (module docstring, step 4)."""
    return max(1, int(MAX_COVERAGE * check_positive_int("pool_size", pool_size)))


def pilot_kernel(x: np.ndarray, ys: Any, arch: str, **arch_options: Any) -> tuple[np.ndarray, np.ndarray]:
    """NTK of ``arch`` on the pilot inputs ``x`` (n, *input_shape) → ``K`` (n, n) float64, and the
    level targets ``ys`` (L entries of shape (n, *output_shape)) stacked as (L, n, D)."""
    from ntk_mlft.architectures import get_architecture

    ys = [np.asarray(y, dtype=np.float64) for y in ys]
    net = get_architecture(arch, output_dim=int(np.prod(ys[0].shape[1:]) or 1), **arch_options)
    k = kernel_float64(net.kernel_fn, x)
    targets = np.stack([y.reshape(len(y), -1) for y in ys])
    return k, targets


def absolute_ridge(k: Any, relative: float) -> float:
    """``λ = relative · mean(diag K)`` for a kernel matrix ``K`` (n, n) (module docstring, step 3)."""
    relative = check_positive_scalar("ridge", relative, allow_zero=True)
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"k must be a non-empty square kernel matrix; got shape {k.shape}")
    return relative * float(np.mean(np.diag(k)))


def estimator_from_pilot(x: np.ndarray, ys: Any, arch: str, ridge: float, **arch_options: Any):
    """Spectral MLFT estimator (:class:`ntk_mlft.estimators.SpectralEstimator`) from paired pilot
    data ``x`` (n, ...), ``ys`` (L, n, ...) and the NTK of ``arch`` on the pilot inputs.

    ``ridge`` is relative to the mean kernel diagonal (see :func:`absolute_ridge`).
    """
    from ntk_mlft.estimators import SpectralEstimator

    check_positive_scalar("ridge", ridge, allow_zero=True)
    check_distinct_inputs("pilot inputs x", x)
    k, targets = pilot_kernel(x, ys, arch, **arch_options)
    return SpectralEstimator.from_kernel(k, targets, ridge=absolute_ridge(k, ridge))


def _practical(pilot: Any, arch: str, ridge: float, seed: int, n_boot: int, noise: Any,
               **arch_options: Any) -> tuple[Any, float]:
    """PilotEstimator of ``pilot`` (with x_unlabeled) and the absolute ridge used: ``ridge`` x the
    mean NTK diagonal over the union of pilot and unlabeled inputs."""
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators.pilot import PilotEstimator

    ridge = check_positive_scalar("ridge", ridge, allow_zero=True)
    ys = np.asarray(pilot.ys)
    net = get_architecture(arch, output_dim=int(np.prod(ys.shape[2:]) or 1), **arch_options)
    union = np.concatenate([np.asarray(pilot.x), np.asarray(pilot.x_unlabeled)])
    check_distinct_inputs("pilot inputs x", pilot.x)
    check_distinct_inputs("the estimator's pool (pilot x followed by x_unlabeled)", union)
    with stage(f"error model: NTK of {arch} on {len(union)} inputs ({len(pilot.x)} pilot + "
               f"{len(union) - len(pilot.x)} unlabeled)"):
        k = kernel_float64(net.kernel_fn, union)
    lam = ridge * float(np.mean(np.diag(k)))
    n_p = len(pilot.x)
    with stage(f"error model: eigen-decomposition of the {len(union)} x {len(union)} kernel and "
               f"{n_boot} bootstrap replicates"):
        model = PilotEstimator.from_kernels(k[n_p:, n_p:], k[:n_p, n_p:], ys, k_pp=k[:n_p, :n_p],
                                            ridge=lam, noise=noise, n_boot=n_boot, seed=seed)
    return model, lam


def estimator_from_pilot_file(pilot: Any, arch: str, ridge: float, seed: int = 0,
                              **arch_options: Any) -> tuple[Any, int]:
    """Error model from a :class:`ntk_mlft.estimators.pilot.Pilot`, and a pool size whose
    :func:`sample_cap` is the per-level cap.

    With ``x_unlabeled`` (m inputs): :class:`~ntk_mlft.estimators.pilot.PilotEstimator` on the
    union of pilot and unlabeled inputs (exact eigenfunctions on the pilot, 30 bootstrap
    replicates); the returned size is its pool, n_p + m (as in
    :func:`practical_estimator_from_problem`). Without: the spectral estimator on the pilot inputs themselves;
    the size is n_p. ``ridge`` is relative to the mean kernel diagonal on the inputs that define
    the spectrum.
    """
    x, ys = np.asarray(pilot.x), np.asarray(pilot.ys)
    if len(x) < MIN_PILOT:
        raise ValueError(f"the pilot has {len(x)} inputs; the error model needs at least {MIN_PILOT} paired inputs "
                         "(50-300 recommended: its per-level cap and bootstrap come from them)")
    if pilot.x_unlabeled is None:
        return estimator_from_pilot(x, list(ys), arch, ridge, **arch_options), len(x)
    model, _ = _practical(pilot, arch, ridge, seed, 30, 0.0, **arch_options)
    return model, int(model.pool_size)


@dataclass(frozen=True)
class PracticalSetup:
    """What :func:`practical_estimator_from_problem` built.

    model: the :class:`~ntk_mlft.estimators.pilot.PilotEstimator`; pilot: the
    :class:`~ntk_mlft.estimators.pilot.Pilot` (paired solves + unlabeled inputs); ridge: the
    absolute ridge lambda (relative ridge x mean NTK diagonal over pilot + unlabeled inputs);
    max_samples: the per-level cap :func:`sample_cap` of the pool (pilot + unlabeled inputs).
    """

    model: Any
    pilot: Any
    ridge: float
    max_samples: int

    @property
    def n_pilot(self) -> int:
        return int(len(self.pilot.x))

    @property
    def n_unlabeled(self) -> int:
        return int(len(self.pilot.x_unlabeled))


def unlabeled_inputs(problem: Any, n: int, seed: int = 0) -> np.ndarray:
    """``n`` cheap unlabeled inputs of ``problem`` (``sample_inputs``, no solves), from a random
    stream independent of the one ``problems.generate`` uses for seed ``seed``."""
    n = check_positive_int("n_unlabeled", n)
    check_memory(f"{n} unlabeled inputs", 8.0 * n * int(np.prod(problem.input_shape)), "use fewer unlabeled inputs")
    rng = np.random.default_rng(np.random.SeedSequence([check_positive_int("seed", seed, allow_zero=True),
                                                        0x756E6C62]))
    return problem.sample_inputs(rng, n)


def practical_estimator_from_problem(problem: Any, arch: str, ridge: float, *, n_pilot: int = 150,
                                     n_unlabeled: int = 3000, seed: int = 0, n_boot: int = 30,
                                     noise: Any = 0.0, cache_dir: Any = None,
                                     **arch_options: Any) -> PracticalSetup:
    """The practical MLFT error model of a built-in problem: ``n_pilot`` paired pilot solves (every
    level on the same inputs) + ``n_unlabeled`` unlabeled inputs for the spectrum.

    Steps: :func:`pilot_from_problem` (solves), :func:`unlabeled_inputs` (no solves), NTK of
    ``arch`` on the union U, :class:`~ntk_mlft.estimators.pilot.PilotEstimator` (diagonal-
    normalised spectral estimate on U's measure, ``n_boot`` bootstrap replicates, label noise
    ``noise`` per output component, 0 for deterministic solvers). ``ridge`` is relative to the
    mean NTK diagonal over U. ``max_samples = sample_cap(n_pilot + n_unlabeled)``: the counts up
    to which the fresh-input predictions are documented accurate (module docstring, step 4).
    """
    from ntk_mlft.architectures import available_architectures
    from ntk_mlft.estimators.pilot import Pilot

    check_positive_scalar("ridge", ridge, allow_zero=True)
    if arch not in available_architectures():
        raise ValueError(f"architecture (--arch) must be one of {list(available_architectures())}; got {arch!r}")
    pool = check_positive_int("n_pilot", n_pilot) + check_positive_int("n_unlabeled", n_unlabeled)
    check_memory(f"the estimator's {pool} x {pool} pool kernel (n_pilot {n_pilot} + n_unlabeled {n_unlabeled})",
                 3 * 8.0 * pool * pool, "use fewer pilot or unlabeled inputs")  # before any solve
    base = pilot_from_problem(problem, n_pilot, seed=seed, cache_dir=cache_dir)
    pilot = Pilot(base.x, base.ys, unlabeled_inputs(problem, n_unlabeled, seed))
    model, lam = _practical(pilot, arch, ridge, seed, check_positive_int("n_boot", n_boot), noise,
                            **arch_options)
    return PracticalSetup(model=model, pilot=pilot, ridge=lam, max_samples=sample_cap(model.pool_size))


def pilot_from_problem(problem: Any, n_pilot: int, seed: int = 0, cache_dir: Any = None):
    """Paired pilot study of a built-in problem: ``n_pilot`` inputs solved at every level
    (``problems.generate(..., paired=True)``), as a :class:`ntk_mlft.estimators.pilot.Pilot`."""
    from ntk_mlft.estimators.pilot import Pilot
    from ntk_mlft.problems import generate

    n_pilot = check_positive_int("n_pilot", n_pilot)
    data = generate(problem, [n_pilot] * problem.n_levels, seed=seed, paired=True, cache_dir=cache_dir)
    return Pilot(x=data.inputs[-1], ys=np.stack(data.outputs))


def check_pool(problem: Any, n: int, arch: str, seed: int = 0, **arch_options: Any) -> tuple[np.ndarray, np.ndarray]:
    """An independent labelled pool for checking a prediction (not part of the method's cost):
    ``n`` inputs solved at every level from seed ``seed + 104729`` (a stream no pilot of seed
    ``seed`` uses), as NTK ``K`` (n, n) float64 and targets (L, n, D) (:func:`pilot_kernel`);
    ``estimators.montecarlo_error`` on it measures the fresh-input error the model predicts."""
    from ntk_mlft.problems import generate

    check_memory(f"the {n} x {n} kernel of the check pool", 3 * 8.0 * check_positive_int("n", n) ** 2,
                 "use a smaller check pool")  # before any solve
    data = generate(problem, [check_positive_int("n", n)] * problem.n_levels, seed=seed + 104729, paired=True)
    return pilot_kernel(data.inputs[-1], list(data.outputs), arch, **arch_options)
