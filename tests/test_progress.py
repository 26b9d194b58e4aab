"""``ntk_mlft._progress``: bars only when enabled and stderr is a terminal; items unchanged."""

from __future__ import annotations

import io
import sys

import pytest

from ntk_mlft import _progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def enabled():
    before = _progress.progress_enabled()
    _progress.set_progress_enabled(True)
    yield
    _progress.set_progress_enabled(before)


@pytest.mark.parametrize("tty", [True, False])
def test_bar_only_on_a_terminal(enabled, monkeypatch, tty):
    err = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert list(_progress.progress(range(5), total=5, desc="blocks")) == list(range(5))
    assert ("blocks" in err.getvalue()) == tty


def test_switched_off_is_silent_even_on_a_terminal(monkeypatch):
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    assert list(_progress.progress(iter("abc"), enabled=False, desc="x")) == ["a", "b", "c"]
    before = _progress.progress_enabled()
    try:
        _progress.set_progress_enabled(False)
        assert not _progress.progress_enabled()
        assert list(_progress.progress(range(3), desc="y")) == [0, 1, 2]
    finally:
        _progress.set_progress_enabled(before)
    assert err.getvalue() == ""


@pytest.mark.parametrize("tty", [True, False])
def test_stage_lines_only_on_a_terminal(enabled, monkeypatch, tty):
    err = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with _progress.stage("building the kernel"):
        pass
    lines = err.getvalue().splitlines()
    assert lines == (["building the kernel ...", lines[-1]] if tty else [])
    if tty:
        assert lines[-1].startswith("building the kernel: done in ")
