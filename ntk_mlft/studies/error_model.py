"""From paired pilot data to an MLFT error model: the one construction every command and study uses.

Contract: :func:`build_error_model` takes a :class:`~ntk_mlft.estimators.pilot.Pilot` (paired
solves ``x`` (n, ...), ``ys`` (L, n, ...) on every level, optional cheap ``x_unlabeled`` (m, ...))
and an architecture name, computes the NTK once in float64 on the pool (pilot inputs, then the
unlabeled ones), builds the spectral estimator (pilot only) or the pilot estimator (pilot +
unlabeled inputs), converts the relative ridge to the absolute one and returns a frozen
:class:`ErrorModelSetup`. Both estimators predict the fresh-input (held-out) relative MSE; counts
are documented accurate up to :func:`sample_cap` per level. Derivation and the accuracy behind the
cap: ``docs/theory.md`` section 6 ("From pilot data to an error model").

:func:`pilot_from_problem` makes the pilot of a built-in problem (paired solves plus
:func:`unlabeled_inputs`); :func:`check_pool` is an independent labelled pool for Monte-Carlo
checks (not part of the method's cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ntk_mlft._checks import check_distinct_inputs, check_memory, check_positive_int, check_positive_scalar
from ntk_mlft._linalg import kernel_float64
from ntk_mlft._progress import stage
from ntk_mlft._seeds import derived_seed, seed_stream

__all__ = ["COVERAGE_WARNING", "DENSE_MEMORY_LIMIT", "MAX_COVERAGE", "ErrorModelSetup", "absolute_ridge",
           "build_error_model", "check_pool", "coverage_note", "pilot_from_problem", "sample_cap", "unlabeled_inputs"]

MAX_COVERAGE = 0.2
"""Largest fraction N_l / M of the estimator's pool one level may use (theory.md section 6, step 4)."""

COVERAGE_WARNING = 0.5
"""Total fraction sum_l N_l / M above which reports warn: there the fresh-input prediction of
multi-level allocations tends to be optimistic (up to ~20 % low against disjoint-set Monte-Carlo,
``analysis/results/estimator_accuracy.md``), since ``estimators.fresh`` models independent level
memberships."""


DENSE_MEMORY_LIMIT = 8e9
"""Bytes above which ``build_error_model`` refuses the dense pool spectrum (``dense_memory``)."""

MIN_PILOT = 10
"""Fewest paired pilot inputs a pilot file may have: below it the sample cap is a single sample
and the estimate has no bootstrap to speak of (README recommends 50-300)."""


def sample_cap(pool_size: int) -> int:
    """Per-level count cap ``max(1, floor(MAX_COVERAGE * pool_size))`` for an estimator whose
    pool (the measure its error refers to) has ``pool_size`` points.

    >>> sample_cap(150), sample_cap(3120), sample_cap(4)
    (30, 624, 1)
    """
    return max(1, int(MAX_COVERAGE * check_positive_int("pool_size", pool_size)))


def coverage_note(coverage: float, pool_size: int) -> str | None:
    """The warning sentence when the levels' samples together are more than
    :data:`COVERAGE_WARNING` of the estimator's pool (``coverage = sum_l N_l / pool_size``), else None."""
    if coverage <= COVERAGE_WARNING:
        return None
    return (f"the levels' samples together are {100 * coverage:.0f}% of the estimator's pool ({pool_size} "
            f"inputs); above {100 * COVERAGE_WARNING:.0f}% the fresh-input prediction of multi-level "
            "allocations tends to be optimistic (up to ~20% in analysis/results/estimator_accuracy.md): "
            "a larger pool of unlabeled inputs avoids it")


def absolute_ridge(k: Any, relative: float) -> float:
    """``λ = relative · mean(diag K)`` for a kernel matrix ``K`` (n, n) (theory.md section 6, step 3).

    >>> absolute_ridge(np.diag([1.0, 3.0]), 0.1)
    0.2
    """
    relative = check_positive_scalar("ridge", relative, allow_zero=True)
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"k must be a non-empty square kernel matrix; got shape {k.shape}")
    return relative * float(np.mean(np.diag(k)))


