"""Subgrid-scale (SGS) closure testbeds: filtered fields -> SGS term, cached and resumable.

An SGS system is NOT a :class:`~ntk_mlft.problems._base.Problem` (an input -> solution map with
grid levels): its samples are snapshots of one turbulent trajectory (2-D) or of an ensemble
(1-D), and both the network input (filtered fields) and the label (the SGS term ``Pi``) come from
the same DNS state. So it has its own small contract, :class:`SGSSystem`:

- ``generate(n, seed, cache_dir=None, chunk=...) -> SGSData`` with ``inputs`` (n, *grid, C_in)
  (channels last, what a ``stax.Conv`` network takes) and ``targets`` (n, *grid, 1);
- samples are produced in chunks by ``_chunk(seed, start, stop, state) -> (x, y, state)``, where
  ``state`` carries what the next chunk continues from (the DNS state of a trajectory; ``None``
  for independent samples). Chunk ``j`` is cached as one ``.npz`` named by a content key of
  (system parameters, seed, chunk bounds, code fingerprint of the system's class and solver
  module), written atomically; a rerun loads the finished chunks and continues from the last
  one's state, so an interrupted run resumes and a longer run extends a shorter one (a smaller
  ``n`` with the same ``chunk`` is a prefix of a larger one). A corrupt or mis-shaped chunk is
  regenerated (from the state of the chunk before it).

Systems (``SGS_SYSTEMS``; :func:`get_sgs_system`): ``turbulence-sgs-2d`` (forced/decaying 2-D
turbulence, :mod:`ntk_mlft.problems.turbulence`) with its transfer targets, and the fast 1-D
analogue ``burgers-sgs-1d`` (:mod:`ntk_mlft.problems.burgers_sgs`).
"""

from __future__ import annotations

import dataclasses
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ntk_mlft._checks import check_positive_int
from ntk_mlft._io import content_key, load_npz_checked, save_npz_atomic
from ntk_mlft.problems.fingerprint import code_digest

__all__ = ["SGS_SYSTEMS", "SGSData", "SGSSystem", "get_sgs_system"]

_FORMAT = 1


@dataclass(frozen=True)
class SGSData:
    """Snapshots of one system: ``inputs`` (n, *grid, C_in), ``targets`` (n, *grid, 1), provenance."""

    inputs: np.ndarray
    targets: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass(frozen=True)
class SGSSystem(ABC):
    """Base of the SGS testbeds (module docstring). Subclasses are frozen dataclasses of parameters."""

    name: ClassVar[str] = ""
    spatial_dims: ClassVar[int] = 1
    in_channels: ClassVar[int] = 1

    @property
    def params(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self)}

    @property
    @abstractmethod
    def grid_shape(self) -> tuple[int, ...]:
        """Spatial shape of one LES sample."""

    @abstractmethod
    def _chunk(self, seed: int, start: int, stop: int, state: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        """Samples start..stop-1 as (x (m, *grid, C_in), y (m, *grid, 1), state after them)."""

    def _state_arrays(self, state: Any) -> dict[str, np.ndarray]:
        """``state`` as arrays for the cache (``{}`` when samples are independent)."""
        return {}

    def _state_from(self, arrays: dict[str, np.ndarray]) -> Any:
        return None

    def solver_functions(self) -> tuple[Any, ...]:
        """Solver functions outside the class's module whose code the cache key must cover (jitted
        functions are hashed through ``__wrapped__``; the fingerprint sees only plain functions)."""
        return ()

    def _path(self, cache: Path, seed: int, start: int, stop: int) -> Path:
        code = code_digest(type(self), *(getattr(f, "__wrapped__", f) for f in self.solver_functions()))
        key = content_key({"system": self.params, "seed": seed, "start": start, "stop": stop, "format": _FORMAT,
                           "code": code, "numpy": np.__version__})
        return cache / f"{self.name}-{start}-{stop}-{key}.npz"

    def _load(self, path: Path, m: int) -> tuple[np.ndarray, np.ndarray, Any] | None:
        data = load_npz_checked(path, required=("x", "y"))
        if data is None:
            return None
        x, y = data.pop("x"), data.pop("y")
        if x.shape != (m, *self.grid_shape, self.in_channels) or y.shape != (m, *self.grid_shape, 1) \
                or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            return None
        try:
            return x, y, self._state_from(data)
        except (KeyError, ValueError):
            return None

    def generate(self, n: int, seed: int, cache_dir: str | Path | None = None, *, chunk: int = 50) -> SGSData:
        """``n`` snapshots from ``seed`` (chunked, cached and resumable: module docstring)."""
        n = check_positive_int("n", n)
        seed = check_positive_int("seed", seed, allow_zero=True)
        chunk = check_positive_int("chunk", chunk)
        cache = Path(cache_dir) if cache_dir is not None else None
        xs, ys, state = [], [], None
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            hit = self._load(self._path(cache, seed, start, stop), stop - start) if cache is not None else None
            if hit is None:
                hit = self._chunk(seed, start, stop, state)
                if cache is not None:
                    save_npz_atomic(self._path(cache, seed, start, stop), x=hit[0], y=hit[1],
                                    **self._state_arrays(hit[2]))
            x, y, state = hit
            xs.append(x)
            ys.append(y)
        return SGSData(np.concatenate(xs), np.concatenate(ys),
                       {"system": self.params, "seed": seed, "n": n, "chunk": chunk})


# name -> (module, class, parameters): the base system and transfer targets of each testbed
SGS_SYSTEMS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "turbulence-sgs-2d": ("ntk_mlft.problems.turbulence", "TurbulenceSGS2D", {}),
    "turbulence-sgs-2d:re4x": ("ntk_mlft.problems.turbulence", "TurbulenceSGS2D", {"nu": 2.5e-4}),
    "turbulence-sgs-2d:kf8": ("ntk_mlft.problems.turbulence", "TurbulenceSGS2D", {"k_f": 8}),
    "burgers-sgs-1d": ("ntk_mlft.problems.burgers_sgs", "BurgersSGS1D", {}),
    "burgers-sgs-1d:re2x": ("ntk_mlft.problems.burgers_sgs", "BurgersSGS1D", {"nu": 0.01}),
    "burgers-sgs-1d:band": ("ntk_mlft.problems.burgers_sgs", "BurgersSGS1D", {"ic_band": (4, 8)}),
}


def get_sgs_system(name: str, **params: Any) -> SGSSystem:
    """The system ``name`` (``SGS_SYSTEMS``), with ``params`` overriding its defaults."""
    if name not in SGS_SYSTEMS:
        raise ValueError(f"unknown SGS system {name!r}; available: {', '.join(SGS_SYSTEMS)}")
    module, attr, defaults = SGS_SYSTEMS[name]
    cls = getattr(importlib.import_module(module), attr)
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(f"unknown parameter(s) {unknown} for SGS system {name!r}; allowed: {allowed}")
    return cls(**{**defaults, **params})
