"""Atomic, content-addressed file I/O: nothing generated is ever half-written or silently reused.

Every writer goes through a temporary file in the destination folder followed by
``os.replace`` (atomic on POSIX within one file system), so a crash leaves either the old
file or the new one, never a torn one; the file gets the permissions a plain ``open`` would
(``0o666`` minus the user's umask), not ``mkstemp``'s private ``0o600``. ``content_key`` gives a
stable hash of a JSON-able description (problem, parameters, level, seed, count, ...) used as a
cache file name. JSON written here is strict (:func:`strict_json`: NaN/inf become ``null``, with
the reason recorded under ``"null_values"``), so ``--json`` output and ``--out`` files agree.
Readers (:func:`read_npz_strict`, :func:`read_csv_records`) name the file and what is wrong with
it in every error.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
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
    "read_csv_records",
    "read_npz_strict",
    "save_npz_atomic",
    "strict_json",
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


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, "cannot write here: a part of the folder path is a file, "
                                 "not a folder", str(path)) from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
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


def _strict(obj: Any, where: str, nulls: dict[str, str]) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _strict(v, f"{where}.{k}" if where else str(k), nulls) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v, f"{where}[{i}]", nulls) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _strict(obj.tolist(), where, nulls)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        nulls[where] = ("NaN: not defined here (e.g. a rule infeasible at this budget, or too few points "
                        "for a fit)" if np.isnan(obj) else f"{'+' if obj > 0 else '-'}infinity (e.g. a ratio "
                        "with a zero denominator)")
        return None
    return obj


def strict_json(obj: Any, indent: int | None = 2) -> str:
    """``obj`` as strict JSON text (RFC 8259: no NaN/Infinity tokens).

    numpy values become plain numbers and lists, paths strings; every NaN/inf becomes ``null``
    and, when there are any and ``obj`` is a mapping, a top-level ``"null_values"`` object maps
    each one's location (``"curves.error_equal[0]"``) to the reason."""
    nulls: dict[str, str] = {}
    clean = _strict(obj, "", nulls)
    if nulls and isinstance(clean, dict):
        clean["null_values"] = nulls
    return json.dumps(clean, indent=indent, allow_nan=False)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as strict JSON (:func:`strict_json`) to ``path`` atomically."""
    return write_text_atomic(path, strict_json(obj, indent=indent) + "\n")


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def read_npz_strict(path: str | os.PathLike[str], what: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive ``path``, loaded into memory (no pickles).

    ``what`` names the file in errors ("pilot file"). FileNotFoundError if it does not exist;
    ValueError, naming the file and the fault, if it is a folder, empty, a bare ``.npy`` array,
    not a zip archive (e.g. text), truncated, fails its CRC check or holds object arrays."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not an .npz file")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise ValueError(f"{what} {path} is empty (0 bytes)")
    if head.startswith(_NPY_MAGIC):
        raise ValueError(f"{what} {path} is a single .npy array, not an .npz archive of named arrays; "
                         "write it with numpy.savez(path, x=..., y_level1=..., ...)")
    if not head.startswith(_ZIP_MAGIC):
        raise ValueError(f"{what} {path} is not an .npz archive (a zip file; it starts with {head[:8]!r}); "
                         "write it with numpy.savez")
    import zipfile

    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise ValueError(f"{what} {path} is damaged (truncated or corrupted: {err})") from None
    except ValueError as err:
        if "pickle" in str(err):
            raise ValueError(f"{what} {path} holds object (pickled) arrays; only numeric arrays are "
                             "accepted") from None
        raise ValueError(f"{what} {path} is damaged or not a numpy archive ({err})") from None


def read_csv_records(path: str | os.PathLike[str], what: str, required: tuple[str, ...],
                     header_hint: str) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each non-blank row of the CSV ``path`` (keys and values
    stripped). ``what`` names the file in errors ("cost table"). FileNotFoundError if it is
    missing; ValueError, naming the file (and line), if it is a folder or not UTF-8 text (a
    UTF-8 byte-order mark and CRLF line ends are accepted), if the header lacks one of
    ``required`` (``header_hint``: the expected header, for the message), or if a line has more
    or fewer cells than the header (``1,64,1,5``: a decimal comma)."""
    import csv

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a CSV file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark is dropped
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} {path} is not UTF-8 text (byte {err.start}: {err.reason}); save it as "
                         "UTF-8 CSV") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(rows, [])]
    missing = [k for k in required if k not in header]
    if missing:
        raise ValueError(f"{what} {path} lacks column(s) {missing}; expected the header {header_hint} "
                         f"(got {','.join(header) or 'nothing'})")
    records = []
    for cells in rows:
        lineno = rows.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ValueError(f"{what} {path} line {lineno} has {len(cells)} cells but the header has "
                             f"{len(header)} ({','.join(header)}): {','.join(cells)!r} (a decimal comma? "
                             "use a point: 1.5)")
        records.append((lineno, {k: v.strip() for k, v in zip(header, cells)}))
    return records
