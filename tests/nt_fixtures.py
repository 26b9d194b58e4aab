"""Shared helpers for the neural-tangents fixture tests (``tests/test_*_vs_nt.py``).

The fixtures are written by ``tests/fixtures/make_nt_fixtures.py`` under neural-tangents 0.6.5
(see ``tests/fixtures/README.md``); ``build`` mirrors the builder there, with our ``stax``.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from ntk_mlft import stax

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def load(name: str) -> dict:
    """All arrays of ``tests/fixtures/<name>`` (the file must exist: it is committed)."""
    with np.load(os.path.join(FIXTURES, name), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def build(spec):
    """``(init_fn, apply_fn, kernel_fn)`` of a JSON spec with ``ntk_mlft.stax`` layers."""
    name, arg = spec
    if name in ("serial", "parallel"):
        return getattr(stax, name)(*[build(s) for s in arg])
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in arg.items()}
    return getattr(stax, name)(**kwargs)


def spec_of(data: dict, prefix: str):
    return json.loads(data[prefix + "spec"].item())


def nt_params(data: dict, prefix: str, treedef):
    """NT's params (stored leaves) unflattened with ``treedef`` (ours, checked equal first)."""
    n = int(data[prefix + "params_n_leaves"])
    leaves = [data[f"{prefix}params_leaf{i}"] for i in range(n)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def rel_err(ours, ref) -> float:
    """max |ours - ref| / max |ref| (shapes must agree)."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    scale = np.max(np.abs(ref))
    return float(np.max(np.abs(ours - ref)) / (scale if scale > 0 else 1.0))
