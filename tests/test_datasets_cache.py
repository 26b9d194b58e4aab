"""generate()'s cache and execution: every kind of damaged chunk is regenerated (never used), the
key follows the solver's source, results do not depend on completion order, an interruption
keeps the chunks that finished, and the progress bar counts samples."""

import importlib.util
import pickle
import sys
import textwrap
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import numpy as np
import pytest
from toy_problems import NaNAbove

import ntk_mlft.problems.datasets as datasets
from ntk_mlft.problems import generate, get_problem
from ntk_mlft.problems.datasets import solver_fingerprint

SMALL = dict(levels=3, n_coarse=16, refinement=2, n_input=32, n_output=8)


@pytest.fixture
def problem():
    return get_problem("elliptic-rough", **SMALL)


def _count_solves(monkeypatch, problem):
    """Record (level, batch size) of every solve of ``problem``'s class. Patching the class changes
    its code fingerprint (so every chunk would look stale): the fingerprint is pinned first."""
    fingerprint = solver_fingerprint(problem)
    monkeypatch.setattr(datasets, "solver_fingerprint", lambda p: fingerprint)
    calls = []
    original = type(problem).solve

    def counting(self, inputs, level):
        calls.append((level, len(inputs)))
        return original(self, inputs, level)
    monkeypatch.setattr(type(problem), "solve", counting)
    return calls


