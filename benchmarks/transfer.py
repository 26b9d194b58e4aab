"""Transfer-study performance: data generation and the full predicted scaling study.

1. ``generate`` of 10^4 samples at 64^2 for each periodic system (serial, one process: batched
   FFTs in chunks of 32, per-sample seeds), wall and CPU seconds, samples per second.
2. The full predicted study (3 systems x 4 shifts x 20 downstream N, fine-tune and scratch) with
   the data already cached: ``predict_scaling`` per system, split into kernels / estimators.
Also records the load average (the machine is shared: wall times are upper bounds; the CPU
time of this process is the work). Writes ``benchmarks/results/transfer.json``.

Usage: ``python benchmarks/transfer.py [--n 10000] [--pool 2000] [--cache DIR] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--pool", type=int, default=2000)
    parser.add_argument("--cache", default=None)
    parser.add_argument("--out", default="benchmarks/results/transfer.json")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    from ntk_mlft._progress import set_progress_enabled
    from ntk_mlft.problems import generate, get_problem
    from ntk_mlft.transfer.study import default_targets, predict_scaling

    set_progress_enabled(False)
    result = {"load_average_start": os.getloadavg(), "n_samples": args.n, "pool": args.pool, "generate": {},
              "study": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SYSTEMS:
            _, wall, cpu = _timed(lambda: generate(get_problem(name), [args.n], seed=0, cache_dir=tmp))
            result["generate"][name] = {"wall_s": wall, "cpu_s": cpu, "samples_per_s_wall": args.n / wall}
    cache = args.cache or tempfile.mkdtemp()
    for name in SYSTEMS:                          # data first (not timed), then the study
        source, targets = default_targets(name)
        predict_scaling(source, targets[:1], n_source_pool=args.pool, n_target_pool=args.pool,
                        n_pre=args.pool // 2, cache_dir=cache, n_down=[10, 20])
        for i, t in enumerate(targets):
            generate(t.problem, [args.pool], seed=1 + i, paired=True, cache_dir=cache)
    total_w, total_c = 0.0, 0.0
    for name in SYSTEMS:
        source, targets = default_targets(name)
        study, wall, cpu = _timed(lambda: predict_scaling(source, targets, n_source_pool=args.pool,
                                                          n_target_pool=args.pool, n_pre=args.pool // 2,
                                                          cache_dir=cache))
        total_w, total_c = total_w + wall, total_c + cpu
        result["study"][name] = {"wall_s": wall, "cpu_s": cpu, **study.seconds,
                                 "n_down": len(study.curves[0].n_down), "shifts": len(study.curves)}
    result["study_total_wall_s"], result["study_total_cpu_s"] = total_w, total_c
    result["load_average_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
