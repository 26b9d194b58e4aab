"""Solve ``generate``'s chunks on a Dask cluster (optional extra ``ntk_mlft[distributed]``).

``with dask_executor(scheduler="tcp://HOST:PORT") as ex: generate(..., executor=ex)`` (or
``local_workers=N`` for a ``LocalCluster`` of N worker processes on 127.0.0.1) submits every
chunk as one Dask task. Nothing else changes: ``generate`` writes each chunk to the cache the
moment its future completes, so the cache and resume semantics are those of any executor
(``datasets.py``): a worker that dies loses only the chunks it was solving (Dask reschedules
them on the other workers; if the run itself is stopped, re-running the same command reuses
every finished chunk), and labels are bit-identical to a serial run because every sample's
seed is fixed by ``(seed, level, index)``, not by where it runs.

One BLAS thread per task: each task runs under ``threadpoolctl.threadpool_limits(1)`` (so N
single-threaded solves share N cores instead of oversubscribing them, whatever the workers'
environment), and the ``LocalCluster`` workers also start with ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` = 1 and one thread each. Workers of an existing
cluster need ``ntk_mlft`` (the same version: the cache key holds a code hash) importable; start
them with ``--nthreads 1`` so each solve gets a core (README, "Generating data on a cluster").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["dask_executor", "ONE_THREAD_ENV", "MISSING_DASK"]

ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
MISSING_DASK = ("Dask is not installed: pip install 'ntk_mlft[distributed]' (dask.distributed) to "
            "run generate on a cluster")


def _one_blas_thread(fn: Callable, *args: Any) -> Any:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return fn(*args)


class _OneThreadExecutor:
    """``submit(fn, *args)`` runs ``fn(*args)`` on the wrapped executor with one BLAS thread."""

    def __init__(self, executor: Any):
        self._executor = executor

    def submit(self, fn: Callable, *args: Any):
        return self._executor.submit(_one_blas_thread, fn, *args)


@contextlib.contextmanager
def dask_executor(scheduler: str | None = None, local_workers: int | None = None,
                  timeout_s: float = 10.0) -> Iterator[Any]:
    """An executor for ``generate(..., executor=...)`` backed by Dask (module docstring).

    Args:
      scheduler: address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
      local_workers: start a ``LocalCluster`` of this many single-threaded worker processes on
        127.0.0.1 instead (closed on exit).
      timeout_s: how long to wait for the scheduler to answer.

    Exactly one of ``scheduler`` and ``local_workers`` must be given.
    """
    if (scheduler is None) == (local_workers is None):
        raise ValueError("dask_executor: give exactly one of scheduler (an address such as "
                         f"tcp://HOST:8786) and local_workers; got scheduler={scheduler!r}, "
                         f"local_workers={local_workers!r}")
    if local_workers is not None and (isinstance(local_workers, bool)
                                      or not isinstance(local_workers, int) or local_workers < 1):
        raise ValueError(f"dask_executor: local_workers must be an integer >= 1; "
                         f"got {local_workers!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
        raise ValueError(f"dask_executor: scheduler must be an address like tcp://HOST:PORT; "
                         f"got {scheduler!r}")
    try:
        import distributed
    except ImportError as err:
        raise ImportError(MISSING_DASK) from err
    with contextlib.ExitStack() as stack:
        if local_workers is not None:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=local_workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None, env=dict(ONE_THREAD_ENV)))
            client = stack.enter_context(distributed.Client(cluster))
        else:
            try:
                client = stack.enter_context(distributed.Client(scheduler, timeout=timeout_s))
            except (OSError, TimeoutError) as err:
                raise OSError(f"cannot reach the Dask scheduler at {scheduler} within "
                              f"{timeout_s:g} s ({err}); start it with `dask scheduler` and "
                              f"workers with `dask worker {scheduler} --nthreads 1`") from None
        yield _OneThreadExecutor(client.get_executor(pure=False))
