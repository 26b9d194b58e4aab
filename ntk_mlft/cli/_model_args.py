"""The error-model options of ``allocate``, ``curves``, ``demo`` and ``validate``, defined once with
one default per concept, and the one place that turns them into an error model and a cost table.

Contract: :func:`add_estimator_arguments` adds ``--arch``, ``--ridge``, ``--pilot-size`` and
``--n-unlabeled`` (values checked while the command line is parsed); :func:`add_model_arguments`
adds those plus the model source (``--power-law`` | ``--pilot`` | ``--problem``), ``--costs``
and ``--levels``. :func:`model_and_costs` returns a frozen :class:`ModelChoice`; every estimator
it builds comes from :func:`ntk_mlft.studies.error_model.build_error_model`
(``docs/theory.md`` section 6).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft.cli._arg_types import non_negative_float, non_negative_int, positive_int

__all__ = ["DEFAULT_ARCH", "DEFAULT_N_UNLABELED", "DEFAULT_PILOT_SIZE", "DEFAULT_RIDGE", "ModelChoice",
           "add_estimator_arguments", "add_model_arguments", "cap_per_level", "check_budgets",
           "model_and_costs", "parse_power_law", "problem_error_model"]

DEFAULT_ARCH = "mlp-relu-3"
DEFAULT_RIDGE = 1e-4
"""Ridge relative to the mean kernel diagonal (``ntk-mlft validate`` trains finite-width networks
with the same ridge and sets its own default, 0.1, for their convergence within the step limit)."""
DEFAULT_PILOT_SIZE = 150
DEFAULT_N_UNLABELED = 3000


def add_estimator_arguments(parser: Any) -> None:
    """``--arch``, ``--ridge``, ``--pilot-size`` (alias ``--n-pilot``), ``--n-unlabeled`` on
    ``parser`` (a parser or an argument group)."""
    parser.add_argument("--arch", default=DEFAULT_ARCH,
                        help="architecture whose NTK defines the estimator (ntk_mlft.architectures)")
    parser.add_argument("--ridge", type=non_negative_float, default=DEFAULT_RIDGE,
                        help="ridge per level, relative to the mean kernel diagonal")
    parser.add_argument("--pilot-size", "--n-pilot", dest="pilot_size", type=positive_int,
                        default=DEFAULT_PILOT_SIZE,
                        help="paired pilot solves (every level, same inputs) with a problem")
    parser.add_argument("--n-unlabeled", type=non_negative_int, default=DEFAULT_N_UNLABELED,
                        help="cheap unlabeled inputs (no solves) for the kernel spectrum with a problem; "
                             "0: the spectral estimator on the pilot inputs alone (pool and cap much smaller). "
                             "Counts per level are capped at MAX_COVERAGE of the pool (studies.error_model)")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``allocate`` and ``curves``: costs, the model source and the estimator options."""
    from ntk_mlft.problems import DEFAULT_PROBLEM

    parser.add_argument("--costs", default=None, help="cost table CSV (level,grid,cost_seconds); "
                        "required with --power-law/--pilot, measured from the problem when omitted")
    src = parser.add_argument_group("error model (at most one; default: --problem "
                                    f"{DEFAULT_PROBLEM} with as many levels as the cost table)")
    one = src.add_mutually_exclusive_group()
    one.add_argument("--power-law", nargs="+", default=None, metavar="KEY=VALUES",
                     help="separable model E = floor + sum_l coef_l N_l^-exponent_l, e.g. "
                          "--power-law coef=1,0.3,0.05 exponent=1,1,1 floor=0.001")
    one.add_argument("--pilot", default=None, help="pilot .npz: x, y_level1..y_levelL on the same inputs, "
                     "optional x_unlabeled (cheap inputs for the kernel spectrum)")
    one.add_argument("--problem", default=None,
                     help=f"built-in problem: generate a paired pilot study (default {DEFAULT_PROBLEM} "
                          "when no model option is given)")
    add_estimator_arguments(src)
    src.add_argument("--levels", type=positive_int, default=None,
                     help="number of levels of the problem (default: the cost table's rows, else the problem's)")


