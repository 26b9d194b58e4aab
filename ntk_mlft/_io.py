"""Atomic, content-addressed file I/O: nothing generated is ever half-written or silently reused.

Every writer goes through a temporary file in the destination folder followed by
``os.replace`` (atomic on POSIX within one file system), so a crash leaves either the old
file or the new one, never a torn one. ``content_key`` gives a stable hash of a JSON-able
description (problem, parameters, level, seed, count, ...) used as a cache file name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_path",
    "content_key",
    "load_npz_checked",
    "save_npz_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def _canonical(obj: Any) -> Any:
    """Turn numpy scalars/arrays, tuples and paths into plain JSON values (deterministically)."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _canonical(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return repr(obj)
    return obj


def content_key(description: Mapping[str, Any], length: int = 20) -> str:
    """Stable hex key (SHA-256 prefix) of a JSON-able description; key order does not matter."""
    text = json.dumps(_canonical(description), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def save_npz_atomic(path: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    """Write ``arrays`` to ``path`` (.npz, compressed) atomically; returns the final path."""
    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def load_npz_checked(path: str | os.PathLike[str], required: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
    """Load an .npz fully into memory; return ``None`` if it is missing, corrupt or lacks a key.

    A ``None`` tells a cache to regenerate: a damaged file is never silently used.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            out = {k: np.asarray(data[k]) for k in data.files}
    except Exception:  # zipfile.BadZipFile, EOFError, ValueError, OSError, ...
        return None
    if any(k not in out for k in required):
        return None
    return out


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as JSON (numpy values converted) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(_canonical(obj), indent=indent) + "\n")


def read_csv_records(path: str | os.PathLike[str], what: str, required: tuple[str, ...],
                     header_hint: str) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each non-blank row of the CSV ``path`` (keys and values
    stripped). ``what`` names the file in errors ("cost table"); FileNotFoundError if it is
    missing, ValueError if the header lacks one of ``required`` (``header_hint``: the expected header, for the message)."""
    import csv

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or ())]
        missing = [k for k in required if k not in header]
        if missing:
            raise ValueError(f"{what} {path} lacks column(s) {missing}; expected the header {header_hint} "
                             f"(got {','.join(header) or 'nothing'})")
        records = []
        for lineno, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if any(row.values()):
                records.append((lineno, row))
    return records
