"""Multi-level datasets: per-level inputs and labels, cached on disk, resumable, parallel.

Seeds: sample ``i`` of level ``l`` is drawn from ``SeedSequence(seed, spawn_key=(l, i))``, i.e.
independent streams per level and per sample (the children of ``SeedSequence(seed).spawn``
indexed explicitly), so a dataset does not depend on the chunking or the number of workers and
a smaller count is a prefix of a larger one. ``paired=True`` draws all levels' inputs from the
one stream ``spawn_key=(0, i)``: level ``l`` gets the first ``counts[l]`` of the same inputs
(equal counts -> the same inputs at every level, as pilot studies need).

Caching: each chunk of ``chunk_size`` samples of one level is an ``.npz`` under ``cache_dir``
named by a content key of (problem parameters, level, seed, paired, sample range, format
version), written atomically. An interrupted run resumes from the finished chunks; a corrupt
or mis-shaped chunk is detected (``load_npz_checked``) and regenerated, never used.

Parallelism: chunks are mapped with ``executor.map`` where ``executor`` is anything with a
``concurrent.futures``-style ``map`` (a ``ProcessPoolExecutor``, a Dask ``client.get_executor()``,
Ray's ``RayExecutor``...). ``workers=K > 1`` makes a local process pool; the default is serial.
"""

from __future__ import annotations

import os
import platform
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._io import content_key, load_npz_checked, save_npz_atomic
from ntk_mlft._progress import progress
from ntk_mlft._validation import check_positive_int
from ntk_mlft.problems._base import Problem, SolverError

__all__ = ["MultiLevelDataset", "generate", "sample_seed"]

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class MultiLevelDataset:
    """Per-level data; index 0 = level 1 (coarsest).

    inputs[l]: (N_l, *input_shape); outputs[l]: (N_l, *output_shape), labels at level l+1 on the
    common output grid. provenance: problem parameters, seed, paired, counts, grids, versions.
    """

    inputs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_levels(self) -> int:
        return len(self.inputs)

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(int(x.shape[0]) for x in self.inputs)


def sample_seed(seed: int, level: int, index: int, paired: bool) -> np.random.SeedSequence:
    """The seed sequence of sample ``index`` of ``level`` (level 0 = the shared paired stream)."""
    return np.random.SeedSequence(seed, spawn_key=(0 if paired else level, index))


def _versions() -> dict[str, str]:
    import scipy

    try:
        from importlib.metadata import version

        pkg = version("ntk_mlft")
    except Exception:  # not installed (source checkout)
        pkg = "unknown"
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "ntk_mlft": pkg}


def _check_counts(counts_per_level: Any, n_levels: int) -> tuple[int, ...]:
    counts = list(counts_per_level) if not isinstance(counts_per_level, (str, bytes)) else None
    if counts is None or len(counts) != n_levels:
        raise ValueError(f"counts_per_level must list one sample count per level ({n_levels} levels); "
                         f"got {counts_per_level!r}")
    return tuple(check_positive_int(f"counts_per_level[{i}] (level {i + 1})", c) for i, c in enumerate(counts))


