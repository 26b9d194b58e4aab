"""What the CLI does with bad input before and after the work: fail fast, fail in one line.

:func:`check_out_path` runs before a command starts (``entry.main``, for commands whose module
sets ``OUT_KIND``): an ``--out`` that can never be written is reported at once instead of after
minutes of computation. :func:`error_line` turns an exception that reached ``main`` into the one
line ``ntk-mlft COMMAND: error: ...`` and its exit status: 2 for bad input (``ValueError``,
``TypeError``, ``OSError`` such as a missing, unreadable or unwritable file, ``MemoryError``),
130 for Ctrl-C (128 + SIGINT, the shell convention); anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["INTERRUPTED", "check_no_empty_values", "check_out_path", "error_line", "interrupts_get_through"]

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT)."""


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def check_out_path(out: str | os.PathLike[str], kind: str, option: str = "--out") -> None:
    """ValueError unless ``out`` can be written as a ``kind`` (``"file"`` or ``"folder"``).

    A file may be replaced but must not be a folder (``.`` included); a folder may exist (its
    files are replaced) but must not be a file. Either way the nearest existing folder above it
    must accept a new file (probed with a temporary file, removed at once), so a read-only or
    missing mount fails here."""
    path = Path(out)
    if kind not in ("file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder'; got {kind!r}")
    if kind == "file" and path.is_dir():
        raise ValueError(f"{option} {out} is a folder; this command writes one file there: give a file name, "
                         "e.g. --out results/report.json")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise ValueError(f"{option} {out} is an existing file; this command writes a folder of files there: "
                         "give a folder name")
    base = _nearest_existing(path if kind == "folder" else path.parent)
    if not base.is_dir():
        raise ValueError(f"{option} {out} cannot be created: {base} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as err:
        raise ValueError(f"{option} {out} is not writable: cannot create files in {base} "
                         f"({err.strerror or err})") from None


def check_no_empty_values(args: Any) -> None:
    """ValueError for an option given an empty (or blank) value, e.g. ``--pilot ""`` from an unset
    shell variable: every option value is a name, path or number, and treating an empty one as
    "not given" would silently switch to a default (another model, another problem)."""
    for dest, value in sorted(vars(args).items()):
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values) and not dest.startswith("_"):
            option = "--" + dest.replace("_", "-")
            raise ValueError(f"{option} is empty; give a value (an unset shell variable?) or leave the option out")


@contextlib.contextmanager
def interrupts_get_through() -> Iterator[None]:
    """Ctrl-C ends the command wherever it lands.

    Python raises ``KeyboardInterrupt`` at the next bytecode, which may belong to a garbage-collector
    callback or a ``__del__`` (JAX registers one): there the exception is "ignored" -- printed as a
    traceback and swallowed -- and the command ran on. Inside this context such a swallowed
    interrupt prints nothing and is raised again 10 ms later (``SIGALRM``), in the main flow."""
    def redeliver(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            return
        previous_hook(unraisable)

    previous_hook, sys.unraisablehook = sys.unraisablehook, hook
    previous_alarm = signal.signal(signal.SIGALRM, redeliver)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        sys.unraisablehook = previous_hook


def error_line(command: str | None, err: BaseException) -> tuple[str, int] | None:
    """``(message, exit status)`` for an exception that ends a command, or None for a bug."""
    prefix = f"ntk-mlft {command}" if command else "ntk-mlft"
    if isinstance(err, KeyboardInterrupt):
        return (f"{prefix}: interrupted (Ctrl-C); finished chunks and checkpoints are kept: rerun the same "
                "command to resume", INTERRUPTED)
    if isinstance(err, MemoryError):
        return f"{prefix}: error: out of memory; use smaller sizes (counts, pool, widths)", 2
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        hint = {errno.ENOSPC: " (disk full?)",
                errno.EEXIST: " (a file is in the way: a folder is needed there)"}.get(err.errno, "")
        return f"{prefix}: error: {where}{err.strerror}{hint}", 2
    if isinstance(err, (ValueError, TypeError, OSError)):
        return f"{prefix}: error: {err}", 2
    return None
