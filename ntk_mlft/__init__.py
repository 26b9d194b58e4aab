"""ntk_mlft: how to spend a budget of expensive PDE training data across grid levels.

Multi-Level Fine-Tuning (MLFT) in the Neural Tangent Kernel regime. The packages follow the flow:
kernels (``stax`` over ``kernels``, ``empirical``) → predictions (``predict``) → error estimators
(``estimators``) → optimal allocation (``allocation``) → reports (``reports``), with PDE data
(``problems``), finite-width training (``training``, ``optim``), end-to-end ``studies`` and the
``cli`` beside them. Architecture and data flow: ``docs/design.md``.

Sub-packages are imported on first use (PEP 562), so ``import ntk_mlft`` is cheap and does
not pull in cvxpy or matplotlib.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "allocation",
    "empirical",
    "estimators",
    "optim",
    "predict",
    "problems",
    "reports",
    "stax",
    "studies",
    "training",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"ntk_mlft.{name}")
    raise AttributeError(f"module 'ntk_mlft' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
