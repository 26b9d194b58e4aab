"""Generalization-error estimators for MLFT in the NTK regime.

``montecarlo`` (the reference on a finite pool), ``spectral`` (closed-form learning-curve theory
extended to multiple levels), ``power_law`` (separable per-level fits). All report the relative
MSE sum||f_L - u_L||^2 / sum||u_L||^2 averaged over draws of the per-level sample sets.
"""

from ntk_mlft.estimators.montecarlo import MonteCarloResult as MonteCarloResult
from ntk_mlft.estimators.montecarlo import montecarlo_error as montecarlo_error
from ntk_mlft.estimators.spectral import Breakdown as Breakdown
from ntk_mlft.estimators.spectral import SpectralEstimator as SpectralEstimator
from ntk_mlft.estimators.spectral import solve_kappa as solve_kappa

__all__ = ["Breakdown", "MonteCarloResult", "SpectralEstimator", "montecarlo_error",
           "solve_kappa"]
