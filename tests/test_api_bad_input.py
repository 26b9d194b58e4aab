"""Bad input to the Python API, as a new user passes it: every public entry point refuses it with
a ValueError/TypeError (an OSError subclass for a missing file) naming the argument, what was
wrong and what is allowed -- before any long work, never a warning, a hang or a number.

The counterpart of ``test_cli_bad_input.py``: table-driven, one row per way to get it wrong,
(id, call, exception type, phrase the message must contain). Add a row for every new one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ntk_mlft import stax
from ntk_mlft.allocation import (
    CostTable,
    equal_split_allocation,
    minimum_budget,
    mlmc_allocation,
    optimize_allocation,
    single_level_allocation,
)
from ntk_mlft.empirical import empirical_ntk_fn
from ntk_mlft.estimators import (
    Pilot,
    PilotEstimator,
    SpectralEstimator,
    fit_power_law,
    load_pilot,
    montecarlo_error,
    save_pilot,
)
from ntk_mlft.estimators.base import PowerLawErrorModel
from ntk_mlft.predict.gradient_flow import gradient_descent_mse
from ntk_mlft.problems import generate, get_problem, measure_costs
from ntk_mlft.reports.curves import budget_curves, parse_budgets, predicted_learning_curves, read_measured_csv
from ntk_mlft.studies.error_model import build_error_model, pilot_from_problem, sample_cap, unlabeled_inputs

PL = PowerLawErrorModel(coef=[0.8, 0.2], exponent=[1, 1])
RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 4))
YS = np.stack([np.sin(X[:, :1]), np.sin(X[:, :1]) + 0.1 * X[:, 1:2]])
K = X @ X.T + np.eye(30)
T = YS.reshape(2, 30, 1)
NAN = float("nan")
HUGE = "more than this machine's"


class NaNModel:
    n_levels = 2

    def error(self, counts):
        return NAN


def _problem():
    return get_problem("elliptic-rough", levels=2)


def _net():
    return stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))


# (id, call(tmp), exception, phrase)
CASES = [
    # allocation
    ("optimize-budget-nan", lambda d: optimize_allocation(PL, [1, 2], NAN), ValueError, "budget must be finite and > 0"),
    ("optimize-budget-negative", lambda d: optimize_allocation(PL, [1, 2], -1.0), ValueError, "budget must be finite"),
    ("optimize-budget-text", lambda d: optimize_allocation(PL, [1, 2], "100"), TypeError, "budget must be a real number"),
    ("optimize-budget-1e300", lambda d: optimize_allocation(PL, [1, 2], 1e300), ValueError, "largest count supported"),
    ("optimize-budget-below-one-sample", lambda d: optimize_allocation(PL, [1, 2], 1.0), ValueError,
     "the minimum budget needed is 2 s"),
    ("optimize-costs-decreasing", lambda d: optimize_allocation(PL, [2, 1], 10.0), ValueError, "strictly increasing"),
    ("optimize-costs-nan", lambda d: optimize_allocation(PL, [1, NAN], 10.0), ValueError, "costs must be finite"),
    ("optimize-costs-length", lambda d: optimize_allocation(PL, [1], 10.0), ValueError, "one entry per level (2 levels)"),
    ("optimize-costs-2d", lambda d: optimize_allocation(PL, [[1, 2]], 10.0), ValueError, "1-D array"),
    ("optimize-costs-1e-320", lambda d: optimize_allocation(PL, [1e-320, 2e-320], 1.0), ValueError,
     "between 1e-100 and 1e+100"),
    ("optimize-min-samples-0", lambda d: optimize_allocation(PL, [1, 2], 10.0, min_samples=0), ValueError,
     "min_samples must be >= 1"),
    ("optimize-max-samples-negative", lambda d: optimize_allocation(PL, [1, 2], 10.0, max_samples=-1), ValueError,
     "max_samples must be"),
    ("optimize-model-none", lambda d: optimize_allocation(None, [1, 2], 10.0), TypeError, "model must be an ErrorModel"),
    ("optimize-model-nan", lambda d: optimize_allocation(NaNModel(), [1, 2], 10.0), ValueError,
     "cheapest allocation [0, 1] is outside [0, inf)"),
    ("single-level-budget-0", lambda d: single_level_allocation(PL, [1, 2], 0.0), ValueError, "budget must be finite"),
    ("equal-split-budget-below", lambda d: equal_split_allocation(PL, [1, 2], 1.0), ValueError, "minimum budget"),
    ("minimum-budget-0-samples", lambda d: minimum_budget([1, 2], 0), ValueError, "min_samples must be >= 1"),
    ("mlmc-negative-variance", lambda d: mlmc_allocation([-1, 1], [1, 2], 10.0), ValueError, "variances must be >= 0"),
    ("mlmc-nan-variance", lambda d: mlmc_allocation([NAN, 1], [1, 2], 10.0), ValueError, "variances must be finite"),
    ("cost-table-1e-320", lambda d: CostTable.from_costs([1e-320, 1.0]), ValueError, "between 1e-100"),
    ("cost-table-empty", lambda d: CostTable.from_costs([]), ValueError, "non-empty 1-D"),
    ("cost-table-missing", lambda d: CostTable.from_csv(d / "nope.csv"), FileNotFoundError, "nope.csv does not exist"),
    ("cost-table-folder", lambda d: CostTable.from_csv(d), ValueError, "is a folder"),
    # error models
    ("power-law-all-zero", lambda d: PowerLawErrorModel(coef=[0, 0], exponent=[1, 1]), ValueError,
     "at least one entry > 0"),
    ("power-law-lengths", lambda d: PowerLawErrorModel(coef=[1, 1], exponent=[1]), ValueError, "same length"),
    ("power-law-exponent-1e3", lambda d: PowerLawErrorModel(coef=[1, 1], exponent=[1e3, 1]), ValueError,
     "exponent must be at most 10"),
    ("power-law-coef-subnormal", lambda d: PowerLawErrorModel(coef=[1e-320, 1], exponent=[1, 1]), ValueError,
     "coef must be 0 or between 1e-100"),
    ("power-law-floor-1e300", lambda d: PowerLawErrorModel(coef=[1, 1], exponent=[1, 1], floor=1e300), ValueError,
     "floor must be finite"),
    ("power-law-coef-text", lambda d: PowerLawErrorModel(coef="a", exponent=[1]), TypeError, "coef must be a numeric"),
    ("model-counts-negative", lambda d: PL.error([1, -1]), ValueError, "counts must be finite and >= 0"),
    ("model-counts-length", lambda d: PL.error([1, 2, 3]), ValueError, "one count per level"),
    ("model-counts-nan", lambda d: PL.error([NAN, 2]), ValueError, "counts must be finite"),
    # pilots
    ("pilot-x-1d", lambda d: Pilot(X[:, 0], YS), ValueError, "x must have shape (n_p, *input_shape)"),
    ("pilot-rows-mismatch", lambda d: Pilot(X[:20], YS), ValueError, "ys must have n_p = 20 rows"),
    ("pilot-unlabeled-shape", lambda d: Pilot(X, YS, RNG.normal(size=(10, 3))), ValueError,
     "x_unlabeled must have shape (m, 4)"),
    ("pilot-x-1e300", lambda d: Pilot(X * 1e300, YS), ValueError, "x has root-mean-square"),
    ("pilot-x-1e-300", lambda d: Pilot(X * 1e-300, YS), ValueError, "x has root-mean-square"),
    ("pilot-ys-1e300", lambda d: Pilot(X, YS * 1e300), ValueError, "ys has root-mean-square"),
    ("pilot-x-nan", lambda d: Pilot(np.where(X > 1, NAN, X), YS), ValueError, "x must be finite"),
    ("pilot-no-levels", lambda d: Pilot(X, np.zeros((0, 30, 1))), ValueError, "one array per level"),
    ("pilot-unlabeled-inf", lambda d: Pilot(X, YS, np.full((5, 4), np.inf)), ValueError, "x_unlabeled must be finite"),
    ("load-pilot-folder", lambda d: load_pilot(d), ValueError, "is a folder"),
    ("load-pilot-missing", lambda d: load_pilot(d / "nope.npz"), FileNotFoundError, "nope.npz does not exist"),
    ("save-pilot-under-a-file", lambda d: save_pilot(d / "afile" / "p.npz", X, YS), NotADirectoryError,
     "a part of the folder path is a file"),
    ("save-pilot-unlabeled-shape", lambda d: save_pilot(d / "p.npz", X, YS, RNG.normal(size=(5, 2))), ValueError,
     "x_unlabeled must have shape"),
    # estimators
    ("spectral-non-square", lambda d: SpectralEstimator.from_kernel(K[:, :20], T), ValueError, "square (n, n)"),
    ("spectral-nan-kernel", lambda d: SpectralEstimator.from_kernel(np.where(K > 5, NAN, K), T), ValueError,
     "k_pool must be finite"),
    ("spectral-ridge-negative", lambda d: SpectralEstimator.from_kernel(K, T, ridge=-1.0), ValueError,
     "ridge must be finite and >= 0"),
    ("spectral-target-rows", lambda d: SpectralEstimator.from_kernel(K, T[:, :10]), ValueError, "30 points per level"),
    ("montecarlo-counts-over-pool", lambda d: montecarlo_error(K, T, [[40, 40]], n_trials=2), ValueError,
     "must not exceed the pool size 30"),
    ("montecarlo-trials-0", lambda d: montecarlo_error(K, T, [[4, 4]], n_trials=0), ValueError, "n_trials must be >= 1"),
    ("pilot-estimator-ridge-nan", lambda d: PilotEstimator.from_kernels(K[10:, 10:], K[:10, 10:], T[:, :10],
                                                                        k_pp=K[:10, :10], ridge=NAN), ValueError,
     "ridge must be finite"),
    ("build-duplicate-inputs", lambda d: build_error_model(Pilot(np.repeat(X[:1], 30, 0), YS), "mlp-relu-3", 1e-4),
     ValueError, "29 of 30 input rows repeat an earlier row"),
    ("build-near-duplicate-inputs", lambda d: build_error_model(Pilot(np.concatenate([X[:15], X[:15] * (1 + 1e-14)]), YS),
                                                                "mlp-relu-3", 1e-4), ValueError,
     "15 of 30 input rows equal an earlier row up to round-off"),
    ("build-pool-near-duplicate", lambda d: build_error_model(Pilot(X, YS, X[:3] * (1 + 1e-13)), "mlp-relu-3", 1e-4),
     ValueError, "estimator's pool"),
    ("build-arch-unknown", lambda d: build_error_model(Pilot(X, YS), "nope", 1e-4), ValueError, "must be one of"),
    ("build-ridge-negative", lambda d: build_error_model(Pilot(X, YS), "mlp-relu-3", -1.0), ValueError,
     "ridge must be finite and >= 0"),
    ("pilot-from-problem-0", lambda d: pilot_from_problem(_problem(), 0), ValueError, "n_pilot must be >= 1"),
    ("pilot-from-problem-pool-too-big", lambda d: pilot_from_problem(_problem(), 150, n_unlabeled=10 ** 9), ValueError,
     HUGE),
    ("unlabeled-too-many", lambda d: unlabeled_inputs(_problem(), 10 ** 12), ValueError, HUGE),
    ("sample-cap-0", lambda d: sample_cap(0), ValueError, "pool_size must be >= 1"),
    ("fit-power-law-one-point", lambda d: fit_power_law([10], [0.1]), ValueError, "length >= 3"),
    # problems
    ("problem-unknown", lambda d: get_problem("nope"), ValueError, "available problems"),
    ("problem-levels-100", lambda d: get_problem("elliptic-rough", levels=100), ValueError, "at most 8 levels"),
    ("problem-levels-0", lambda d: get_problem("elliptic-rough", levels=0), ValueError, "levels must be >= 1"),
    ("problem-unknown-parameter", lambda d: get_problem("elliptic-rough", bogus=1), TypeError,
     "unknown parameter(s) ['bogus']"),
    ("generate-negative-count", lambda d: generate(_problem(), [-1, 1], seed=0), ValueError, "(level 1) must be >= 1"),
    ("generate-count-length", lambda d: generate(_problem(), [1, 1, 1], seed=0), ValueError, "one sample count per level"),
    ("generate-10-to-the-12", lambda d: generate(_problem(), [10 ** 12, 1], seed=0), ValueError, HUGE),
    ("measure-costs-repeats-0", lambda d: measure_costs(_problem(), repeats=0), ValueError, "repeats must be >= 1"),
    # kernels and predictions
    ("dense-0", lambda d: stax.Dense(0), ValueError, "out_dim must be an integer >= 1"),
    ("dense-negative", lambda d: stax.Dense(-3), ValueError, "out_dim must be an integer >= 1"),
    ("kernel-feature-mismatch", lambda d: _net()[2](X, RNG.normal(size=(5, 3)), "ntk"), ValueError,
     "same shape apart from the batch axis"),
    ("kernel-unknown-get", lambda d: _net()[2](X, None, "bogus"), ValueError, "get must be None, one of"),
    ("kernel-matrix-too-big", lambda d: __import__("ntk_mlft._linalg", fromlist=["x"]).kernel_float64(
        _net()[2], np.zeros((10 ** 6, 1))), ValueError, HUGE),
    ("empirical-implementation-7", lambda d: empirical_ntk_fn(lambda p, x: x, implementation=7), ValueError,
     "implementation must be one of"),
    ("gd-mse-non-square", lambda d: gradient_descent_mse(K[:, :20], T[0]), ValueError, "must have shape (30, 30)"),
    ("gd-mse-nan", lambda d: gradient_descent_mse(np.where(K > 5, NAN, K), T[0]), ValueError, "must be finite"),
    # reports
    ("budgets-num-0", lambda d: parse_budgets("1:10:0"), ValueError, "2 <= NUM <= 1000"),
    ("budgets-nan", lambda d: parse_budgets("nan"), ValueError, "got 'nan'"),
    ("budgets-10-to-the-8", lambda d: parse_budgets("1:10:100000000"), ValueError, "NUM <= 1000"),
    ("budgets-one", lambda d: parse_budgets("10"), ValueError, "list of 2 to 1000"),
    ("budget-curves-empty", lambda d: budget_curves(PL, [1, 2], []), ValueError, "budgets must be non-empty"),
    ("learning-curves-n-0", lambda d: predicted_learning_curves(PL, [2, 2], [0, 1]), ValueError, "n must be >= 1"),
    ("measured-missing", lambda d: read_measured_csv(d / "nope.csv"), FileNotFoundError, "does not exist"),
]


@pytest.mark.parametrize("call, exc, phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_api_input_raises_a_clear_error(tmp_path, call, exc, phrase):
    (tmp_path / "afile").write_text("a file, not a folder")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning instead of an error is a failure too
        with pytest.raises(exc) as info:
            call(tmp_path)
    assert phrase in str(info.value)


def test_table_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
