"""Generalization-error estimators for MLFT in the NTK regime.

``montecarlo`` (the reference on a finite pool), ``spectral`` (closed-form learning-curve
theory extended to multiple levels), ``fresh`` (its step from the pool's measure to inputs
outside the training sets), ``pool_spectrum`` (the kernel's spectrum on an input measure: the
interface between spectrum builders and the pilot estimator), ``pilot`` (the spectral formula fed
from paired pilot data), ``power_law`` (separable per-level fits). All report the relative MSE
sum||f_L - u_L||^2 / sum||u_L||^2 averaged over draws of the per-level sample sets; the
spectral and pilot estimators predict it on fresh inputs by default (``target="fresh"``) and on
the whole pool with ``target="pool"``.
"""

from ntk_mlft.estimators.montecarlo import MonteCarloResult as MonteCarloResult
from ntk_mlft.estimators.montecarlo import montecarlo_error as montecarlo_error
from ntk_mlft.estimators.pilot import Pilot as Pilot
from ntk_mlft.estimators.pilot import PilotEstimator as PilotEstimator
from ntk_mlft.estimators.pilot import load_pilot as load_pilot
from ntk_mlft.estimators.pilot import save_pilot as save_pilot
from ntk_mlft.estimators.pool_spectrum import PoolSpectrum as PoolSpectrum
from ntk_mlft.estimators.pool_spectrum import dense_pool_spectrum as dense_pool_spectrum
from ntk_mlft.estimators.power_law import PowerLawFit as PowerLawFit
from ntk_mlft.estimators.power_law import fit_error_model as fit_error_model
from ntk_mlft.estimators.power_law import fit_power_law as fit_power_law
from ntk_mlft.estimators.spectral import Breakdown as Breakdown
from ntk_mlft.estimators.spectral import SpectralEstimator as SpectralEstimator
from ntk_mlft.estimators.spectral import solve_kappa as solve_kappa

__all__ = ["Breakdown", "MonteCarloResult", "Pilot", "PilotEstimator", "PowerLawFit",
           "PoolSpectrum", "SpectralEstimator", "dense_pool_spectrum", "fit_error_model",
           "fit_power_law", "load_pilot", "montecarlo_error", "save_pilot", "solve_kappa"]
