"""``ntk-mlft generate``: multi-level training data (and, with --paired, a pilot file) for a problem.

``--paired`` means what ``generate(..., paired=True)`` means: one input stream for all levels, level
l taking its first counts[l] inputs, so unequal counts are nested prefixes; the pilot file holds
the min(counts) inputs that have labels on every level, plus ``--n-unlabeled`` cheap unlabeled
inputs (``x_unlabeled``, the stream ``allocate --problem`` uses), so ``allocate --pilot
DIR/pilot.npz`` builds the same practical estimator as ``allocate --problem``.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._io import save_npz_atomic, strict_json, write_json_atomic

HELP = "generate multi-level data (inputs, labels per level) for a PDE problem, cached and resumable"
OUT_KIND = "folder"  # --out is checked before any work (cli._errors.check_out_path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.cli._arg_types import non_negative_int, positive_int
    from ntk_mlft.cli._problem_args import add_problem_arguments

    add_problem_arguments(parser)
    parser.add_argument("--counts", required=True,
                        help="samples per level, coarsest first, comma-separated (e.g. 400,100,25); "
                             "without --levels, the number of entries sets L")
    parser.add_argument("--paired", action="store_true",
                        help="inputs from one stream for all levels: level l gets the first counts[l] of "
                             "them (equal counts: the same inputs everywhere; unequal: nested prefixes); "
                             "also writes DIR/pilot.npz with the min(counts) inputs common to every level")
    parser.add_argument("--n-unlabeled", type=non_negative_int, default=3000,
                        help="with --paired: cheap unlabeled inputs (no solves) written to pilot.npz as "
                             "x_unlabeled, the pool that pins down the kernel's spectrum (allocate --pilot "
                             "caps counts at 20%% of pilot + unlabeled inputs); 0: none")
    parser.add_argument("--workers", type=positive_int, default=None, help="local worker processes (default: serial)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                         help="solve the chunks on the Dask cluster of this scheduler (needs "
                              "ntk_mlft[distributed]; workers started with --nthreads 1)")
    cluster.add_argument("--dask-local", type=positive_int, default=None, metavar="N",
                         help="solve the chunks on a local Dask cluster of N worker processes")
    parser.add_argument("--chunk-size", type=positive_int, default=32, help="samples per cached chunk")
    parser.add_argument("--cache", default=None, help="chunk cache folder (default: DIR/cache)")


def _parse_counts(text: str) -> list[int]:
    try:
        return [int(c) for c in text.split(",")]
    except ValueError as err:
        raise ValueError(f"--counts must be comma-separated integers, coarsest level first; got {text!r}") from err


def _check_cluster_args(args: argparse.Namespace) -> None:
    """--scheduler / --dask-local checked before any work (and before Dask is imported)."""
    if args.scheduler is None and args.dask_local is None:
        return
    if args.workers is not None:
        raise ValueError("--workers is for local processes; with --scheduler or --dask-local the "
                         "cluster's workers solve the chunks: drop --workers")
    if args.scheduler is not None and "://" not in args.scheduler:
        raise ValueError(f"--scheduler must be an address like tcp://HOST:PORT; "
                         f"got {args.scheduler!r}")
    from ntk_mlft.problems.cluster import MISSING_DASK

    try:
        import distributed  # noqa: F401  (the optional extra)
    except ImportError:
        raise ValueError(MISSING_DASK) from None


@contextlib.contextmanager
def _executor(args: argparse.Namespace) -> Iterator[Any]:
    """None (serial or --workers), or a Dask executor for --scheduler / --dask-local."""
    if args.scheduler is None and args.dask_local is None:
        yield None
        return
    from ntk_mlft.problems.cluster import dask_executor

    with dask_executor(scheduler=args.scheduler, local_workers=args.dask_local) as executor:
        yield executor


def run(args: argparse.Namespace) -> int:
    _check_cluster_args(args)
    from ntk_mlft.cli._errors import check_out_path
    from ntk_mlft.cli._problem_args import problem_from_args, write_pilot
    from ntk_mlft.problems import generate
    from ntk_mlft.studies.error_model import unlabeled_inputs

    problem = problem_from_args(args)
    counts = _parse_counts(args.counts)
    if args.levels is None and len(counts) != problem.n_levels:
        problem = problem_from_args(argparse.Namespace(**{**vars(args), "levels": len(counts)}))
    out = Path(args.out or "results/data")
    if args.cache:
        check_out_path(args.cache, "folder", "--cache")
    cache = Path(args.cache) if args.cache else out / "cache"
    with _executor(args) as executor:
        data = generate(problem, counts, seed=args.seed, paired=args.paired, cache_dir=cache,
                        workers=args.workers, chunk_size=args.chunk_size, executor=executor)
    arrays = {}
    for level, (x, y) in enumerate(zip(data.inputs, data.outputs), start=1):
        arrays[f"x_level{level}"] = x
        arrays[f"y_level{level}"] = y
    files = {"dataset": str(save_npz_atomic(out / "dataset.npz", **arrays)),
             "provenance": str(write_json_atomic(out / "provenance.json", data.provenance))}
    if args.paired:  # nested prefixes: the first min(counts) inputs have labels on every level
        common = min(data.counts)
        unlabeled = unlabeled_inputs(problem, args.n_unlabeled, args.seed) if args.n_unlabeled else None
        files["pilot"] = str(write_pilot(out / "pilot.npz", data.inputs[0][:common],
                                         [y[:common] for y in data.outputs], unlabeled))
    summary = {"problem": problem.name, "levels": problem.n_levels, "counts": list(data.counts),
               "pilot_samples": min(data.counts) if args.paired else 0,
               "unlabeled_inputs": args.n_unlabeled if args.paired else 0,
               "grids": data.provenance["grids"], "paired": args.paired, "seed": args.seed, "files": files,
               "input_shape": list(problem.input_shape), "output_shape": list(problem.output_shape)}
    if args.json:
        print(strict_json(summary))
    elif not args.quiet:
        for level, (n, g) in enumerate(zip(data.counts, summary["grids"]), start=1):
            rms = float(np.sqrt(np.mean(data.outputs[level - 1] ** 2)))
            print(f"level {level}: grid {g}, {n} samples, rms(y) = {rms:.4g}")
        for kind, path in files.items():
            print(f"wrote {kind}: {path}")
    return 0
