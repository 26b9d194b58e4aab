"""``ntk-mlft validate``: train finite-width networks with MLFT per allocation and compare the
measured test error with the NTK predictions (see :mod:`ntk_mlft.studies.trained_networks`).

Writes ``validation.json``, ``validation.md`` (table), ``measured.csv`` (the widest networks'
measured errors per allocation and budget, columns ``allocation,budget,error,stderr``: the
``--measured`` file of ``ntk-mlft curves``) and two figures into ``--out`` (default
``results/validate-<problem>``). Every trained network is checkpointed in ``OUT/checkpoints``
and the data cached in ``OUT/cache`` by default, so an interrupted run, rerun with the same
options, resumes (``--no-checkpoint``: train everything again). Figures: measured vs NTK/predicted
error per allocation and width
(:func:`ntk_mlft.reports.plotting.plot_measured_vs_predicted`), and measured error vs budget over the
predicted curve (:func:`ntk_mlft.reports.plotting.plot_measured_error_vs_budget`). The error model is the
estimator of :func:`ntk_mlft.studies.error_model.build_error_model` on ``--pilot-size`` paired pilot
solves and ``--n-unlabeled`` unlabeled inputs (the options of :mod:`ntk_mlft.cli._model_args`, as
``allocate --problem``; ``--ridge`` defaults to 0.1 here, the training's proximal ridge) unless
``--power-law`` supplies one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ntk_mlft._io import strict_json

HELP = "train finite-width nets with MLFT per allocation; compare measured error with NTK predictions"
OUT_KIND = "folder"  # --out is checked before any work (cli._errors.check_out_path)
VALIDATE_RIDGE = 0.1
"""--ridge default here: the same λ is the proximal ridge of the finite-width training, which needs
0.1 x the mean NTK diagonal to converge within the step limit (the estimator commands use
cli._model_args.DEFAULT_RIDGE)."""


def _csv(kind, name):
    def parse(text: str):
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{name} must be a comma-separated list of {kind.__name__}s; "
                                             f"got {text!r}") from err
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.allocation import RULES
    from ntk_mlft.cli._arg_types import non_negative_float, non_negative_int, positive_int
    from ntk_mlft.cli._model_args import add_estimator_arguments
    from ntk_mlft.cli._problem_args import add_problem_arguments

    add_problem_arguments(parser)
    add_estimator_arguments(parser)
    parser.set_defaults(ridge=VALIDATE_RIDGE)
    parser.add_argument("--budget", type=_csv(float, "--budget"), default=None,
                        help="budget(s) in seconds of solver time, comma-separated "
                             "(default: 8 finest-level samples' worth)")
    parser.add_argument("--allocations", type=_csv(str, "--allocations"), default=list(RULES),
                        help=f"comma-separated subset of {','.join(RULES)} (ntk_mlft.allocation.RULES)")
    parser.add_argument("--widths", type=_csv(int, "--widths"), default=[128, 512, 2048],
                        help="hidden widths to train, comma-separated")
    parser.add_argument("--seeds", type=positive_int, default=2, help="number of seeds (data draw + init) per setting")
    parser.add_argument("--optimizer", default="curveball", help="gd, sgd, adam or curveball")
    parser.add_argument("--max-steps", type=non_negative_int, default=600,
                        help="step limit per level, exact (CurveBall converges in ~150-300 steps at N ~ 200-400)")
    parser.add_argument("--rtol", type=non_negative_float, default=1e-4,
                        help="stop a level when 20 steps lower the objective by less than this, relative")
    parser.add_argument("--n-test", type=positive_int, default=200, help="held-out finest-level test samples")
    parser.add_argument("--costs", default=None, help="cost table CSV (default: measure costs now)")
    parser.add_argument("--power-law", nargs="+", default=None, metavar="KEY=VALUES",
                        help="user-supplied error model instead of the estimator, e.g. "
                             "--power-law coef=1,0.3,0.05 exponent=1,1,1")
    parser.add_argument("--cache-dir", default=None,
                        help="dataset cache folder (problems.generate; default: OUT/cache)")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="folder of the per-network checkpoint: a rerun with the same settings skips "
                             "the networks already trained (default: OUT/checkpoints)")
    parser.add_argument("--no-checkpoint", action="store_true",
                        help="train every network again (no checkpoint is read or written)")


def measured_points(result):
    """The widest networks' measured errors (mean and standard error over seeds) per allocation
    and budget, as :class:`ntk_mlft.reports.curves.MeasuredPoints`: what ``ntk-mlft curves
    --measured OUT/measured.csv`` overlays on the predicted curves."""
    import numpy as np

    from ntk_mlft.reports.curves import MeasuredPoints

    rows = [d for d in result.summary() if d["width"] == max(result.widths)]
    return MeasuredPoints(allocation=tuple(d["allocation"] for d in rows),
                          budget=np.array([d["budget"] for d in rows], dtype=float),
                          error=np.array([d["measured_mean"] for d in rows], dtype=float),
                          stderr=np.array([d["measured_se"] for d in rows], dtype=float))


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ntk_mlft._checks import check_choice, check_memory, check_positive_int
    from ntk_mlft._io import write_json_atomic, write_text_atomic
    from ntk_mlft.allocation.costs import CostTable
    from ntk_mlft.architectures import available_architectures
    from ntk_mlft.cli._errors import check_out_path
    from ntk_mlft.cli._model_args import check_budgets, parse_power_law
    from ntk_mlft.cli._problem_args import problem_from_args
    from ntk_mlft.problems import measure_costs
    from ntk_mlft.reports.plotting import plot_measured_error_vs_budget, plot_measured_vs_predicted, save_figure
    from ntk_mlft.studies.trained_networks import ALLOCATIONS, validate
    from ntk_mlft.training import OPTIMIZERS

    problem = problem_from_args(args)
    out = Path(args.out or f"results/validate-{problem.name}")
    seeds = args.seeds
    for a in args.allocations:  # checked before costs are measured and networks trained
        check_choice("--allocations", a, ALLOCATIONS)
    for w in args.widths:
        check_positive_int("--widths", w)
    if not args.widths or not args.allocations:
        raise ValueError("--widths and --allocations need at least one value each")
    check_memory(f"training a width-{max(args.widths)} network", 4 * 3 * 8.0 * max(args.widths) ** 2,
                 "use smaller --widths")
    pool = args.pilot_size + args.n_unlabeled
    check_memory(f"the estimator's {pool} x {pool} pool kernel", 3 * 8.0 * pool * pool,
                 "lower --pilot-size or --n-unlabeled")
    row = int(np.prod(problem.input_shape)) + int(np.prod(problem.output_shape))
    check_memory(f"{args.n_test} test samples", 8.0 * row * args.n_test, "lower --n-test")
    for option, folder in (("--cache-dir", args.cache_dir), ("--checkpoint-dir", args.checkpoint_dir)):
        if folder is not None:
            check_out_path(folder, "folder", option)
    check_choice("--arch", args.arch, available_architectures())
    check_choice("--optimizer", args.optimizer, OPTIMIZERS)
    if args.power_law:
        parse_power_law(args.power_law)  # its syntax, before costs are measured; its levels below
    costs = CostTable.from_csv(args.costs) if args.costs else measure_costs(problem, seed=args.seed)
    budgets = args.budget or [8 * float(costs.cost_seconds[-1])]
    check_budgets(budgets, costs, 1, "--budget")  # before any network is trained
    model = parse_power_law(args.power_law, costs.n_levels) if args.power_law else None
    result = validate(problem, architecture=args.arch, budgets=budgets, allocations=args.allocations,
                      widths=args.widths, seeds=range(seeds), n_test=args.n_test,
                      optimizer=args.optimizer, max_steps=args.max_steps, rtol=args.rtol,
                      ridge=args.ridge, costs=costs, error_model=model, n_pilot=args.pilot_size,
                      n_unlabeled=args.n_unlabeled,
                      seed=args.seed, cache_dir=args.cache_dir or out / "cache",
                      checkpoint_dir=None if args.no_checkpoint else (args.checkpoint_dir or out / "checkpoints"))
    write_json_atomic(out / "validation.json", result.to_dict())
    write_text_atomic(out / "validation.md", result.table() + "\n")
    measured = measured_points(result).to_csv(out / "measured.csv")
    figs = [*save_figure(plot_measured_vs_predicted(result), out / "measured_vs_predicted"),
            *save_figure(plot_measured_error_vs_budget(result), out / "error_vs_budget")]
    if args.json:
        print(strict_json({"out": str(out), "summary": result.summary(), "gains": result.gains(),
                          "gaps": result.gaps(), "error_model": result.error_model,
                          "measured_csv": str(measured), "figures": [str(f) for f in figs]}))
    elif not args.quiet:
        print(result.table())
        for g in result.gains():
            if "measured_single_over_optimal" in g:
                print(f"budget {g['budget']:.3g} s, width {g['width']}: single/optimal error ratio measured "
                      f"{g['measured_single_over_optimal']:.3g}, NTK {g['ntk_single_over_optimal']:.3g}, "
                      f"predicted {g['predicted_single_over_optimal']:.3g}")
        print(f"wrote {out}")
    return 0