def _generate_chunk(problem: Problem, level: int, seed: int, paired: bool,
                    start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and level-``level`` labels of samples start..stop-1 (runs in a worker)."""
    x = np.stack([problem.sample_inputs(np.random.default_rng(sample_seed(seed, level, i, paired)), 1)[0]
                  for i in range(start, stop)])
    try:
        y = problem.solve(x, level)
    except SolverError as err:
        raise ValueError(f"{problem.name}: solver returned NaN/inf for sample {start + err.index} of level "
                         f"{level} (seed={seed}, paired={paired}); its input comes from "
                         f"SeedSequence({seed}, spawn_key={(0 if paired else level, start + err.index)})") from err
    return x, y


def _run_chunk(job: tuple) -> tuple[np.ndarray, np.ndarray]:
    return _generate_chunk(*job)


def _chunk_path(cache_dir: Path, problem: Problem, level: int, seed: int, paired: bool,
                start: int, stop: int) -> Path:
    key = content_key({"problem": problem.params, "level": level, "seed": seed, "paired": paired,
                       "start": start, "stop": stop, "format": _FORMAT_VERSION})
    return cache_dir / f"{problem.name}-level{level}-{start}-{stop}-{key}.npz"


def _load_chunk(path: Path, problem: Problem, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    data = load_npz_checked(path, required=("x", "y"))
    if data is None:
        return None
    x, y = data["x"], data["y"]
    if x.shape != (n, *problem.input_shape) or y.shape != (n, *problem.output_shape) \
            or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return None
    return x, y


def generate(problem: Problem, counts_per_level: Any, seed: int, paired: bool = False,
             cache_dir: str | os.PathLike[str] | None = None, workers: int | None = None, *,
             executor: Any = None, chunk_size: int = 32) -> MultiLevelDataset:
    """Inputs and labels for every level (see the module docstring for seeds, caching, parallelism).

    Args:
        problem: a :class:`~ntk_mlft.problems.Problem`.
        counts_per_level: (L,) positive ints, samples per level (index 0 = level 1).
        seed: non-negative int; all randomness derives from it.
        paired: same inputs at every level (level l uses the first counts[l] of them).
        cache_dir: folder for chunk caches (None: no caching).
        workers: local processes (None or 1: serial in this process).
        executor: anything with ``map(fn, iterable)``; overrides ``workers``.
        chunk_size: samples per cached chunk / per task.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem (see get_problem); got {type(problem).__name__}")
    counts = _check_counts(counts_per_level, problem.n_levels)
    seed = check_positive_int("seed", seed, allow_zero=True)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if workers is not None:
        workers = check_positive_int("workers", workers)
    if executor is not None and not callable(getattr(executor, "map", None)):
        raise TypeError(f"executor must have a concurrent.futures-style map(fn, iterable); "
                        f"got {type(executor).__name__}")
    cache = Path(cache_dir) if cache_dir is not None else None
    paired = bool(paired)

    own_pool = None
    if executor is None and workers is not None and workers > 1:
        # 'spawn', not the POSIX default 'fork': forking a process that has started JAX's
        # threads can deadlock (JAX warns), and spawn behaves the same on every platform.
        own_pool = executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        inputs, outputs = [], []
        for level, count in enumerate(counts, start=1):
            spans = [(s, min(s + chunk_size, count)) for s in range(0, count, chunk_size)]
            done: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            if cache is not None:
                for j, (s, e) in enumerate(spans):
                    hit = _load_chunk(_chunk_path(cache, problem, level, seed, paired, s, e), problem, e - s)
                    if hit is not None:
                        done[j] = hit
            todo = [j for j in range(len(spans)) if j not in done]
            jobs = [(problem, level, seed, paired, *spans[j]) for j in todo]
            results = map(_run_chunk, jobs) if executor is None else executor.map(_run_chunk, jobs)
            bar = progress(zip(todo, results), total=len(todo),
                           desc=f"{problem.name} level {level} ({count} samples)", unit="chunk")
            for j, (x, y) in bar:
                if cache is not None:
                    save_npz_atomic(_chunk_path(cache, problem, level, seed, paired, *spans[j]), x=x, y=y)
                done[j] = (x, y)
            inputs.append(np.concatenate([done[j][0] for j in range(len(spans))]))
            outputs.append(np.concatenate([done[j][1] for j in range(len(spans))]))
    finally:
        if own_pool is not None:
            own_pool.shutdown()
    provenance = {"problem": problem.params, "seed": seed, "paired": paired, "counts": list(counts),
                  "grids": [problem.grid(level) for level in range(1, problem.n_levels + 1)],
                  "order": problem.order, "chunk_size": chunk_size, "format": _FORMAT_VERSION,
                  "versions": _versions()}
    return MultiLevelDataset(inputs=tuple(inputs), outputs=tuple(outputs), provenance=provenance)
