"""``ntk-mlft costs``: measure seconds per sample at each level and write a cost table CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from ntk_mlft._io import strict_json

HELP = "measure per-sample solver cost at each level of a problem; write level,grid,cost_seconds CSV"
OUT_KIND = "file"  # --out is checked before any work (cli._errors.check_out_path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.cli._arg_types import positive_float, positive_int
    from ntk_mlft.cli._problem_args import add_problem_arguments

    add_problem_arguments(parser)
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="timed repeats per level, interleaved across levels (the minimum is kept)")
    parser.add_argument("--samples", type=positive_int, default=32,
                        help="batch size: samples per solve call (default: generate's chunk size)")
    parser.add_argument("--max-batch-time", type=positive_float, default=1.0,
                        help="seconds: levels slower than this per batch are timed on fewer samples")


def run(args: argparse.Namespace) -> int:
    from ntk_mlft.cli._problem_args import problem_from_args
    from ntk_mlft.problems import measure_costs

    problem = problem_from_args(args)
    table = measure_costs(problem, repeats=args.repeats, n_samples=args.samples, seed=args.seed,
                          max_batch_time=args.max_batch_time)
    out = Path(args.out or f"results/costs-{problem.name}.csv")
    table.to_csv(out)
    if args.json:
        print(strict_json({"problem": problem.name, "out": str(out), "level": table.level.tolist(),
                          "grid": table.grid.tolist(), "cost_seconds": table.cost_seconds.tolist()}))
    elif not args.quiet:
        for lv, g, c in zip(table.level, table.grid, table.cost_seconds):
            print(f"level {lv}: grid {g}, {c * 1e3:.3f} ms per sample")
        print(f"wrote {out}")
    return 0
