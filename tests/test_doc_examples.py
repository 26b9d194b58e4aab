"""The public API examples in module docstrings run (doctest) and print what they show.

The README's Python blocks run in ``tests/test_readme_commands.py`` (the allocation example in the
fast tier, the JAX kernel and estimator examples in the slow tier)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ("ntk_mlft._checks", "ntk_mlft._seeds", "ntk_mlft.allocation._search", "ntk_mlft.allocation.rules",
           "ntk_mlft.studies.error_model", "ntk_mlft.training.loop", "ntk_mlft.stax", "ntk_mlft.problems")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0, result
