"""Spectral MLFT error estimator: time per evaluation of E(N_1..N_L) and speed-up over the
Monte-Carlo reference at equal accuracy (same run, same machine; ratios only), and the set-up
cost of the practical estimator against its pool size.

Set-up: 2,000-point pool of 16-dim Gaussian inputs, mlp-relu-3 NTK, a 3-level target, ridge
1e-3 * mean diagonal, counts up to the per-level cap (``studies.error_model.sample_cap``: 400). The error
is the fresh-input one (the estimators' default; MC: ``fresh_mean``). Accuracy: eps = max
relative deviation of the spectral estimate from a 20-trial MC over a few allocations. MC at
equal accuracy needs T* = (cv / eps)^2 trials (cv: per-trial coefficient of variation), costing
T* x (MC time per trial). Evaluation time is reported for the default estimator (diagonal-
normalised, compressed spectrum, ``from_kernel(compress=0.03)``, fresh-input target), for its
whole-pool error (``target="pool"``, no fresh step), for every mode kept (``compress=0``, with
the largest relative difference between the two on the allocations), for the plain closed form
(``normalize="none"``) and for a practical pilot estimator (200 pilot pairs of the pool, the
rest unlabeled). ``--pool-sizes``: set-up time of the practical estimator (120 pilot pairs,
20 bootstrap replicates, 4 levels) on pools of these sizes: the cost of a larger pool, i.e. of a
larger cap. The load average is recorded: timings are medians of best-of rounds, compare
ratios within one run.

Usage: ``python benchmarks/estimators.py [--out DIR] [--seed S] [--pool-sizes N,N,..] [--json]``;
writes ``DIR/estimators.json`` (default DIR: benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace

import numpy as np


def _pool_scaling(sizes: list[int], seed: int) -> list[dict]:
    """Set-up time of the practical estimator (kernel given) per pool size M, and its parts."""
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators import PilotEstimator

    rng = np.random.default_rng(seed + 1)
    out = []
    for size in sizes:
        x = rng.normal(size=(size, 16, 1))
        t0 = time.perf_counter()
        k = np.asarray(get_architecture("mlp-relu-3", output_dim=1).kernel_fn(x, None, get="ntk"))
        t_kernel = time.perf_counter() - t0
        z = x[:, :, 0]
        base = np.sin(1.5 * z.mean(1) + z[:, 0])
        u = np.stack([base, base + 0.1 * np.cos(2 * z[:, 1]), base + 0.1 * np.cos(2 * z[:, 1])
                      + 0.03 * np.sin(3 * z[:, 5]), base + 0.1 * np.cos(2 * z[:, 1])
                      + 0.03 * np.sin(3 * z[:, 5]) + 0.01 * z[:, 2]])
        t0 = time.perf_counter()
        np.linalg.eigh(k)
        t_eigh = time.perf_counter() - t0
        p, un = np.arange(120), np.arange(120, size)
        t0 = time.perf_counter()
        PilotEstimator.from_kernels(k[np.ix_(un, un)], k[np.ix_(p, un)], u[:, p], k_pp=k[np.ix_(p, p)],
                                    ridge=1e-4 * np.mean(np.diag(k)), n_boot=20, seed=seed)
        out.append({"pool_size": size, "kernel_s": t_kernel, "eigendecomposition_s": t_eigh,
                    "pilot_setup_s": time.perf_counter() - t0})
    return out


def run(seed: int, pool_sizes: list[int]) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators import PilotEstimator, SpectralEstimator, montecarlo_error

    load0 = os.getloadavg()[0]
    rng = np.random.default_rng(seed)
    n = 2000
    x = rng.normal(size=(n, 16, 1))
    k = np.asarray(get_architecture("mlp-relu-3", output_dim=1).kernel_fn(x, None, get="ntk"))
    z = x[:, :, 0]
    base = np.sin(4 * z[:, 0]) * np.cos(2 * z[:, 4]) + np.sin(1.5 * z.mean(1) + z[:, 0])
    u = np.stack([base + 0.3 * np.cos(2 * z[:, 1]), base + 0.1 * np.sin(3 * z[:, 5]), base])
    ridge = 1e-3 * np.trace(k) / n
    counts = np.array([[0, 0, 50], [200, 60, 20], [400, 100, 40], [400, 400, 100]])

    t0 = time.perf_counter()
    est = SpectralEstimator.from_kernel(k, u, ridge=ridge)       # the default
    t_setup = time.perf_counter() - t0
    exact = SpectralEstimator.from_kernel(k, u, ridge=ridge, compress=0)
    plain = SpectralEstimator.from_kernel(k, u, ridge=ridge, normalize="none")
    p, un = np.arange(200), np.arange(200, n)
    t0 = time.perf_counter()
    pilot = PilotEstimator.from_kernels(k[np.ix_(un, un)], k[np.ix_(p, un)], u[:, p],
                                        k_pp=k[np.ix_(p, p)], ridge=ridge, n_boot=30, seed=seed)
    t_pilot_setup = time.perf_counter() - t0

    def per_call(model, reps=200, rounds=5):
        model.error(counts[1])
        best = np.inf
        for _ in range(rounds):                     # best of rounds: least disturbed by load
            t0 = time.perf_counter()
            for _ in range(reps):
                model.error(counts[1])
            best = min(best, (time.perf_counter() - t0) / reps)
        return best

    t_eval, t_eval_exact = per_call(est), per_call(exact, reps=20)
    t_eval_plain, t_eval_pilot = per_call(plain), per_call(pilot)
    t_eval_pool = per_call(replace(est, target="pool"))
    batch = np.tile(counts[1], (1000, 1))
    t0 = time.perf_counter()
    est.error_many(batch)
    t_batch = (time.perf_counter() - t0) / len(batch)
    compress_dev = float(np.max(np.abs(est.error_many(counts) / exact.error_many(counts) - 1)))

    trials = 20
    t0 = time.perf_counter()
    mc = montecarlo_error(k, u, counts, ridge=ridge, n_trials=trials, seed=seed)
    t_mc_trial = (time.perf_counter() - t0) / (trials * len(counts))
    sp = est.error_many(counts)
    eps = float(max(np.max(np.abs(sp / mc.fresh_mean - 1)), 0.01))
    cv = float(np.max(mc.fresh_per_trial.std(1, ddof=1) / mc.fresh_mean))
    t_star = max(1.0, (cv / eps) ** 2)
    t_mc_equal = t_star * t_mc_trial
    return {
        "load_average_1min_start_end": [load0, os.getloadavg()[0]],
        "pool_size": n, "n_levels": 3, "n_modes": int(exact.eta.size),
        "n_entries_compressed": int(est.eta.size), "compression_max_rel_change": compress_dev,
        "counts": counts.tolist(), "mc_fresh_mean": mc.fresh_mean.tolist(),
        "mc_fresh_stderr": mc.fresh_stderr.tolist(), "mc_pool_mean": mc.mean.tolist(),
        "spectral": sp.tolist(), "spectral_pool": est.error_many(counts, target="pool").tolist(),
        "max_rel_deviation": eps,
        "eigendecomposition_s": t_setup, "spectral_eval_s": t_eval,
        "spectral_eval_all_modes_s": t_eval_exact,
        "spectral_eval_plain_s": t_eval_plain, "spectral_eval_pool_target_s": t_eval_pool,
        "pilot_setup_s": t_pilot_setup, "pilot_eval_s": t_eval_pilot,
        "pilot_rel_deviation": (pilot.error_many(counts) / mc.fresh_mean - 1).tolist(),
        "spectral_eval_batched_s": t_batch,
        "mc_time_per_trial_per_allocation_s": t_mc_trial,
        "mc_trials_for_equal_accuracy": t_star,
        "mc_time_equal_accuracy_s": t_mc_equal,
        "speedup_per_allocation": t_mc_equal / t_eval,
        "speedup_per_allocation_batched": t_mc_equal / t_batch,
        "practical_setup_by_pool_size": _pool_scaling(pool_sizes, seed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool-sizes", default="1000,2000,3000,4000",
                        help="comma-separated pool sizes for the practical estimator's set-up cost ('' to skip)")
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    args = parser.parse_args(argv)
    from ntk_mlft._io import write_json_atomic

    res = run(args.seed, [int(v) for v in args.pool_sizes.split(",") if v.strip()])
    os.makedirs(args.out, exist_ok=True)
    write_json_atomic(os.path.join(args.out, "estimators.json"), res)
    if args.json:
        json.dump(res, sys.stdout, indent=2)
    else:
        print(f"spectral eval {res['spectral_eval_s'] * 1e3:.3f} ms "
              f"(all {res['n_modes']} modes {res['spectral_eval_all_modes_s'] * 1e3:.3f} ms, plain "
              f"{res['spectral_eval_plain_s'] * 1e3:.3f} ms, "
              f"pool target {res['spectral_eval_pool_target_s'] * 1e3:.3f} ms, "
              f"pilot {res['pilot_eval_s'] * 1e3:.3f} ms) "
              f"(batched {res['spectral_eval_batched_s'] * 1e6:.1f} us), "
              f"MC at equal accuracy {res['mc_time_equal_accuracy_s']:.3f} s, "
              f"speed-up x{res['speedup_per_allocation']:.0f}")
        for row in res["practical_setup_by_pool_size"]:
            print(f"pool {row['pool_size']}: kernel {row['kernel_s']:.2f} s, eigh {row['eigendecomposition_s']:.2f} s, "
                  f"practical estimator {row['pilot_setup_s']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
