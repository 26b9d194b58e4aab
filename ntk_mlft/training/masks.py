"""Trainable parameter groups and freeze masks, on the same partition as the per-layer NTK.

The groups are exactly those of :func:`ntk_mlft.empirical.resolve_groups` (and so of
:func:`ntk_mlft.empirical.empirical_ntk_by_group`): by default one group per parameterised entry
of a ``stax.serial`` params sequence, named ``"layer_00_Dense"``, ``"layer_03_Dense"``, ... after
its stax index (parameter-free layers have no group), and any ``groups`` specification accepted
there (dict of predicates / top-level indices, or a params-shaped tree of labels) is accepted
here. Training only the groups ``G`` therefore has the NTK ``Θ_G = Σ_{g ∈ G} Θ_g`` with ``Θ_g`` the
per-group kernels of ``empirical_ntk_by_group`` — the kernel of "re-train only these layers".

A mask is a pytree of Python bools shaped like the params (``True`` = trainable), in the spirit
of optax's ``masked``: freezing a group is a mask, not a new optimiser. :func:`partition` and
:func:`combine` split the leaves (``jax.tree.leaves`` order) into the trainable ones, which the
optimiser sees, and the frozen ones, which are put back unchanged (bitwise) around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from ..empirical import resolve_groups

__all__ = ["apply_mask", "combine", "make_mask", "parameter_groups", "partition"]

PyTree = Any


def parameter_groups(params: PyTree, groups: Any = None) -> tuple[str, ...]:
    """Names of the parameter groups of ``params`` in order, as in
    :func:`ntk_mlft.empirical.resolve_groups` (e.g. ``("layer_01_Dense", ..., "layer_07_Dense")``
    for ``mlp-relu-3``, whose stax index 0 is the parameter-free ``Flatten``)."""
    return tuple(resolve_groups(params, groups))


def make_mask(params: PyTree, trainable: Sequence[str] | None = None, groups: Any = None) -> PyTree:
    """Pytree of bools like ``params``: ``True`` on the leaves of the ``trainable`` groups (all
    groups when ``None``); ``groups`` as in :func:`ntk_mlft.empirical.resolve_groups`.

    Raises ``TypeError`` for a bare string and ``ValueError`` for unknown or no group names."""
    members = resolve_groups(params, groups)
    if trainable is None:
        chosen = set(members)
    else:
        if isinstance(trainable, str):
            raise TypeError(f"trainable must be a sequence of group names; got the string {trainable!r}")
        chosen = set(trainable)
        unknown = sorted(map(str, chosen - set(members)))
        if unknown:
            raise ValueError(f"trainable has unknown group(s) {unknown}; allowed: {list(members)}")
        if not chosen:
            raise ValueError("trainable must name at least one group")
    leaves, treedef = jax.tree.flatten(params)
    flags = [False] * len(leaves)
    for name in chosen:
        for j in members[name]:
            flags[j] = True
    return jax.tree.unflatten(treedef, flags)


def partition(params: PyTree, mask: PyTree) -> tuple[list, list]:
    """``(trainable leaves, frozen leaves)`` of ``params`` (lists, ``jax.tree.leaves`` order)."""
    leaves = jax.tree.leaves(params)
    flags = jax.tree.leaves(mask)
    if len(flags) != len(leaves):
        raise ValueError(f"mask must have one bool per parameter leaf; got {len(flags)} for "
                         f"{len(leaves)} leaves")
    return ([w for w, m in zip(leaves, flags) if m], [w for w, m in zip(leaves, flags) if not m])


def combine(treedef: Any, flags: Sequence[bool], trainable: Sequence, frozen: Sequence) -> PyTree:
    """Inverse of :func:`partition`: the params pytree with ``treedef`` whose leaf ``j`` is the next
    trainable leaf where ``flags[j]`` and the next frozen leaf otherwise."""
    it_t, it_f = iter(trainable), iter(frozen)
    return jax.tree.unflatten(treedef, [next(it_t) if m else next(it_f) for m in flags])


def apply_mask(new_params: PyTree, old_params: PyTree, mask: PyTree) -> PyTree:
    """Take ``new_params`` where ``mask`` is True and ``old_params`` (unchanged) elsewhere."""
    return jax.tree.map(lambda m, new, old: new if m else old, mask, new_params, old_params)
