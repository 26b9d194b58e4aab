"""Multi-level datasets: per-level inputs and labels, cached on disk, resumable, parallel.

Seeds: sample ``i`` of level ``l`` is drawn from ``SeedSequence(seed, spawn_key=(l, i))``, i.e.
independent streams per level and per sample (the children of ``SeedSequence(seed).spawn``
indexed explicitly), so a dataset does not depend on the chunking or the number of workers and
a smaller count is a prefix of a larger one. ``paired=True`` draws all levels' inputs from the
one stream ``spawn_key=(0, i)``: level ``l`` gets the first ``counts[l]`` of the same inputs
(equal counts -> the same inputs at every level, as pilot studies need; unequal counts ->
nested prefixes, the samples of a smaller level are the first ones of every larger level).

Caching: each chunk of ``chunk_size`` samples of one level is an ``.npz`` under ``cache_dir``
named by a content key of (problem parameters, level, seed, paired, sample range, format
version, solver fingerprint), written atomically. The fingerprint (:func:`solver_fingerprint`)
holds the ntk_mlft, numpy and scipy versions, the problem's ``solver_version`` and a hash of the
loaded code of the problem class, its solver module and ``_base`` and of the functions here that
draw the inputs (:mod:`ntk_mlft.problems.fingerprint`), so changing a solver invalidates its
cached labels without anyone bumping a number; ``solver_version`` is for changes the hash cannot
see (a third-party solver's behaviour at the same version). An interrupted run resumes from the
finished chunks; a corrupt, truncated, mis-shaped or non-finite chunk is detected
(``_load_chunk``) and regenerated, never used.

Parallelism: chunks are submitted to ``executor`` (any ``concurrent.futures.Executor``:
``submit(fn, *args)`` returning a ``concurrent.futures.Future`` -- a ``ProcessPoolExecutor``,
Dask's ``client.get_executor()``, ...) and each is written to the cache the moment it
completes, in completion order, so an interruption loses only the chunks still running.
``workers=K > 1`` makes a local process pool; the default is serial in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._checks import check_memory, check_positive_int
from ntk_mlft._io import content_key, load_npz_checked, save_npz_atomic
from ntk_mlft._progress import progress
from ntk_mlft.problems._base import Problem, SolverError
from ntk_mlft.problems.fingerprint import code_digest

__all__ = ["MultiLevelDataset", "generate", "sample_seed", "solver_fingerprint"]

_FORMAT_VERSION = 2


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

    import ntk_mlft

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "ntk_mlft": ntk_mlft.__version__}


def solver_fingerprint(problem: Problem) -> dict[str, Any]:
    """What a problem's labels depend on besides its parameters (part of every cache key).

    ``{"versions": ntk_mlft/numpy/scipy versions, "solver_version": problem.solver_version,
    "code": fingerprint.code_digest of the problem's class (its MRO's modules: the solver, the
    ``_base`` helpers) and of this module's input-drawing functions}``.
    """
    versions = {k: v for k, v in _versions().items() if k != "python"}
    return {"versions": versions, "solver_version": int(problem.solver_version),
            "code": code_digest(type(problem), sample_seed, _generate_chunk)}


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


def _chunk_path(cache_dir: Path, problem: Problem, fingerprint: dict[str, Any], level: int, seed: int,
                paired: bool, start: int, stop: int) -> Path:
    key = content_key({"problem": problem.params, "level": level, "seed": seed, "paired": paired,
                       "start": start, "stop": stop, "format": _FORMAT_VERSION, "solver": fingerprint})
    return cache_dir / f"{problem.name}-level{level}-{start}-{stop}-{key}.npz"


def _load_chunk(path: Path, problem: Problem, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A cached chunk, or None (regenerate) unless it loads fully with finite (n, ...) x and y."""
    data = load_npz_checked(path, required=("x", "y"))
    if data is None:
        return None
    x, y = data["x"], data["y"]
    if x.shape != (n, *problem.input_shape) or y.shape != (n, *problem.output_shape) \
            or x.dtype.kind != "f" or y.dtype.kind != "f" \
            or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return None
    return x, y


Job = tuple[Problem, int, int, bool, int, int]  # (problem, level, seed, paired, start, stop)


