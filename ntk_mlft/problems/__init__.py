"""PDE solution maps with grid hierarchies, measured cost tables and cached multi-level datasets.

>>> from ntk_mlft.problems import get_problem, generate
>>> p = get_problem("elliptic-rough", levels=3)
>>> data = generate(p, [40, 10, 5], seed=0)          # independent draws per level (MLFT training)
>>> pilot = generate(p, [20, 20, 20], seed=1, paired=True)  # same inputs at every level
"""

from __future__ import annotations

import importlib

# public name -> defining module; imported on first use (PEP 562), so that the CLI can list the
# problem names without importing the solvers, scipy and the data pipeline.
_EXPORTS = {
    "DEFAULT_PROBLEM": "registry",
    "MultiLevelDataset": "datasets",
    "Problem": "_base",
    "SolverError": "_base",
    "available_problems": "registry",
    "generate": "datasets",
    "get_problem": "registry",
    "measure_costs": "timing",
    "problem_class": "registry",
    "problem_from_params": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"ntk_mlft.problems.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ntk_mlft.problems' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