@dataclass(frozen=True)
class ErrorModelSetup:
    """What :func:`build_error_model` built.

    Attributes:
      model: the error model (``SpectralEstimator`` without unlabeled inputs, ``PilotEstimator``
        with them); ``model.error(counts)`` is the predicted fresh-input relative MSE.
      kernel: (M, M) float64 NTK on the pool, pilot inputs first, then the unlabeled ones.
      pilot: the :class:`~ntk_mlft.estimators.pilot.Pilot` it was built from.
      architecture: the architecture name whose NTK ``kernel`` is.
      ridge_relative: the user's ridge, relative to the mean kernel diagonal over the pool.
      ridge_absolute: λ = ridge_relative · mean(diag kernel) (regressions solve (K + λI)α = y).
      diagnostics: the estimator's diagnostics (resolved rank, tail power per level) where it has them.
    """

    model: Any
    kernel: np.ndarray = field(repr=False)
    pilot: Any = field(repr=False)
    architecture: str
    ridge_relative: float
    ridge_absolute: float
    diagnostics: dict = field(default_factory=dict)

    @property
    def pool_size(self) -> int:
        """M: points of the measure the predicted error refers to (pilot + unlabeled inputs)."""
        return int(self.kernel.shape[0])

    @property
    def max_samples(self) -> int:
        """Per-level cap :func:`sample_cap` of the pool."""
        return sample_cap(self.pool_size)

    @property
    def n_pilot(self) -> int:
        return int(len(self.pilot.x))

    @property
    def n_unlabeled(self) -> int:
        return 0 if self.pilot.x_unlabeled is None else int(len(self.pilot.x_unlabeled))

    def coverage(self, counts: Any) -> float:
        """``sum_l N_l / pool_size``: the fraction of the pool an allocation's sets cover."""
        return float(np.sum(counts)) / self.pool_size

    def describe(self) -> str:
        """One line: which estimator, on which inputs, which kernel and ridge."""
        source = (f"practical MLFT estimator (ntk_mlft.studies.error_model) from {self.n_pilot} paired pilot "
                  f"solves and {self.n_unlabeled} unlabeled inputs" if self.n_unlabeled else
                  f"spectral MLFT estimator (ntk_mlft.studies.error_model) on {self.n_pilot} paired pilot inputs")
        return (f"{source}, NTK of {self.architecture}, ridge {self.ridge_relative:g} x mean diagonal, "
                "fresh-input error")


def build_error_model(pilot: Any, arch: str, ridge_relative: float, *, seed: int = 0, n_boot: int = 30,
                      noise: Any = 0.0, **arch_options: Any) -> ErrorModelSetup:
    """The error model of ``pilot`` under the NTK of ``arch`` (module docstring).

    Without ``pilot.x_unlabeled``: :class:`~ntk_mlft.estimators.SpectralEstimator` on the pilot
    inputs (pool n_p). With it: :class:`~ntk_mlft.estimators.pilot.PilotEstimator` on the union of
    pilot and unlabeled inputs (pool n_p + m; exact eigenfunctions on the pilot, ``n_boot``
    bootstrap replicates from ``seed``, label noise ``noise`` per output component). The kernel is
    computed once, in float64. ``ridge_relative`` is relative to the mean kernel diagonal on the pool.
    """
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators import SpectralEstimator
    from ntk_mlft.estimators.pilot import PilotEstimator
    from ntk_mlft.estimators.pool_spectrum import dense_memory

    ridge_relative = check_positive_scalar("ridge", ridge_relative, allow_zero=True)
    x, ys = np.asarray(pilot.x), np.asarray(pilot.ys, dtype=np.float64)
    check_distinct_inputs("pilot inputs x", x)
    pool = x
    if pilot.x_unlabeled is not None:
        pool = np.concatenate([x, np.asarray(pilot.x_unlabeled)])
        check_distinct_inputs("the estimator's pool (pilot x followed by x_unlabeled)", pool)
    n_p, n_u = len(x), len(pool) - len(x)
    if dense_memory(len(pool)) > DENSE_MEMORY_LIMIT:
        raise ValueError(f"x_unlabeled: a pool of {len(pool)} inputs needs "
                         f"{dense_memory(len(pool)) / 1e9:.1f} GB for the dense kernel and its "
                         f"eigen-decomposition (limit {DENSE_MEMORY_LIMIT / 1e9:.0f} GB); use fewer "
                         f"unlabeled inputs, or the streamed spectrum "
                         f"estimators.pool_spectrum.nystrom_pool_spectrum with "
                         f"PilotEstimator.from_spectrum (no (M, M) array)")
    net = get_architecture(arch, output_dim=int(np.prod(ys.shape[2:]) or 1), **arch_options)
    with stage(f"error model: NTK of {arch} on {len(pool)} inputs ({n_p} pilot + {n_u} unlabeled)"):
        k = kernel_float64(net.kernel_fn, pool)
    lam = absolute_ridge(k, ridge_relative)
    if n_u == 0:
        targets = ys.reshape(ys.shape[0], n_p, -1)
        model = SpectralEstimator.from_kernel(k, targets, ridge=lam, noise=noise)
        diagnostics: dict = {}
    else:
        with stage(f"error model: eigen-decomposition of the {len(pool)} x {len(pool)} kernel and "
                   f"{n_boot} bootstrap replicates"):
            model = PilotEstimator.from_kernels(k[n_p:, n_p:], k[:n_p, n_p:], ys, k_pp=k[:n_p, :n_p], ridge=lam,
                                                noise=noise, n_boot=check_positive_int("n_boot", n_boot),
                                                seed=seed)
        diagnostics = model.diagnostics()
    return ErrorModelSetup(model=model, kernel=k, pilot=pilot, architecture=arch, ridge_relative=ridge_relative,
                           ridge_absolute=lam, diagnostics=diagnostics)