def _completed(jobs: list[Job], executor: Any) -> Iterator[tuple[Job, tuple[np.ndarray, np.ndarray]]]:
    """(job, result) for every job, in completion order.

    If a job fails or the wait is interrupted (KeyboardInterrupt), the pending jobs are cancelled,
    the ones that had already finished are still yielded (so the caller caches them), and then
    the error is raised.
    """
    if executor is None:
        for job in jobs:
            yield job, _generate_chunk(*job)
        return
    futures = {executor.submit(_generate_chunk, *job): job for job in jobs}
    handed = set()
    try:
        for fut in as_completed(futures):
            result = fut.result()
            handed.add(fut)
            yield futures[fut], result
    except GeneratorExit:  # the caller stopped (its own error): nothing more can be handed over
        for fut in futures:
            fut.cancel()
        raise
    except BaseException:
        for fut in futures:
            fut.cancel()
        for fut, job in futures.items():
            if fut not in handed and fut.done() and not fut.cancelled() and fut.exception() is None:
                yield job, fut.result()
        raise


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """A 'spawn' pool of ``workers`` processes that ignore Ctrl-C.

    A terminal's Ctrl-C signals the whole process group; only this process should act on it (it
    cancels the pending chunks, the finished ones stay cached). The workers are started here with
    SIGINT ignored, a disposition they inherit through ``exec`` and Python keeps, so an interrupt
    never prints a traceback from a worker, even one still starting up."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    if threading.current_thread() is not threading.main_thread():
        return pool
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for _ in range(workers):  # each submit with no idle worker starts one, now
            pool.submit(int)
    finally:
        signal.signal(signal.SIGINT, previous)
    return pool


def generate(problem: Problem, counts_per_level: Any, seed: int, paired: bool = False,
             cache_dir: str | os.PathLike[str] | None = None, workers: int | None = None, *,
             executor: Any = None, chunk_size: int = 32) -> MultiLevelDataset:
    """Inputs and labels for every level (see the module docstring for seeds, caching, parallelism).

    Args:
        problem: a :class:`~ntk_mlft.problems.Problem`.
        counts_per_level: (L,) positive ints, samples per level (index 0 = level 1).
        seed: non-negative int; all randomness derives from it.
        paired: inputs from one stream for all levels: level l uses the first counts[l] of them
            (equal counts: the same inputs at every level; unequal: nested prefixes).
        cache_dir: folder for chunk caches (None: no caching).
        workers: local processes (None or 1: serial in this process).
        executor: a ``concurrent.futures.Executor`` (``submit``); overrides ``workers``.
        chunk_size: samples per cached chunk / per task (one ``problem.solve`` batch).

    A progress bar per level counts solved samples (``unit="sample"``, advancing as chunks finish).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem (see get_problem); got {type(problem).__name__}")
    counts = _check_counts(counts_per_level, problem.n_levels)
    row = int(np.prod(problem.input_shape)) + int(np.prod(problem.output_shape))
    check_memory(f"the dataset of {sum(counts)} samples (counts {list(counts)})", 8.0 * row * sum(counts),
                 "ask for fewer samples")
    seed = check_positive_int("seed", seed, allow_zero=True)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if workers is not None:
        workers = check_positive_int("workers", workers)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must be a concurrent.futures.Executor (submit(fn, *args) returning a "
                        f"Future: ProcessPoolExecutor, Dask's client.get_executor(), ...); got "
                        f"{type(executor).__name__}")
    cache = Path(cache_dir) if cache_dir is not None else None
    paired = bool(paired)
    fingerprint = solver_fingerprint(problem)

    own_pool = None
    if executor is None and workers is not None and workers > 1:
        # 'spawn', not the POSIX default 'fork': forking a process that has started JAX's
        # threads can deadlock (JAX warns), and spawn behaves the same on every platform.
        own_pool = executor = _worker_pool(workers)
    try:
        inputs, outputs = [], []
        for level, count in enumerate(counts, start=1):
            spans = [(s, min(s + chunk_size, count)) for s in range(0, count, chunk_size)]
            done: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            if cache is not None:
                for s, e in spans:
                    hit = _load_chunk(_chunk_path(cache, problem, fingerprint, level, seed, paired, s, e),
                                      problem, e - s)
                    if hit is not None:
                        done[s] = hit
            jobs = [(problem, level, seed, paired, s, e) for s, e in spans if s not in done]
            n_todo = sum(e - s for *_, s, e in jobs)

            def finished_samples(jobs=jobs, done=done, level=level) -> Iterator[None]:
                for (*_, s, e), (x, y) in _completed(jobs, executor):
                    if cache is not None:
                        save_npz_atomic(_chunk_path(cache, problem, fingerprint, level, seed, paired, s, e),
                                        x=x, y=y)
                    done[s] = (x, y)
                    yield from (None for _ in range(e - s))  # one tick per sample

            desc = f"{problem.name} level {level}/{problem.n_levels} (grid {problem.grid(level)}" + \
                   (f", {count - n_todo} of {count} cached)" if n_todo < count else ")")
            for _ in progress(finished_samples(), total=n_todo, desc=desc, unit="sample"):
                pass
            inputs.append(np.concatenate([done[s][0] for s, _ in spans]))
            outputs.append(np.concatenate([done[s][1] for s, _ in spans]))
    finally:
        if own_pool is not None:
            own_pool.shutdown(cancel_futures=True)
    provenance = {"problem": problem.params, "seed": seed, "paired": paired, "counts": list(counts),
                  "grids": [problem.grid(level) for level in range(1, problem.n_levels + 1)],
                  "order": problem.order, "difference_rate": problem.difference_rate,
                  "chunk_size": chunk_size, "format": _FORMAT_VERSION, "solver": fingerprint,
                  "versions": _versions()}
    return MultiLevelDataset(inputs=tuple(inputs), outputs=tuple(outputs), provenance=provenance)