def parse_power_law(items: list[str], n_levels: int | None = None):
    """``["coef=1,0.3", "exponent=1,1", "floor=0.01"]`` → PowerLawErrorModel; each key once,
    ``floor`` a single number, ``n_levels`` entries per key when given (the cost table's levels)."""
    from ntk_mlft.estimators.base import PowerLawErrorModel

    usage = "--power-law takes coef=V1,V2,.. exponent=P1,P2,.. [floor=F], each key once"
    fields: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in ("coef", "exponent", "floor"):
            raise ValueError(f"{usage}; got {item!r}")
        if key in fields:
            raise ValueError(f"{usage}; {key}= is given twice")
        try:
            vals = [float(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(f"--power-law {key} must be comma-separated numbers; got {value!r}") from None
        if key == "floor" and len(vals) != 1:
            raise ValueError(f"--power-law floor is one number (the error no allocation goes below); got {value!r}")
        fields[key] = vals[0] if key == "floor" else np.array(vals)
    if "coef" not in fields or "exponent" not in fields:
        raise ValueError("--power-law needs both coef=... and exponent=...")
    if n_levels is not None and not len(fields["coef"]) == len(fields["exponent"]) == n_levels:
        raise ValueError(f"--power-law coef and exponent need one entry per level of the cost table ({n_levels} "
                         f"levels); got {len(fields['coef'])} and {len(fields['exponent'])}")
    try:
        return PowerLawErrorModel(**fields)
    except ValueError as err:
        raise ValueError(f"--power-law {err}") from None


def check_budgets(budgets: Any, costs: Any, min_samples: int, option: str) -> None:
    """ValueError unless every budget buys ``min_samples`` finest-level samples (the cheapest
    admissible allocation); run right after the cost table is known, before any model is built."""
    from ntk_mlft.allocation import minimum_budget

    need = minimum_budget(costs, min_samples)
    low = float(np.min(budgets))
    if not np.all(np.isfinite(budgets)) or low <= 0:
        raise ValueError(f"{option} must be finite and > 0 seconds; got {np.asarray(budgets).tolist()}")
    from ntk_mlft.allocation.optimize import MAX_COUNT

    high = float(np.max(budgets))
    if high / costs.cost_seconds[-1] > MAX_COUNT:
        raise ValueError(f"{option}: {high:.6g} s buys {high / costs.cost_seconds[-1]:.3g} finest-level samples "
                         f"({costs.cost_seconds[-1]:.6g} s each), more than the largest count supported "
                         f"({MAX_COUNT:.0e} per level); give budgets in the cost table's unit (seconds)")
    if low < need * (1 - 1e-12):
        raise ValueError(f"{option}: {low:.6g} s is below the cheapest admissible allocation ({min_samples} "
                         f"finest-level sample(s) at {costs.cost_seconds[-1]:.6g} s each; cost table "
                         f"{', '.join(f'{c:.3g}' for c in costs.cost_seconds)} s per sample): the minimum budget "
                         f"needed is {need:.6g} s" + (" (or give --budget-samples: finest samples' worth)"
                                                            if option == "--budgets" else ""))


@dataclass(frozen=True)
class ModelChoice:
    """The error model the options chose, its cost table and labels.

    ``setup`` is the :class:`~ntk_mlft.studies.error_model.ErrorModelSetup` on estimator paths,
    ``None`` for a user model (``--power-law``); ``problem``, ``kernel``, ``source`` label reports."""

    model: Any
    costs: Any
    problem: str
    kernel: str
    source: str
    setup: Any = None

    @property
    def pool(self) -> int | None:
        return None if self.setup is None else self.setup.pool_size

    @property
    def cap(self) -> int | None:
        """The estimator's per-level cap (``sample_cap`` of its pool); None for a user model."""
        return None if self.setup is None else self.setup.max_samples

    def labels(self) -> dict[str, Any]:
        """JSON-able labels: problem, kernel, model source, and pool / cap on estimator paths."""
        out = {"problem": self.problem, "kernel": self.kernel, "model_source": self.source}
        if self.setup is not None:
            out.update(pool=self.pool, cap_per_level=self.cap, ridge_relative=self.setup.ridge_relative,
                       ridge_absolute=self.setup.ridge_absolute)
        return out


def cap_per_level(args: argparse.Namespace, choice: ModelChoice) -> int | None:
    """``--max-samples``, or the estimator path's cap (:attr:`ModelChoice.cap`)."""
    if getattr(args, "max_samples", None) is not None:
        return args.max_samples
    return choice.cap


def problem_error_model(problem: Any, args: argparse.Namespace, *, n_boot: int = 30, cache_dir: Any = None):
    """:func:`~ntk_mlft.studies.error_model.build_error_model` on the pilot of a built-in problem:
    ``--pilot-size`` paired solves plus ``--n-unlabeled`` unlabeled inputs, seed ``--seed``."""
    from ntk_mlft.studies.error_model import build_error_model, pilot_from_problem

    pilot = pilot_from_problem(problem, args.pilot_size, seed=args.seed, cache_dir=cache_dir,
                               n_unlabeled=args.n_unlabeled)
    return build_error_model(pilot, args.arch, args.ridge, seed=args.seed, n_boot=n_boot)


def model_and_costs(args: argparse.Namespace, on_costs: Callable[[Any], None] | None = None) -> ModelChoice:
    """The error model and cost table from the options of :func:`add_model_arguments` (default
    model: the built-in default problem with as many levels as the cost table).

    ``on_costs(costs)`` runs as soon as the cost table is read or measured, before the pilot and
    the estimator (minutes of work): budget checks that need the costs fail fast there."""
    from ntk_mlft._checks import check_choice
    from ntk_mlft.allocation.costs import CostTable
    from ntk_mlft.architectures import available_architectures

    if not args.power_law:  # before any pilot solve
        check_choice("--arch", args.arch, available_architectures())
    costs = CostTable.from_csv(args.costs) if args.costs else None
    if costs is not None and on_costs is not None:
        on_costs(costs)
    if args.power_law:
        if costs is None:
            raise ValueError("--power-law needs --costs (a cost table CSV)")
        return ModelChoice(parse_power_law(args.power_law, costs.n_levels), costs, "user model", "power law",
                           "--power-law")
    if args.pilot:
        from ntk_mlft.estimators.pilot import load_pilot
        from ntk_mlft.studies.error_model import MIN_PILOT, build_error_model

        if costs is None:
            raise ValueError("--pilot needs --costs (a cost table CSV)")
        pilot = load_pilot(args.pilot)
        if len(pilot.x) < MIN_PILOT:
            raise ValueError(f"pilot file {args.pilot}: the pilot has {len(pilot.x)} inputs; the error model needs at "
                             f"least {MIN_PILOT} paired inputs (50-300 recommended: its per-level cap and bootstrap "
                             "come from them)")
        if pilot.n_levels != costs.n_levels:
            raise ValueError(f"pilot file {args.pilot} has {pilot.n_levels} levels (y_level1..y_level{pilot.n_levels}) "
                             f"but the cost table {args.costs} has {costs.n_levels}; give one cost row per pilot level")
        setup = build_error_model(pilot, args.arch, args.ridge, seed=args.seed)
        return ModelChoice(setup.model, costs, str(args.pilot), args.arch, f"--pilot {args.pilot}", setup)
    return _problem_model(args, costs, on_costs)


def _problem_model(args: argparse.Namespace, costs: Any, on_costs: Callable[[Any], None] | None) -> ModelChoice:
    """``--problem`` (or the default problem): estimator from a paired pilot (+ unlabeled inputs);
    costs measured if absent."""
    from ntk_mlft.problems import DEFAULT_PROBLEM, get_problem, measure_costs

    name = args.problem or DEFAULT_PROBLEM
    levels = args.levels if args.levels is not None else (None if costs is None else costs.n_levels)
    problem = get_problem(name, levels=levels)
    if costs is None:
        costs = measure_costs(problem, seed=args.seed)
        if on_costs is not None:
            on_costs(costs)
    elif costs.n_levels != problem.n_levels:
        raise ValueError(f"the cost table has {costs.n_levels} levels but --levels {problem.n_levels} was given; "
                         "drop --levels or give a table with one row per level")
    grids = [int(problem.grid(l)) for l in range(1, problem.n_levels + 1)]
    source = (f"--problem {name}" if args.problem else
              f"default problem {name} (no --power-law/--pilot/--problem given)")
    if [int(g) for g in costs.grid] != grids:
        source += f"; its grids {grids} differ from the cost table's {[int(g) for g in costs.grid]}"
    setup = problem_error_model(problem, args)
    if setup.n_unlabeled:
        source += f"; {setup.n_pilot} paired pilot solves + {setup.n_unlabeled} unlabeled inputs"
    return ModelChoice(setup.model, costs, problem.name, args.arch, source, setup)
