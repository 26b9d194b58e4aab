"""Every command in README.md runs, verbatim, on a clean checkout.

"Clean checkout": the tracked files of this repository (``git ls-files``, uncommitted edits
included) copied into an empty folder: no ``results/``, no caches, no virtual environment. The
commands are the README's ``bash`` and ``console`` code blocks (``$ `` lines of a console block,
every line of a bash block, backslash continuations joined, ``# ...`` comments dropped) and its
``python`` blocks; ``ntk-mlft`` runs as ``python -m ntk_mlft.cli`` with the checkout on the path
(what the console script does), ``make demo`` as the Makefile's own recipe for it (read from the
Makefile, so the two cannot drift). ``make test`` is not run: it is this suite. The ``csv`` block
is the ``costs.csv`` the README tells the reader to save.

A console block's printed output must match what the command prints, line for line. Commands
that need minutes (the demo, measured costs and an NTK estimator) are ``slow``; the fast tier
runs the rest and checks that every README command is one this file knows how to run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# README commands (first words) that need minutes: run in the slow tier only
SLOW = ("make demo", "ntk-mlft curves --problem", "ntk-mlft generate", "ntk-mlft allocate --costs costs.csv "
        "--budget 3600 --pilot")
NOT_RUN = {"make test": "the test suite itself"}


def _blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def _join_continuations(lines: list[str]) -> list[str]:
    out, cur = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
        else:
            out.append(cur + line)
            cur = ""
    return out


def readme_commands() -> list[tuple[str, list[str] | None]]:
    """``(command, expected output lines or None)`` in README order."""
    cmds = []
    for lang, body in _blocks(README.read_text()):
        lines = body.splitlines()
        if lang == "bash":
            for line in _join_continuations(lines):
                line = line.split("  #")[0].strip()
                if line and not line.startswith("#"):
                    cmds.append((line, None))
        elif lang == "console":
            joined = _join_continuations(lines)
            for i, line in enumerate(joined):
                if line.startswith("$ "):
                    rest = joined[i + 1:]
                    end = next((k for k, r in enumerate(rest) if r.startswith("$ ")), len(rest))
                    cmds.append((line[2:].strip(), rest[:end]))
    return cmds


def python_blocks() -> list[str]:
    return [body for lang, body in _blocks(README.read_text()) if lang == "python"]


def _make_recipe(target: str) -> str:
    lines = (ROOT / "Makefile").read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(f"{target}:"))
    return lines[i + 1].strip().replace("$(VENV)/bin/ntk-mlft", "ntk-mlft")


def _checkout(dest: Path) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "costs.csv").write_text(next(b for lang, b in _blocks(README.read_text()) if lang == "csv"))
    return dest


def _env(clone: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(clone), "NTK_MLFT_PROGRESS": "0",
            "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def _argv(command: str) -> list[str]:
    if command.startswith("make "):
        command = _make_recipe(command.split()[1])
    words = shlex.split(command)
    if words[0] == "ntk-mlft":
        return [sys.executable, "-m", "ntk_mlft.cli", *words[1:]]
    if words[0].endswith(".py"):
        return [sys.executable, *words]
    raise AssertionError(f"README command {command!r}: don't know how to run it")


def _run(command: str, clone: Path, timeout: float) -> subprocess.CompletedProcess:
    res = subprocess.run(_argv(command), cwd=clone, env=_env(clone), capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"{command}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr and "Warning" not in res.stderr, res.stderr[-3000:]
    return res


def _is_slow(command: str) -> bool:
    return command.startswith(SLOW)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return _checkout(tmp_path_factory.mktemp("clean_checkout"))


def test_every_readme_command_is_known():
    cmds = [c for c, _ in readme_commands()]
    assert any(c.startswith("ntk-mlft allocate") for c in cmds) and "make demo" in cmds
    for c in cmds:
        if c in NOT_RUN:
            continue
        _argv(c)                                                  # raises for an unknown kind of command


FAST = [(c, out) for c, out in readme_commands() if c not in NOT_RUN and not _is_slow(c)]
SLOW_CMDS = [c for c, _ in readme_commands() if c not in NOT_RUN and _is_slow(c)]


@pytest.mark.parametrize("command, expected", FAST, ids=[c[:60] for c, _ in FAST])
def test_fast_readme_command(clone, command, expected):
    res = _run(command, clone, timeout=300)
    if expected:
        assert res.stdout.rstrip("\n").splitlines() == expected


@pytest.mark.slow
def test_slow_readme_commands_in_order(clone):
    """The slow commands in README order (the generate -> allocate pair depends on it)."""
    for command in SLOW_CMDS:
        _run(command, clone, timeout=1800)
    assert (clone / "results" / "demo" / "summary.md").exists()
    assert (clone / "results" / "curves" / "curves.json").exists()


def _run_python(code: str, clone: Path, timeout: float) -> None:
    res = subprocess.run([sys.executable, "-c", code], cwd=clone, env=_env(clone), capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]


def test_first_readme_python_block(clone):
    """The allocation example (seconds); the kernel and estimator examples compile JAX (slow tier)."""
    _run_python(python_blocks()[0], clone, timeout=300)


@pytest.mark.slow
def test_other_readme_python_blocks(clone):
    for code in python_blocks()[1:]:
        _run_python(code, clone, timeout=1800)


@pytest.mark.parametrize("command", ["--help", "--version", *[f"{c} --help" for c in
                                     ("demo", "allocate", "curves", "validate", "generate", "costs")]])
def test_help_runs(clone, command):
    _run(f"ntk-mlft {command}", clone, timeout=120)
