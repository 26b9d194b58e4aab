"""Atomic writes and content keys: nothing half-written, nothing corrupt reused."""

import json

import numpy as np
import pytest

from ntk_mlft import _io


def test_content_key_is_order_independent_and_sensitive():
    a = _io.content_key({"problem": "x", "level": 2, "seed": 1})
    b = _io.content_key({"seed": 1, "level": 2, "problem": "x"})
    c = _io.content_key({"seed": 1, "level": 3, "problem": "x"})
    assert a == b
    assert a != c
    # numpy values hash like their Python equivalents
    assert _io.content_key({"n": np.int64(5), "w": np.array([1.0, 2.0])}) == _io.content_key({"n": 5, "w": [1.0, 2.0]})


def test_npz_roundtrip_and_no_temp_files_left(tmp_path):
    path = tmp_path / "sub" / "data.npz"
    x = np.arange(12.0).reshape(3, 4)
    _io.save_npz_atomic(path, x=x, y=np.ones(2))
    loaded = _io.load_npz_checked(path, required=("x", "y"))
    np.testing.assert_array_equal(loaded["x"], x)
    assert [p.name for p in path.parent.iterdir()] == ["data.npz"]


def test_corrupt_or_incomplete_npz_is_rejected(tmp_path):
    path = tmp_path / "data.npz"
    _io.save_npz_atomic(path, x=np.ones(1000))
    assert _io.load_npz_checked(path, required=("x", "missing")) is None
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # a torn write from some other tool
    assert _io.load_npz_checked(path) is None
    assert _io.load_npz_checked(tmp_path / "absent.npz") is None


def test_failed_write_leaves_old_file_intact(tmp_path):
    path = tmp_path / "out.json"
    _io.write_json_atomic(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with _io.atomic_path(path) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_json_converts_numpy(tmp_path):
    path = _io.write_json_atomic(tmp_path / "r.json", {"counts": np.array([3, 4]), "e": np.float64(0.5)})
    assert json.loads(path.read_text()) == {"counts": [3, 4], "e": 0.5}
