"""Problem registry: ``get_problem(name, levels=None, **params)`` and ``available_problems()``."""

from __future__ import annotations

import dataclasses
from typing import Any

from ntk_mlft.problems._base import Problem
from ntk_mlft.problems.burgers import BurgersShock
from ntk_mlft.problems.darcy import Darcy2D
from ntk_mlft.problems.elliptic import EllipticRough
from ntk_mlft.problems.helmholtz import HelmholtzOscillatory
from ntk_mlft.problems.periodic_systems import AdvDiffPeriodic, HelmholtzPeriodic, PoissonAniso, TransferMixture
from ntk_mlft.problems.schrodinger import SchrodingerGroundState

__all__ = ["DEFAULT_PROBLEM", "available_problems", "get_problem", "problem_from_params"]

DEFAULT_PROBLEM = "elliptic-rough"

_PROBLEMS: dict[str, type[Problem]] = {
    cls.name: cls for cls in (EllipticRough, SchrodingerGroundState, BurgersShock,
                              HelmholtzOscillatory, Darcy2D, PoissonAniso, AdvDiffPeriodic,
                              HelmholtzPeriodic, TransferMixture)
}


def available_problems() -> tuple[str, ...]:
    """Names accepted by :func:`get_problem`."""
    return tuple(_PROBLEMS)


def get_problem(name: str, levels: int | None = None, **params: Any) -> Problem:
    """Build the problem ``name`` with ``levels`` levels (its default if None) and parameters.

    Unknown names and unknown parameters raise a ValueError/TypeError listing what is allowed.
    """
    if name not in _PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; available problems: {', '.join(_PROBLEMS)}")
    cls = _PROBLEMS[name]
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(f"unknown parameter(s) {unknown} for problem {name!r}; allowed: {allowed}")
    if levels is not None:
        params["levels"] = levels
    return cls(**params)


def problem_from_params(params: dict[str, Any]) -> Problem:
    """Rebuild a problem from its ``.params`` dict (as stored in dataset provenance)."""
    params = dict(params)
    return get_problem(params.pop("name"), **params)
