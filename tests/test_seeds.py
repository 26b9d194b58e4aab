"""_seeds: named streams are SeedSequence spawn keys (stable, independent by name and index)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from ntk_mlft._seeds import STREAMS, derived_seed, seed_stream


def test_streams_are_spawn_keys_of_the_user_seed():
    ss = seed_stream(7, "level data", 2)
    ref = np.random.SeedSequence(7, spawn_key=(zlib.crc32(b"level data"), 2))
    np.testing.assert_array_equal(ss.generate_state(4), ref.generate_state(4))
    assert len({zlib.crc32(n.encode()) for n in STREAMS}) == len(STREAMS)   # no two names collide


def test_streams_differ_by_name_index_and_seed_and_are_reproducible():
    seeds = {derived_seed(s, n, *i) for s in (0, 1) for n in STREAMS for i in ((), (0,), (1,))}
    assert len(seeds) == 2 * len(STREAMS) * 3
    assert derived_seed(3, "test set") == derived_seed(3, "test set")
    assert all(0 <= v < 2 ** 31 for v in seeds)
    a = np.random.default_rng(seed_stream(0, "monte carlo")).normal(size=2000)
    b = np.random.default_rng(seed_stream(0, "learning curves")).normal(size=2000)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.1                              # 4.5 standard errors


def test_unknown_name_and_bad_seed_are_refused():
    with pytest.raises(ValueError, match="stream name must be one of"):
        seed_stream(0, "misc")
    with pytest.raises(ValueError, match="seed must be >= 0"):
        seed_stream(-1, "test set")
