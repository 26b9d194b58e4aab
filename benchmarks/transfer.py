"""Transfer-study performance: data generation and the full predicted scaling study.

1. ``generate`` of 10^4 samples at 64^2 for each periodic system (serial, one process: batched
   FFTs in chunks of 32, per-sample seeds), wall and CPU seconds, samples per second.
2. The full predicted study (3 systems x 4 shifts x 20 downstream N, fine-tune and scratch) with
   the data already cached: ``predict_scaling`` per system, split into kernels / estimators.
3. Reach: the largest downstream N the study predicts (``n_target_pool / 2``, the documented range
   of the fresh-input closed form) and the estimator set-up time (two dense eigen-decompositions,
   cubic in the pool) at pool sizes ``--reach-pools``, the cost that caps N (docs/transfer.md
   section 7).
Also records the load average (the machine is shared: wall times are upper bounds; the CPU
time of this process is the work) and the peak resident memory of the process after each phase
(``resource.getrusage``; monotone, so the value after the study covers everything). Writes
``DIR/transfer.json`` and ``DIR/transfer.md`` (``--out DIR``, default ``benchmarks/results``).

Usage: ``python benchmarks/transfer.py [--n 10000] [--pool 1000] [--cache DIR] [--out DIR] [--seed S]
[--quick] [--json]`` (``--quick``: 300 samples, pools of 60, a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SYSTEMS = ("poisson-aniso-2d", "advdiff-2d", "helmholtz-2d")


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20     # kilobytes on Linux


def _reach(pools: list[int]) -> list[dict]:
    """Set-up time of ``TransferEstimator.from_kernels`` on synthetic PSD kernels of each pool size."""
    import numpy as np

    from ntk_mlft.transfer import TransferEstimator

    rows = []
    for n in pools:
        rng = np.random.default_rng(n)
        x = rng.normal(size=(2 * n, 32))
        sq = np.sum(x ** 2, axis=1)
        k = np.exp(-(sq[:, None] + sq[None] - 2 * x @ x.T) / 64)          # Gaussian kernel, PSD
        u = rng.normal(size=(2 * n, 4))
        _, wall, cpu = _timed(lambda: TransferEstimator.from_kernels(k[:n, :n], k[n:, :n], k[n:, n:], u[:n], u[n:],
                                                                     ridge=0.1))
        rows.append({"pool": n, "max_n_down": n // 2, "setup_wall_s": wall, "setup_cpu_s": cpu})
    return rows


def _markdown(r: dict) -> str:
    lines = ["# Transfer benchmark", "", f"Load average at start / end: {r['load_average_start'][0]:.1f} / "
             f"{r['load_average_end'][0]:.1f} (shared 2-core machine; CPU seconds are this process's work).", "",
             f"## Data generation: {r['n_samples']} samples at 64^2 (target <= 60 s)", "",
             "| system | wall s | CPU s | samples/s (wall) |", "|---|---|---|---|"]
    for name, g in r["generate"].items():
        lines.append(f"| {name} | {g['wall_s']:.1f} | {g['cpu_s']:.1f} | {g['samples_per_s_wall']:.0f} |")
    lines += ["", f"Peak RSS after generation: {r['peak_rss_gib_after_generate']:.2f} GiB.", "",
              f"## Full predicted study: 3 systems x 4 shifts x 20 downstream N, pools of {r['pool']} "
              "(data cached; target <= 300 s)", "",
              "| system | wall s | CPU s | kernels s | estimators s | data (cache read) s |",
              "|---|---|---|---|---|---|"]
    for name, st in r["study"].items():
        lines.append(f"| {name} | {st['wall_s']:.1f} | {st['cpu_s']:.1f} | {st['kernels']:.1f} | "
                     f"{st['estimators']:.1f} | {st['data']:.1f} |")
    lines += [f"| total | {r['study_total_wall_s']:.1f} | {r['study_total_cpu_s']:.1f} | | | |", "",
              f"Peak RSS after the study: {r['peak_rss_gib']:.2f} GiB.", "",
              "## Reach: largest downstream N vs estimator set-up (dense eigen-decompositions)", "",
              "| pool | max N predicted | set-up wall s | set-up CPU s |", "|---|---|---|---|"]
    for row in r["reach"]:
        lines.append(f"| {row['pool']} | {row['max_n_down']} | {row['setup_wall_s']:.2f} | {row['setup_cpu_s']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--reach-pools", default="500,1000,2000")
    parser.add_argument("--cache", default=None)
    parser.add_argument("--out", default="benchmarks/results", help="folder for transfer.json / .md")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the markdown")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.pool, args.reach_pools = 300, 60, "100,200"
    import jax

    jax.config.update("jax_enable_x64", True)
    from ntk_mlft._progress import set_progress_enabled
    from ntk_mlft.problems import generate, get_problem
    from ntk_mlft.transfer.study import default_targets, predict_scaling

    set_progress_enabled(False)
    result = {"load_average_start": os.getloadavg(), "cpu_count": os.cpu_count(), "seed": args.seed,
              "n_samples": args.n, "pool": args.pool, "generate": {},
              "study": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SYSTEMS:
            _, wall, cpu = _timed(lambda: generate(get_problem(name), [args.n], seed=args.seed, cache_dir=tmp))
            result["generate"][name] = {"wall_s": wall, "cpu_s": cpu, "samples_per_s_wall": args.n / wall}
    result["peak_rss_gib_after_generate"] = _peak_gib()
    tmp_cache = tempfile.TemporaryDirectory()
    cache = args.cache or tmp_cache.name
    for name in SYSTEMS:                          # data first (not timed), then the study
        source, targets = default_targets(name)
        predict_scaling(source, targets[:1], n_source_pool=args.pool, n_target_pool=args.pool,
                        n_pre=args.pool // 2, cache_dir=cache, n_down=[10, 20], seed=args.seed)
        for i, t in enumerate(targets):
            generate(t.problem, [args.pool], seed=args.seed + 1 + i, paired=True, cache_dir=cache)
    total_w, total_c = 0.0, 0.0
    for name in SYSTEMS:
        source, targets = default_targets(name)
        study, wall, cpu = _timed(lambda: predict_scaling(source, targets, n_source_pool=args.pool,
                                                          n_target_pool=args.pool, n_pre=args.pool // 2,
                                                          cache_dir=cache, seed=args.seed))
        total_w, total_c = total_w + wall, total_c + cpu
        result["study"][name] = {"wall_s": wall, "cpu_s": cpu, **study.seconds,
                                 "n_down": len(study.curves[0].n_down), "shifts": len(study.curves)}
    result["study_total_wall_s"], result["study_total_cpu_s"] = total_w, total_c
    result["peak_rss_gib"] = _peak_gib()
    result["reach"] = _reach([int(v) for v in args.reach_pools.split(",")])
    result["load_average_end"] = os.getloadavg()
    tmp_cache.cleanup()
    from ntk_mlft._io import write_json_atomic, write_text_atomic

    write_json_atomic(Path(args.out) / "transfer.json", result)
    write_text_atomic(Path(args.out) / "transfer.md", _markdown(result))
    print(json.dumps(result, indent=1) if args.json else _markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
