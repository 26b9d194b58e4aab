"""Progress for long work on stderr: a tqdm bar (:func:`progress`) for loops, a step line
(:func:`stage`) for single long steps (what runs, then how long it took).

Silent when progress is switched off (``NTK_MLFT_PROGRESS=0`` in the environment,
:func:`set_progress_enabled` ``(False)``, e.g. the CLI's ``--quiet``, or ``enabled=False`` per
call) and whenever stderr is not a terminal (CI logs, redirected output): tqdm's
``disable=None`` checks ``sys.stderr.isatty()``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["progress", "progress_enabled", "set_progress_enabled", "stage"]

_ENABLED = [os.environ.get("NTK_MLFT_PROGRESS", "1") != "0"]


def set_progress_enabled(enabled: bool) -> None:
    """Turn progress bars on or off for this process (the CLI's ``--quiet`` sets this)."""
    _ENABLED[0] = bool(enabled)


def progress_enabled() -> bool:
    return _ENABLED[0]


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "",
             unit: str = "it", enabled: bool | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr when enabled and stderr is a terminal; a plain
    iterator otherwise. ``enabled=None`` follows :func:`progress_enabled`."""
    on = progress_enabled() if enabled is None else enabled
    if not on:
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr,
                    dynamic_ncols=True, leave=False, mininterval=0.5, disable=None)


@contextlib.contextmanager
def stage(what: str, *, enabled: bool | None = None) -> Iterator[None]:
    """Step line around one long step: ``what ...`` when it starts and ``what: done in 12 s``
    when it ends, on stderr, under the same conditions as :func:`progress` (enabled and a
    terminal); silent otherwise."""
    on = (progress_enabled() if enabled is None else enabled) and sys.stderr.isatty()
    t0 = time.perf_counter()
    if on:
        print(f"{what} ...", file=sys.stderr, flush=True)
    yield
    if on:
        print(f"{what}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
