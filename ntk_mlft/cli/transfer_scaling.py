"""``ntk-mlft transfer scaling``: predicted downstream samples saved by fine-tuning, before training.

For each periodic system (``--system``, default all three) the source distribution is its
``--source-range`` and the targets its in-distribution range plus three shifts of growing size
(``ntk_mlft.transfer.study.DEFAULT_SHIFTS``, or ``--target-ranges``). Solved pools of
``--n-source-pool`` / ``--n-target-pool`` samples (cached in ``--cache``) give the analytic NTK of
``--architecture`` on ``--size``^2 network inputs, and the two-level closed form predicts the
relative MSE after fine-tuning a network pre-trained on ``--n-pre`` source samples, and from
scratch, at every downstream N of ``--n-down``; the scratch N that matches fine-tuning gives the
samples saved, and the factor at ``--target-error`` (default: scratch error at N_max / 10).
``--mixed`` adds mixed pre-training (source = the ``transfer-mixture`` of the three systems).
``--n-pre-grid`` with ``--budgets`` also answers how much pre-training data to buy:
``optimize_allocation`` over (N_pre, N) with ``--costs SOURCE,TARGET`` seconds per sample.

Writes ``--out`` (default ``results/transfer_scaling``): ``transfer_scaling.json`` and figures
(PNG + PDF) ``scaling_<source>``, ``samples_saved`` and, with budgets, ``plan_<source>``.
N_pre and N may not exceed the pools (error naming the pool); the prediction's documented range
is N <= n_target_pool / 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

HELP = "predicted fine-tune vs scratch error curves per shift, samples saved, pre-training allocation"

SYSTEMS = ("poisson-aniso-2d", "advdiff-2d", "helmholtz-2d")


def _ints(text: str, name: str) -> list[int]:
    """'a,b,c' or 'START:STOP:NUM' (log-spaced, rounded, unique) -> ints."""
    try:
        if ":" in text:
            start, stop, num = text.split(":")
            return sorted({int(round(v)) for v in np.geomspace(float(start), float(stop), int(num))})
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise ValueError(f"{name} must be integers 'a,b,c' or 'START:STOP:NUM'; got {text!r}") from err


def _floats(text: str, name: str, count: int | None = None) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise ValueError(f"{name} must be comma-separated numbers; got {text!r}") from err
    if count is not None and len(vals) != count:
        raise ValueError(f"{name} must have {count} numbers; got {text!r}")
    return vals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.cli._arg_types import non_negative_float, positive_float, positive_int

    parser.add_argument("--system", default="all", choices=(*SYSTEMS, "all"), help="periodic system(s)")
    parser.add_argument("--source-range", default=None, metavar="LO,HI",
                        help="source range of the one --system (default: DEFAULT_SHIFTS)")
    parser.add_argument("--target-ranges", default=None, metavar="LO,HI;LO,HI;...",
                        help="target ranges of the one --system, in-distribution first")
    parser.add_argument("--mixed", action="store_true", help="also pre-train on the mixture of the three systems")
    parser.add_argument("--n-source-pool", type=positive_int, default=2000, help="solved source samples (kernel pool)")
    parser.add_argument("--n-target-pool", type=positive_int, default=2000,
                        help="solved samples per target (kernel pool)")
    parser.add_argument("--n-pre", type=positive_int, default=1000, help="pre-training (source) samples N_pre")
    parser.add_argument("--n-down", default=None, metavar="START:STOP:NUM",
                        help="downstream counts (default 10:n_target_pool/2:20)")
    parser.add_argument("--n-pre-grid", default=None, metavar="A,B,C",
                        help="N_pre values for the (N_pre, N) error model of the allocation")
    parser.add_argument("--budgets", default=None, metavar="B1,B2,...", help="budgets (s) for the allocation")
    parser.add_argument("--costs", default="1,10", metavar="SOURCE,TARGET",
                        help="seconds per source and per target sample (source must be cheaper)")
    parser.add_argument("--target-error", type=positive_float, default=None, help="error at which the factor is read")
    parser.add_argument("--size", type=positive_int, default=16, help="network input / output grid (per side)")
    parser.add_argument("--grid", type=int, default=64, choices=(64, 128), help="solver grid (per side)")
    parser.add_argument("--arch", "--architecture", dest="architecture", default="mlp-relu-3",
                        help="architecture whose NTK is used (--architecture: the old name)")
    parser.add_argument("--ridge", type=non_negative_float, default=0.1,
                        help="ridge, relative to the mean NTK diagonal")
    parser.add_argument("--cache", default=None, help="folder for cached solved samples")


def _studies(args: argparse.Namespace) -> list[Any]:
    from ntk_mlft.problems import get_problem
    from ntk_mlft.transfer.study import TargetSpec, default_targets, predict_scaling, shift_size

    grid = dict(n_coarse=args.grid, n_input=args.grid, n_output=args.grid)
    systems = SYSTEMS if args.system == "all" else (args.system,)
    if (args.source_range or args.target_ranges) and len(systems) != 1:
        raise ValueError("--source-range / --target-ranges need one --system (not 'all')")
    n_down = _ints(args.n_down, "--n-down") if args.n_down else None
    n_pre_grid = _ints(args.n_pre_grid, "--n-pre-grid") if args.n_pre_grid else ()
    settings = dict(n_source_pool=args.n_source_pool, n_target_pool=args.n_target_pool, n_pre=args.n_pre,
                    n_down=n_down, size=args.size, architecture=args.architecture, ridge=args.ridge,
                    seed=args.seed, cache_dir=args.cache, target_error=args.target_error, n_pre_grid=n_pre_grid)
    studies, ladders = [], []
    for system in systems:
        source, targets = default_targets(system, **grid)
        if args.source_range or args.target_ranges:
            src = tuple(_floats(args.source_range, "--source-range", 2)) if args.source_range else source.range
            tgts = [tuple(_floats(t, "--target-ranges", 2)) for t in args.target_ranges.split(";")] \
                if args.target_ranges else [t.problem.range for t in targets]
            source = get_problem(system, range=src, **grid)
            targets = tuple(TargetSpec(f"{system} range {t[0]:g}-{t[1]:g}", get_problem(system, range=t, **grid),
                                       shift_size(src, t)) for t in tgts)
        ladders.append(targets)
        studies.append(predict_scaling(source, targets, **settings))
    if args.mixed:
        mixture = get_problem("transfer-mixture", **grid)
        for targets in ladders:
            studies.append(predict_scaling(mixture, targets, **settings))
    return studies


def run(args: argparse.Namespace) -> int:
    from ntk_mlft._io import write_json_atomic
    from ntk_mlft.allocation.costs import as_cost_array
    from ntk_mlft.reports.plotting import save_figure
    from ntk_mlft.reports.transfer import plot_pretraining_plan, plot_samples_saved, plot_scaling
    from ntk_mlft.transfer.scaling import pretraining_plan

    costs = as_cost_array(_floats(args.costs, "--costs", 2), 2)
    budgets = _floats(args.budgets, "--budgets") if args.budgets else None
    if budgets is not None and not args.n_pre_grid:
        raise ValueError("--budgets needs --n-pre-grid (the N_pre values of the error model)")
    studies = _studies(args)
    out = Path(args.out or "results/transfer_scaling")
    files: list[Path] = []
    report: dict[str, Any] = {"studies": [s.to_dict() for s in studies], "plans": []}
    for i, study in enumerate(studies):
        stem = f"scaling_{i:02d}_{study.source.split(' ')[0]}"
        files += save_figure(plot_scaling(study), out / stem)
        if budgets is not None:
            plan = pretraining_plan(study.error_model(len(study.curves) - 1), costs, budgets)
            report["plans"].append({"source": study.source, "target": study.curves[-1].label, **plan.to_dict()})
            files += save_figure(plot_pretraining_plan(plan, title=f"{study.source} -> {study.curves[-1].label}"),
                                 out / f"plan_{i:02d}")
    files += save_figure(plot_samples_saved(studies), out / "samples_saved")
    report["files"] = [str(f) for f in files] + [str(out / "transfer_scaling.json")]
    write_json_atomic(out / "transfer_scaling.json", report)
    if args.json:
        print(json.dumps(report, allow_nan=False))
    elif not args.quiet:
        for study in studies:
            for c in study.curves:
                f = "n/a" if not np.isfinite(c.factor_at_target) else f"{c.factor_at_target:.3g}"
                print(f"{study.source} -> {c.label}: fine-tune {c.finetune[0]:.3g} vs scratch {c.scratch[0]:.3g} "
                      f"at N={c.n_down[0]}; factor {f} at error {c.target_error:.3g}")
        print(f"wrote {len(files) + 1} files to {out}")
    return 0