def unlabeled_inputs(problem: Any, n: int, seed: int = 0) -> np.ndarray:
    """``n`` cheap unlabeled inputs of ``problem`` (``sample_inputs``, no solves), from the named
    stream ``"unlabeled inputs"`` of ``seed`` (independent of ``problems.generate``'s streams)."""
    n = check_positive_int("n_unlabeled", n)
    check_memory(f"{n} unlabeled inputs", 8.0 * n * int(np.prod(problem.input_shape)), "use fewer unlabeled inputs")
    return problem.sample_inputs(np.random.default_rng(seed_stream(seed, "unlabeled inputs")), n)


def pilot_from_problem(problem: Any, n_pilot: int, seed: int = 0, cache_dir: Any = None, *,
                       n_unlabeled: int = 0):
    """Pilot of a built-in problem: ``n_pilot`` inputs solved at every level
    (``problems.generate(..., paired=True)``) and, with ``n_unlabeled > 0``, that many
    :func:`unlabeled_inputs`, as a :class:`ntk_mlft.estimators.pilot.Pilot`. A pool whose kernel
    (:func:`build_error_model`) cannot fit in memory is refused before any solve."""
    from ntk_mlft.estimators.pilot import Pilot
    from ntk_mlft.problems import generate

    n_pilot = check_positive_int("n_pilot", n_pilot)
    n_unlabeled = check_positive_int("n_unlabeled", n_unlabeled, allow_zero=True)
    pool = n_pilot + n_unlabeled
    check_memory(f"the estimator's {pool} x {pool} pool kernel (pilot {n_pilot} + unlabeled {n_unlabeled})",
                 3 * 8.0 * pool * pool, "use fewer pilot or unlabeled inputs")  # before any solve
    data = generate(problem, [n_pilot] * problem.n_levels, seed=seed, paired=True, cache_dir=cache_dir)
    unlabeled = unlabeled_inputs(problem, n_unlabeled, seed) if n_unlabeled else None
    return Pilot(x=data.inputs[-1], ys=np.stack(data.outputs), x_unlabeled=unlabeled)


def check_pool(problem: Any, n: int, arch: str, seed: int = 0, **arch_options: Any) -> tuple[np.ndarray, np.ndarray]:
    """An independent labelled pool for checking a prediction (not part of the method's cost):
    ``n`` inputs solved at every level from the named stream ``"check pool"`` of ``seed`` (no pilot
    uses it), as NTK ``K`` (n, n) float64 and targets (L, n, D); ``estimators.montecarlo_error`` on
    it measures the fresh-input error the model predicts."""
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.problems import generate

    check_memory(f"the {n} x {n} kernel of the check pool", 3 * 8.0 * check_positive_int("n", n) ** 2,
                 "use a smaller check pool")  # before any solve
    data = generate(problem, [check_positive_int("n", n)] * problem.n_levels,
                    seed=derived_seed(seed, "check pool"), paired=True)
    targets = np.stack([np.asarray(y, np.float64).reshape(len(y), -1) for y in data.outputs])
    net = get_architecture(arch, output_dim=targets.shape[2], **arch_options)
    return kernel_float64(net.kernel_fn, data.inputs[-1]), targets
