"""From paired pilot data to an MLFT error model: the one construction the CLI and validation share.

A pilot study solves the same inputs ``x_1..x_n`` at every level, giving targets ``u_l(x_i)``
(L, n, D). With the NTK ``Θ`` of an architecture (``ntk_mlft.architectures``) on those inputs:

1. ``K = Θ(X, X)`` (n, n), float64. Its eigen-decomposition ``K/n = Σ_ρ η_ρ v_ρ v_ρᵀ`` is the
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

With cheap unlabeled inputs (``Pilot.x_unlabeled``, m of them) the spectrum comes from those
instead (Nyström, :class:`ntk_mlft.estimators.pilot.PilotEstimator`). The estimate is a pool
estimate: it is meaningful for ``N_l`` well below the pool size (callers cap at half of it).

Used by ``ntk-mlft allocate --problem/--pilot``, ``ntk-mlft demo`` and :mod:`ntk_mlft.validation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ntk_mlft._validation import check_positive_int, check_positive_scalar

__all__ = ["absolute_ridge", "estimator_from_pilot", "estimator_from_pilot_file", "pilot_from_problem",
           "pilot_kernel"]


def pilot_kernel(x: np.ndarray, ys: Any, arch: str, **arch_options: Any) -> tuple[np.ndarray, np.ndarray]:
    """NTK of ``arch`` on the pilot inputs ``x`` (n, *input_shape) → ``K`` (n, n) float64, and the
    level targets ``ys`` (L entries of shape (n, *output_shape)) stacked as (L, n, D)."""
    from ntk_mlft.architectures import get_architecture

    ys = [np.asarray(y, dtype=np.float64) for y in ys]
    net = get_architecture(arch, output_dim=int(np.prod(ys[0].shape[1:]) or 1), **arch_options)
    k = np.asarray(net.kernel_fn(x, x, get="ntk"), dtype=np.float64)
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

    k, targets = pilot_kernel(x, ys, arch, **arch_options)
    return SpectralEstimator.from_kernel(k, targets, ridge=absolute_ridge(k, ridge))


def estimator_from_pilot_file(pilot: Any, arch: str, ridge: float, seed: int = 0,
                              **arch_options: Any) -> tuple[Any, int]:
    """Error model from a :class:`ntk_mlft.estimators.pilot.Pilot`, and the size of its pool.

    With ``x_unlabeled`` (m inputs): :class:`~ntk_mlft.estimators.pilot.PilotEstimator` (Nyström
    spectrum on the unlabeled inputs, bias-corrected mode powers from the pilot); the pool is m.
    Without: the spectral estimator on the pilot inputs themselves; the pool is n_p.
    ``ridge`` is relative to the mean kernel diagonal on the inputs that define the spectrum.
    """
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators.pilot import PilotEstimator

    x, ys = np.asarray(pilot.x), np.asarray(pilot.ys)
    if pilot.x_unlabeled is None:
        return estimator_from_pilot(x, list(ys), arch, ridge, **arch_options), len(x)
    net = get_architecture(arch, output_dim=int(np.prod(ys.shape[2:]) or 1), **arch_options)
    xu = np.asarray(pilot.x_unlabeled)
    k_uu = np.asarray(net.kernel_fn(xu, None, get="ntk"), dtype=np.float64)
    k_pu = np.asarray(net.kernel_fn(x, xu, get="ntk"), dtype=np.float64)
    model = PilotEstimator.from_kernels(k_uu, k_pu, ys, ridge=absolute_ridge(k_uu, ridge),
                                        n_boot=20, seed=seed)
    return model, len(xu)


def pilot_from_problem(problem: Any, n_pilot: int, seed: int = 0, cache_dir: Any = None):
    """Paired pilot study of a built-in problem: ``n_pilot`` inputs solved at every level
    (``problems.generate(..., paired=True)``), as a :class:`ntk_mlft.estimators.pilot.Pilot`."""
    from ntk_mlft.estimators.pilot import Pilot
    from ntk_mlft.problems import generate

    n_pilot = check_positive_int("n_pilot", n_pilot)
    data = generate(problem, [n_pilot] * problem.n_levels, seed=seed, paired=True, cache_dir=cache_dir)
    return Pilot(x=data.inputs[-1], ys=np.stack(data.outputs))
