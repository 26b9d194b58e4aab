"""measure_costs: the statistic (minimum over interleaved repeats of autoranged batch timings),
warm-up, batch sizes and refusal of non-increasing tables -- on a fake clock, so every expected
number is exact (no timing assertion), plus one real-clock check that can only fail if the
timer under-reports (sleep never returns early)."""

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from toy_problems import GaussianInputs

from ntk_mlft.allocation.costs import CostTable
from ntk_mlft.problems import measure_costs, timing


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


CLOCK = FakeClock()
CALLS: list[tuple[int, int]] = []  # (level, batch size) of every solve


@dataclass(frozen=True)
class _Scripted(GaussianInputs):
    """A solve of b samples at level l advances the fake clock by b * COST[l] * LOAD[k mod len]
    (k = call number): a known per-sample cost under a known, varying machine load."""

    name: ClassVar[str] = "scripted"
    COST: ClassVar[dict] = {}
    LOAD: ClassVar[tuple] = (1.0,)
    INPUT_DIM: ClassVar[int] = 1
    levels: int = 3

    def _solve_one(self, x, n_cells):
        raise AssertionError("solved as a batch")

    def _solve_batch(self, x, n_cells):
        level = int(np.log2(n_cells // self.n_coarse)) + 1
        CLOCK.now += len(x) * self.COST[level] * self.LOAD[len(CALLS) % len(self.LOAD)]
        CALLS.append((level, len(x)))
        return x


@pytest.fixture
def scripted(monkeypatch):
    CLOCK.now = 0.0
    CALLS.clear()
    monkeypatch.setattr(timing, "perf_counter", CLOCK)
    return _Scripted


def test_minimum_over_interleaved_repeats_of_batch_timings(scripted, monkeypatch):
    monkeypatch.setattr(scripted, "COST", {1: 1e-4, 2: 4e-4, 3: 1.6e-3})
    monkeypatch.setattr(scripted, "LOAD", (1.0, 1.0, 3.0, 1.5, 2.0, 1.25))  # a busy machine
    table = measure_costs(scripted(n_coarse=4), repeats=4, n_samples=8, min_time=0.0)
    assert isinstance(table, CostTable)
    np.testing.assert_array_equal(table.grid, [4, 8, 16])
    # warm-up: 1 sample, then the batch, per level; then repeats interleaved across levels
    assert CALLS[:6] == [(1, 1), (1, 8), (2, 1), (2, 8), (3, 1), (3, 8)]
    assert CALLS[6:] == [(1, 8), (2, 8), (3, 8)] * 4
    loads = [scripted.LOAD[k % 6] for k in range(6, 18)]
    expected = [min(loads[lv::3]) * scripted.COST[lv + 1] for lv in range(3)]
    np.testing.assert_allclose(table.cost_seconds, expected, rtol=1e-12)


def test_autorange_divides_by_all_samples_solved(scripted, monkeypatch):
    monkeypatch.setattr(scripted, "COST", {1: 1e-3, 2: 2e-3, 3: 4e-3})
    table = measure_costs(scripted(n_coarse=4), repeats=1, n_samples=4, min_time=0.05)
    # level 1: 4 ms per call -> 13 calls reach 52 ms; per sample 52 ms / 52 = 1 ms exactly
    assert CALLS[6:].count((1, 4)) == 13
    np.testing.assert_allclose(table.cost_seconds, [1e-3, 2e-3, 4e-3], rtol=1e-12)


def test_expensive_level_timed_on_a_smaller_batch(scripted, monkeypatch):
    monkeypatch.setattr(scripted, "COST", {1: 1e-3, 2: 1e-2, 3: 0.3})
    table = measure_costs(scripted(n_coarse=4), repeats=2, n_samples=32, min_time=0.0, max_batch_time=1.0)
    sizes = {lv: {b for (level, b) in CALLS[6:] if level == lv} for lv in (1, 2, 3)}
    assert sizes == {1: {32}, 2: {32}, 3: {3}}  # floor(1.0 s / 0.3 s) = 3 samples at level 3
    np.testing.assert_allclose(table.cost_seconds, [1e-3, 1e-2, 0.3], rtol=1e-12)


def test_refuses_non_increasing_table(scripted, monkeypatch):
    monkeypatch.setattr(scripted, "COST", {1: 2e-3, 2: 1e-3, 3: 4e-3})
    with pytest.raises(ValueError, match=r"not strictly increasing.*level 1 \(grid 4\): 0.002 s.*cost table CSV"):
        measure_costs(scripted(n_coarse=4), repeats=1, n_samples=2, min_time=0.0)


def test_bad_arguments(scripted):
    p = scripted(n_coarse=4)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        measure_costs(p, repeats=0)
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        measure_costs(p, n_samples=0)
    with pytest.raises(ValueError, match="max_batch_time must be finite and > 0"):
        measure_costs(p, max_batch_time=0.0)
    with pytest.raises(TypeError, match="problem must be a Problem"):
        measure_costs("elliptic-rough")


@dataclass(frozen=True)
class _Sleeper(GaussianInputs):
    """Solve time >= 2 ms * n_cells / n_coarse per sample (sleep never returns early)."""

    name: ClassVar[str] = "sleeper"
    INPUT_DIM: ClassVar[int] = 1
    levels: int = 3

    def _solve_one(self, x, n_cells):
        time.sleep(0.002 * n_cells / self.n_coarse)
        return x


def test_real_clock_cost_is_at_least_the_slept_time():
    table = measure_costs(_Sleeper(n_coarse=4, refinement=2), repeats=2, n_samples=2, min_time=0.0)
    assert np.all(table.cost_seconds >= np.array([0.002, 0.004, 0.008]))  # no upper bound: a busy machine
