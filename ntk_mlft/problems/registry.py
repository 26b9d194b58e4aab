"""Problem registry: ``get_problem(name, levels=None, **params)`` and ``available_problems()``."""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ntk_mlft.problems._base import Problem

__all__ = ["DEFAULT_PROBLEM", "available_problems", "get_problem", "problem_class", "problem_from_params"]

DEFAULT_PROBLEM = "elliptic-rough"

# name -> (module, class); imported on first use so that listing the names (``ntk-mlft --help``)
# does not import the solvers and scipy. ``problem_class`` checks that the class's ``name`` agrees.
_PROBLEMS: dict[str, tuple[str, str]] = {
    "elliptic-rough": ("ntk_mlft.problems.elliptic", "EllipticRough"),
    "schrodinger-ground-state": ("ntk_mlft.problems.schrodinger", "SchrodingerGroundState"),
    "burgers-shock": ("ntk_mlft.problems.burgers", "BurgersShock"),
    "helmholtz-oscillatory": ("ntk_mlft.problems.helmholtz", "HelmholtzOscillatory"),
    "darcy-2d": ("ntk_mlft.problems.darcy", "Darcy2D"),
    "poisson-aniso-2d": ("ntk_mlft.problems.periodic_systems", "PoissonAniso"),
    "advdiff-2d": ("ntk_mlft.problems.periodic_systems", "AdvDiffPeriodic"),
    "helmholtz-2d": ("ntk_mlft.problems.periodic_systems", "HelmholtzPeriodic"),
    "transfer-mixture": ("ntk_mlft.problems.periodic_systems", "TransferMixture"),
}


def available_problems() -> tuple[str, ...]:
    """Names accepted by :func:`get_problem`."""
    return tuple(_PROBLEMS)


def problem_class(name: str) -> type:
    """The :class:`~ntk_mlft.problems._base.Problem` subclass registered as ``name``."""
    if name not in _PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; available problems: {', '.join(_PROBLEMS)}")
    module, attr = _PROBLEMS[name]
    cls = getattr(importlib.import_module(module), attr)
    if cls.name != name:
        raise RuntimeError(f"registry entry {name!r} points at {module}.{attr}, whose name is {cls.name!r}")
    return cls


def get_problem(name: str, levels: int | None = None, **params: Any) -> Problem:
    """Build the problem ``name`` with ``levels`` levels (its default if None) and parameters.

    Unknown names and unknown parameters raise a ValueError/TypeError listing what is allowed.
    """
    cls = problem_class(name)
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
