"""Named random streams derived from one user seed.

Contract: ``seed_stream(seed, name, *index)`` is ``np.random.SeedSequence(seed, spawn_key=(crc32(name),
*index))``: for one ``seed``, streams with different names (or indices) are statistically
independent, and adding a new name never shifts an existing stream (unlike literal offsets such as
``seed + 7``). ``name`` must be one of :data:`STREAMS`, so every purpose of randomness in the
package is listed here. :func:`derived_seed` turns a stream into an integer in ``0..2**31 - 1`` for
APIs that take an integer seed (``problems.generate``, ``jax.random.key``,
``estimators.montecarlo_error``). See ``docs/design.md`` (Conventions: randomness).
"""

from __future__ import annotations

import zlib

import numpy as np

from ntk_mlft._checks import check_choice, check_positive_int

__all__ = ["STREAMS", "derived_seed", "seed_stream"]

STREAMS = (
    "unlabeled inputs",   # studies.error_model.unlabeled_inputs: cheap inputs for the estimator's pool
    "check pool",         # studies.error_model.check_pool: independent labelled pool for Monte-Carlo checks
    "test set",           # studies.trained_networks: held-out finest-level test inputs
    "level data",         # studies.trained_networks: training sets per seed (index: the seed)
    "monte carlo",        # cli.demo: Monte-Carlo check of the allocations
    "learning curves",    # cli.demo: Monte-Carlo check of the learning curves
    "self check",         # cli.demo: Monte-Carlo consistency check on the pilot pairs
)
"""Every named stream; a new purpose adds a name (existing streams stay as they are)."""


def seed_stream(seed: int, name: str, *index: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of stream ``name`` (one of :data:`STREAMS`) under user seed ``seed``
    (>= 0), optionally sub-indexed by non-negative integers ``index``."""
    seed = check_positive_int("seed", seed, allow_zero=True)
    check_choice("stream name", name, STREAMS)
    key = (zlib.crc32(name.encode()), *(check_positive_int("stream index", i, allow_zero=True) for i in index))
    return np.random.SeedSequence(seed, spawn_key=key)


def derived_seed(seed: int, name: str, *index: int) -> int:
    """An integer seed in ``0..2**31 - 1`` drawn from :func:`seed_stream` (for integer-seed APIs).

    >>> derived_seed(0, "test set") == derived_seed(0, "test set") != derived_seed(0, "check pool")
    True
    >>> 0 <= derived_seed(5, "level data", 3) < 2 ** 31
    True
    """
    return int(seed_stream(seed, name, *index).generate_state(1, np.uint32)[0] >> 1)
