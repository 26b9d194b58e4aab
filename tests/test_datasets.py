"""generate(): seeds (independent / paired / prefix), cache reuse, provenance, bad input, NaN
reports. Damaged chunks, cache keys, executors, interruption, progress: tests/test_datasets_cache.py."""


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


def test_independent_levels_shapes_and_labels(problem):
    d = generate(problem, [6, 4, 2], seed=3, chunk_size=4)
    assert d.counts == (6, 4, 2) and d.n_levels == 3
    for level, (x, y) in enumerate(zip(d.inputs, d.outputs), start=1):
        assert x.shape == (len(x), 32) and y.shape == (len(x), 8)
        np.testing.assert_array_equal(y, problem.solve(x, level))  # labels are the level-l solutions
    assert not np.allclose(d.inputs[0][:2], d.inputs[1][:2])  # independent streams per level


def test_paired_same_inputs_and_prefix_property(problem):
    d = generate(problem, [5, 5, 3], seed=1, paired=True, chunk_size=2)
    np.testing.assert_array_equal(d.inputs[0], d.inputs[1])
    np.testing.assert_array_equal(d.inputs[2], d.inputs[0][:3])
    big = generate(problem, [9, 2, 1], seed=1, chunk_size=4)
    small = generate(problem, [4, 1, 1], seed=1, chunk_size=3)
    np.testing.assert_array_equal(big.inputs[0][:4], small.inputs[0])  # chunking-independent prefix
    other = generate(problem, [4, 1, 1], seed=2)
    assert not np.allclose(other.inputs[0], small.inputs[0])


def test_provenance(problem):
    d = generate(problem, [2, 2, 2], seed=5, paired=True)
    prov = d.provenance
    assert prov["problem"] == problem.params and prov["seed"] == 5 and prov["paired"] is True
    assert prov["counts"] == [2, 2, 2] and prov["grids"] == [16, 32, 64]
    assert {"numpy", "scipy", "python", "ntk_mlft"} <= set(prov["versions"])
    assert prov["order"] == problem.order and prov["difference_rate"] == problem.difference_rate
    assert prov["solver"]["solver_version"] == problem.solver_version and len(prov["solver"]["code"]) == 64


def test_paired_unequal_counts_are_nested_prefixes(problem):
    d = generate(problem, [6, 4, 2], seed=8, paired=True, chunk_size=4)
    np.testing.assert_array_equal(d.inputs[1], d.inputs[0][:4])
    np.testing.assert_array_equal(d.inputs[2], d.inputs[0][:2])
    for level in (1, 2, 3):
        np.testing.assert_array_equal(d.outputs[level - 1], problem.solve(d.inputs[level - 1], level))


def test_cache_reused_and_deleted_chunk_regenerated(problem, tmp_path, monkeypatch):
    first = generate(problem, [6, 2, 2], seed=0, cache_dir=tmp_path, chunk_size=2)
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 5
    fingerprint = solver_fingerprint(problem)  # pinned: patching the class changes its code hash
    monkeypatch.setattr(datasets, "solver_fingerprint", lambda p: fingerprint)

    def boom(self, inputs, level):  # everything cached: the solver must not be called again
        raise AssertionError("solver called despite a complete cache")
    with monkeypatch.context() as m:
        m.setattr(type(problem), "solve", boom)
        again = generate(problem, [6, 2, 2], seed=0, cache_dir=tmp_path, chunk_size=2)
    for a, b in zip(first.outputs, again.outputs):
        np.testing.assert_array_equal(a, b)

    sorted(tmp_path.glob("elliptic-rough-level1-*.npz"))[1].unlink()
    calls = []
    original = type(problem).solve

    def counting(self, inputs, level):
        calls.append((level, len(inputs)))
        return original(self, inputs, level)
    with monkeypatch.context() as m:
        m.setattr(type(problem), "solve", counting)
        third = generate(problem, [6, 2, 2], seed=0, cache_dir=tmp_path, chunk_size=2)
    assert calls == [(1, 2)]
    for a, b in zip(first.outputs, third.outputs):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments(problem):
    with pytest.raises(ValueError, match=r"one sample count per level \(3 levels\)"):
        generate(problem, [1, 2], seed=0)
    with pytest.raises(ValueError, match=r"counts_per_level\[1\] \(level 2\) must be >= 1; got 0"):
        generate(problem, [3, 0, 1], seed=0)
    with pytest.raises(ValueError, match="must be >= 1; got -2"):
        generate(problem, [-2, 1, 1], seed=0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        generate(problem, [1, 1, 1], seed=-1)
    with pytest.raises(TypeError, match="problem must be a Problem"):
        generate("elliptic-rough", [1, 1, 1], seed=0)
    with pytest.raises(TypeError, match="executor must be a concurrent.futures.Executor"):
        generate(problem, [1, 1, 1], seed=0, executor=object())


def test_nan_output_reports_sample_and_seed():
    p = NaNAbove(threshold=1.5)  # two levels
    xs = np.stack([p.sample_inputs(np.random.default_rng(np.random.SeedSequence(7, spawn_key=(1, i))), 1)[0]
                   for i in range(40)])
    bad = int(np.flatnonzero(xs[:, 0] > 1.5)[0])
    with pytest.raises(ValueError, match=rf"sample {bad} of level 1 \(seed=7, paired=False\)"):
        generate(p, [40, 1], seed=7, chunk_size=8)


