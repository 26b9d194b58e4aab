"""Cost of the self-checks at the CLI defaults, against building the error model they check.

Default problem, ``--pilot-size 150``, ``--n-unlabeled 3000``, ridge 1e-4, seed 0, the demo's
budget (600 finest samples' worth): wall time of ``build_error_model`` (what ``allocate`` and
``curves`` pay anyway), of ``compare_rules``, of the wired pilot check
(``studies.self_check.check_setup``: ``pilot_consistency`` on the pilot pairs, 32 trials) and of
the surrogate check (``estimators.selfcheck.self_check`` on the pool: ``dense_pool_spectrum`` +
``calibrate``, 6 draws x 4 trials), with both checks' results, the load and peak memory.
Timings are one run on a shared machine: compare the ratios, not the seconds.

Usage: ``python benchmarks/self_check_cost.py [--out benchmarks/results/self_check_cost.json]``
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from ntk_mlft._io import write_json_atomic
    from ntk_mlft.allocation import compare_rules
    from ntk_mlft.cli._model_args import DEFAULT_N_UNLABELED, DEFAULT_PILOT_SIZE, DEFAULT_RIDGE, problem_error_model
    from ntk_mlft.estimators.calibration import PoolModes, pilot_coefficients
    from ntk_mlft.estimators.pool_spectrum import dense_pool_spectrum
    from ntk_mlft.estimators.selfcheck import self_check
    from ntk_mlft.problems import DEFAULT_PROBLEM, get_problem, measure_costs
    from ntk_mlft.studies.self_check import check_setup

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/self_check_cost.json")
    opts = parser.parse_args(argv)
    out: dict = {"problem": DEFAULT_PROBLEM, "pilot_size": DEFAULT_PILOT_SIZE, "n_unlabeled": DEFAULT_N_UNLABELED,
                 "load_before": os.getloadavg()}
    problem = get_problem(DEFAULT_PROBLEM)
    args = argparse.Namespace(pilot_size=DEFAULT_PILOT_SIZE, n_unlabeled=DEFAULT_N_UNLABELED, seed=0,
                              arch="mlp-relu-3", ridge=DEFAULT_RIDGE)
    t = time.perf_counter()
    setup = problem_error_model(problem, args)
    out["build_error_model_s"] = time.perf_counter() - t
    costs = measure_costs(problem, seed=0)
    t = time.perf_counter()
    rules = compare_rules(setup.model, costs, 600 * float(costs.cost_seconds[-1]),
                          max_samples=setup.max_samples).feasible()
    out["compare_rules_s"] = time.perf_counter() - t
    counts = np.array([a.counts for a in rules.values()], dtype=float)
    t = time.perf_counter()
    out["pilot_check"] = check_setup(setup, counts, 0, tuple(rules)).as_dict()
    out["pilot_check_s"] = time.perf_counter() - t
    t = time.perf_counter()
    modes = PoolModes.from_spectrum(dense_pool_spectrum(setup.kernel, setup.n_pilot), setup.kernel)
    out["surrogate_check"] = self_check(setup.model, modes, pilot_coefficients(setup.model), counts,
                                        ridge=setup.ridge_absolute).as_dict()
    out["surrogate_check_s"] = time.perf_counter() - t
    out["pilot_check_over_build"] = out["pilot_check_s"] / out["build_error_model_s"]
    out["surrogate_check_over_build"] = out["surrogate_check_s"] / out["build_error_model_s"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_after"] = os.getloadavg()
    write_json_atomic(opts.out, out)
    print(f"build {out['build_error_model_s']:.0f} s, pilot check {out['pilot_check_s']:.1f} s, "
          f"surrogate check {out['surrogate_check_s']:.0f} s -> {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