def _rewrite(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


CORRUPTIONS = {
    "not a zip": lambda path, x, y: path.write_bytes(b"not a zip file"),
    "truncated": lambda path, x, y: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "empty file": lambda path, x, y: path.write_bytes(b""),
    "missing key y": lambda path, x, y: _rewrite(path, x=x),
    "wrong shape": lambda path, x, y: _rewrite(path, x=x, y=y[:, :-1]),
    "wrong count": lambda path, x, y: _rewrite(path, x=x[:1], y=y[:1]),
    "NaN label": lambda path, x, y: _rewrite(path, x=x, y=np.where(np.arange(y.size).reshape(y.shape) == 3, np.nan, y)),
    "inf input": lambda path, x, y: _rewrite(path, x=np.where(x == x.max(), np.inf, x), y=y),
    "integer labels": lambda path, x, y: _rewrite(path, x=x, y=np.zeros(y.shape, dtype=np.int64)),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_damaged_chunk_is_regenerated_never_used(problem, tmp_path, monkeypatch, kind):
    first = generate(problem, [6, 2, 2], seed=0, cache_dir=tmp_path, chunk_size=2)
    victim = sorted(tmp_path.glob("elliptic-rough-level1-2-4-*.npz"))[0]
    CORRUPTIONS[kind](victim, first.inputs[0][2:4], first.outputs[0][2:4])
    with monkeypatch.context() as m:
        calls = _count_solves(m, problem)
        again = generate(problem, [6, 2, 2], seed=0, cache_dir=tmp_path, chunk_size=2)
    assert calls == [(1, 2)]  # only the damaged chunk (level 1, samples 2..3) was solved again
    for a, b in zip(first.outputs, again.outputs):
        np.testing.assert_array_equal(a, b)
    with np.load(victim) as fixed:  # and it was rewritten whole
        np.testing.assert_array_equal(fixed["y"], first.outputs[0][2:4])


_MODULE = '''
from dataclasses import dataclass
from typing import ClassVar
import numpy as np
from ntk_mlft.problems import Problem

@dataclass(frozen=True)
class Toy(Problem):
    name: ClassVar[str] = "toy"
    levels: int = 2

    @property
    def input_shape(self):
        return (2,)

    @property
    def output_shape(self):
        return (1,)

    def _sample(self, rng, n):
        return rng.standard_normal((n, 2))

    def _solve_one(self, x, n_cells):
        """COMMENT"""
        return np.array([SCALE * x.sum()])  # COMMENT
'''


def _load_toy(path, name, scale, monkeypatch, comment="a comment"):
    path.write_text(textwrap.dedent(_MODULE).replace("SCALE", repr(scale)).replace("COMMENT", comment))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module.Toy()


def test_editing_the_solver_source_invalidates_its_cache(tmp_path, monkeypatch):
    src, cache = tmp_path / "toy_problem.py", tmp_path / "cache"
    old = _load_toy(src, "toy_problem_v1", 1.0, monkeypatch)
    first = generate(old, [3, 2], seed=1, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2
    reworded = _load_toy(src, "toy_problem_v1", 1.0, monkeypatch, comment="other words")
    assert solver_fingerprint(reworded) == solver_fingerprint(old)  # comments/docstrings: same code
    new = _load_toy(src, "toy_problem_v1", 2.0, monkeypatch)  # same module name and file, new solver
    assert new.params == old.params and solver_fingerprint(new) != solver_fingerprint(old)
    second = generate(new, [3, 2], seed=1, cache_dir=cache)
    np.testing.assert_array_equal(second.inputs[0], first.inputs[0])
    np.testing.assert_array_equal(second.outputs[0], 2.0 * first.outputs[0])  # fresh labels, not the cached ones
    assert len(list(cache.glob("*.npz"))) == 4


def test_fingerprint_follows_versions_and_solver_version(problem, monkeypatch):
    base = solver_fingerprint(problem)
    assert base == solver_fingerprint(get_problem("elliptic-rough", **SMALL))
    pickle.loads(pickle.dumps(problem))  # pickling caches __slotnames__ on the class: not code
    assert solver_fingerprint(problem) == base
    assert base != solver_fingerprint(get_problem("burgers-shock"))  # another module's source
    monkeypatch.setattr(type(problem), "solver_version", problem.solver_version + 1)
    assert solver_fingerprint(problem) != base
    monkeypatch.undo()
    import ntk_mlft
    monkeypatch.setattr(ntk_mlft, "__version__", "99.0")
    assert solver_fingerprint(problem)["versions"]["ntk_mlft"] == "99.0" and solver_fingerprint(problem) != base


class ReversingExecutor(Executor):
    """Runs each level's chunks on a helper thread in REVERSE submission order, once the level's
    ``per_level[k]`` chunks are all submitted; optionally fails (KeyboardInterrupt) on the first
    submitted chunk of level 1 after the others have completed."""

    def __init__(self, per_level, interrupt_first=False):
        self.per_level, self.interrupt_first = list(per_level), interrupt_first
        self.pending, self.completed, self.threads = [], [], []

    def submit(self, fn, /, *args):
        fut = Future()
        self.pending.append((fut, fn, args))
        if len(self.pending) == self.per_level[0]:
            batch, self.pending = self.pending, []
            self.per_level.pop(0)
            thread = threading.Thread(target=self._run, args=(batch,))
            self.threads.append(thread)
            thread.start()
        return fut

    def _run(self, batch):
        for k, (fut, fn, args) in reversed(list(enumerate(batch))):
            fut.set_running_or_notify_cancel()
            if k == 0 and self.interrupt_first:
                fut.set_exception(KeyboardInterrupt())
                continue
            fut.set_result(fn(*args))
            self.completed.append(args[4])  # the chunk's start index


def test_completion_order_does_not_matter(problem):
    serial = generate(problem, [8, 4, 2], seed=9, chunk_size=2)
    ex = ReversingExecutor([4, 2, 1])
    reversed_run = generate(problem, [8, 4, 2], seed=9, chunk_size=2, executor=ex)
    assert ex.completed[:4] == [6, 4, 2, 0]  # level 1 really completed last-first
    for a, b in zip(serial.outputs, reversed_run.outputs):
        np.testing.assert_array_equal(a, b)


def test_interruption_keeps_chunks_that_finished(problem, tmp_path, monkeypatch):
    ex = ReversingExecutor([4, 1, 1], interrupt_first=True)
    with pytest.raises(KeyboardInterrupt):
        generate(problem, [8, 1, 1], seed=4, cache_dir=tmp_path, chunk_size=2, executor=ex)
    for t in ex.threads:
        t.join()
    kept = sorted(int(p.name.split("-")[3]) for p in tmp_path.glob("*level1-*.npz"))
    assert kept == [2, 4, 6]  # everything but the interrupted first chunk (executor.map would keep none)
    with monkeypatch.context() as m:
        calls = _count_solves(m, problem)
        resumed = generate(problem, [8, 1, 1], seed=4, cache_dir=tmp_path, chunk_size=2)
    assert calls == [(1, 2), (2, 1), (3, 1)]
    fresh = generate(problem, [8, 1, 1], seed=4, chunk_size=8)
    np.testing.assert_array_equal(resumed.outputs[0], fresh.outputs[0])


def test_failing_chunk_in_thread_pool_keeps_the_finished_ones(tmp_path):
    """A NaN in the last chunk (ValueError) fails the run; the chunks done before it are on disk."""
    for seed in range(100):  # a seed whose largest first entry lies in the last chunk (samples 6, 7)
        x = generate(NaNAbove(levels=1), [8], seed=seed).inputs[0][:, 0]
        if x[6:].max() > x[:6].max():
            break
    p = NaNAbove(levels=1, threshold=float(x[:6].max()))
    with ThreadPoolExecutor(1) as ex:  # one worker: the chunks run in submission order
        with pytest.raises(ValueError, match=rf"NaN/inf for sample [67] of level 1 \(seed={seed}"):
            generate(p, [8], seed=seed, cache_dir=tmp_path, chunk_size=2, executor=ex)
    kept = sorted(int(f.name.split("-")[3]) for f in tmp_path.glob("nan-above-level1-*.npz"))
    assert kept == [0, 2, 4]


def test_thread_and_process_pools_match_serial(problem):
    serial = generate(problem, [4, 3, 2], seed=9, chunk_size=2)
    with ThreadPoolExecutor(2) as ex:
        threaded = generate(problem, [4, 3, 2], seed=9, chunk_size=2, executor=ex)
    pooled = generate(problem, [4, 3, 2], seed=9, chunk_size=2, workers=2)
    for a, b, c in zip(serial.outputs, threaded.outputs, pooled.outputs):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_progress_bar_counts_samples_per_level(problem, tmp_path, monkeypatch):
    bars = []

    def recording(iterable, *, total=None, desc="", unit="it", enabled=None):
        ticks = sum(1 for _ in iterable)
        bars.append((desc, total, unit, ticks))
        yield from ()
    monkeypatch.setattr(datasets, "progress", recording)
    generate(problem, [5, 3, 1], seed=2, cache_dir=tmp_path, chunk_size=2)
    assert [(t, u, k) for _, t, u, k in bars] == [(5, "sample", 5), (3, "sample", 3), (1, "sample", 1)]
    assert "level 1/3 (grid 16)" in bars[0][0]
    bars.clear()
    generate(problem, [9, 3, 1], seed=2, cache_dir=tmp_path, chunk_size=2)  # samples 0..3 of level 1 cached
    assert [(t, k) for _, t, _, k in bars] == [(5, 5), (0, 0), (0, 0)]
    assert "4 of 9 cached" in bars[0][0]


def test_fingerprint_is_the_same_in_other_processes(problem):
    """Cache keys must survive a restart: str hashing is salted per process (PYTHONHASHSEED)."""
    import os
    import subprocess

    code = ("from ntk_mlft.problems import get_problem; from ntk_mlft.problems.datasets import solver_fingerprint; "
            f"print(solver_fingerprint(get_problem('elliptic-rough', **{SMALL!r}))['code'])")
    salt = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"  # not this process's salt
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": salt})
    assert out.stdout.strip() == solver_fingerprint(problem)["code"]
