"""Parameter groups and freeze masks for ``stax`` networks.

A ``stax.serial`` network's params are a sequence with one entry per layer (``()`` for layers
without parameters). The groups are the parameterised layers in order, named ``"layer1"``,
``"layer2"``, ... (parameter-free layers are skipped) — the same split as the per-layer NTK
``Θ = Σ_groups J_g J_gᵀ``. A mask is a pytree of Python bools shaped like the params (``True`` =
trainable), in the spirit of optax's ``masked``: freezing a group is a mask, not a new optimiser.
Frozen leaves are restored from the previous params after every step, so they stay bitwise equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

__all__ = ["apply_mask", "make_mask", "parameter_groups"]

PyTree = Any


def _layer_entries(params: PyTree) -> list[tuple[int, str]]:
    if not isinstance(params, (list, tuple)):
        raise TypeError("params must be a stax.serial params sequence (list/tuple, one entry per "
                        f"layer); got {type(params).__name__}")
    out, k = [], 0
    for i, entry in enumerate(params):
        if jax.tree.leaves(entry):
            k += 1
            out.append((i, f"layer{k}"))
    return out


def parameter_groups(params: PyTree) -> tuple[str, ...]:
    """Names of the parameterised layers, input to output: ``("layer1", ..., "layerK")``."""
    return tuple(name for _, name in _layer_entries(params))


def make_mask(params: PyTree, trainable: Sequence[str] | None = None) -> PyTree:
    """Pytree of bools like ``params``: ``True`` on the leaves of the ``trainable`` groups
    (all groups when ``None``). Unknown group names raise ``ValueError``."""
    entries = _layer_entries(params)
    names = [n for _, n in entries]
    if trainable is None:
        chosen = set(names)
    else:
        if isinstance(trainable, str):
            raise TypeError(f"trainable must be a sequence of group names; got the string {trainable!r}")
        chosen = set(trainable)
        unknown = sorted(chosen - set(names))
        if unknown:
            raise ValueError(f"trainable has unknown group(s) {unknown}; allowed: {names}")
        if not chosen:
            raise ValueError("trainable must name at least one group")
    index_to_name = dict(entries)
    return type(params)(
        jax.tree.map(lambda _: index_to_name.get(i) in chosen, entry)
        for i, entry in enumerate(params))


def apply_mask(new_params: PyTree, old_params: PyTree, mask: PyTree) -> PyTree:
    """Take ``new_params`` where ``mask`` is True and ``old_params`` (unchanged) elsewhere."""
    return jax.tree.map(lambda m, new, old: new if m else old, mask, new_params, old_params)
