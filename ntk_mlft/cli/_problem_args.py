"""Helpers shared by the ``generate`` and ``costs`` commands: problem options and parameter parsing."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft.cli._arg_types import positive_int
from ntk_mlft.problems.registry import DEFAULT_PROBLEM, available_problems, get_problem, problem_class

__all__ = ["add_problem_arguments", "problem_from_args", "write_pilot"]


def add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problem", default=DEFAULT_PROBLEM,
                        help=f"problem name, one of: {', '.join(available_problems())}")
    parser.add_argument("--levels", type=positive_int, default=None,
                        help="number of levels L (problem default if omitted)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="problem parameter, e.g. --param n_coarse=16 (repeatable)")


def _parse_param(problem: str, text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(problem_class(problem))}
    if not sep or key.strip() not in fields:
        raise ValueError(f"--param must be KEY=VALUE with KEY one of {sorted(fields)} for {problem!r}; got {text!r}")
    key = key.strip()
    kind = int if fields[key].type in ("int", int) else float
    try:
        if "tuple" in str(fields[key].type):     # a range such as --param range=1,5
            return key, tuple(float(v) for v in value.split(","))
        return key, kind(value)
    except ValueError as err:
        raise ValueError(f"--param {key} must be a{'n integer' if kind is int else ' number'} (a range: LO,HI); "
                         f"got {value!r}") from err


def problem_from_args(args: argparse.Namespace):
    params = dict(_parse_param(args.problem, p) for p in args.param)
    return get_problem(args.problem, levels=args.levels, **params)


def write_pilot(path: str | Path, x: np.ndarray, ys: list[np.ndarray],
                x_unlabeled: np.ndarray | None = None) -> Path:
    """Pilot file (README "Bring your own solver"): ``x``, ``y_level1..y_levelL`` on the same
    inputs and, when given, ``x_unlabeled`` (:func:`ntk_mlft.estimators.pilot.save_pilot`)."""
    from ntk_mlft.estimators.pilot import save_pilot

    return save_pilot(path, x, ys, x_unlabeled)
