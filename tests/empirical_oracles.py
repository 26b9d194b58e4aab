"""Brute-force oracles for the empirical-kernel tests (``tests/test_empirical*.py``).

The NTK by definition: ``jax.jacobian`` of the output with respect to every parameter leaf,
flattened and contracted with ``numpy``, then reduced over output axis pairs by
:func:`reference_reduce` (an implementation independent of ``ntk_mlft.empirical._axes``: transpose
into pairs, then ``np.trace`` / ``np.diagonal`` pair by pair).
"""

from __future__ import annotations

import jax
import numpy as np


def reference_reduce(full, n_out, trace, diag):
    """Zip ``(*O1, *O2)`` into ``(o1_0, o2_0, o1_1, o2_1, ...)``, then reduce axis pairs from the
    last output axis to the first: traced pairs -> mean of the diagonal, diagonal pairs -> one
    axis kept in place."""
    order = [a for i in range(n_out) for a in (i, n_out + i)]
    k = np.transpose(full, order)
    for i in reversed(range(n_out)):
        if i in trace:
            k = np.trace(k, axis1=2 * i, axis2=2 * i + 1) / full.shape[i]
        elif i in diag:
            k = np.moveaxis(np.diagonal(k, axis1=2 * i, axis2=2 * i + 1), -1, 2 * i)
    return k


def canon(axes, n):
    """Non-negative, sorted axes."""
    return tuple(sorted(a % n for a in axes))


def jacobian_blocks(f, params, xs):
    """For each input in ``xs``: per output leaf, the list over parameter leaves of
    ``d f(params, x) / d leaf`` as float64 arrays ``(*out_shape, leaf.size)`` (one jit)."""
    flat, treedef = jax.tree.flatten(params)

    def g(leaves, x):
        return f(jax.tree.unflatten(treedef, leaves), x)

    jacs = jax.jit(lambda leaves: [jax.jacobian(g)(leaves, x) for x in xs])(flat)
    out = []
    for x, jac in zip(xs, jacs):
        shapes = [np.shape(o) for o in jax.tree.leaves(jax.eval_shape(g, flat, x))]
        per_out = jax.tree.structure(jax.eval_shape(g, flat, x)).flatten_up_to(jac)
        out.append([[np.asarray(j, np.float64).reshape(s + (-1,)) for j in blocks]
                    for s, blocks in zip(shapes, per_out)])
    return out


def ntk_from_blocks(blocks1, blocks2, trace_axes, diagonal_axes, leaves=None):
    """``J(x1) J(x2)^T`` per output leaf from :func:`jacobian_blocks`, restricted to the
    parameter leaves with indices ``leaves`` (all when ``None``)."""
    result = []
    for b1, b2 in zip(blocks1, blocks2):
        idx = range(len(b1)) if leaves is None else leaves
        j1 = np.concatenate([b1[i] for i in idx], -1)
        j2 = np.concatenate([b2[i] for i in idx], -1)
        n = j1.ndim - 1
        full = np.tensordot(j1, j2, axes=([n], [n]))
        result.append(reference_reduce(full, n, canon(trace_axes, n), canon(diagonal_axes, n)))
    return result


def brute_ntk(f, params, x1, x2, trace_axes, diagonal_axes, leaves=None):
    """``J(x1) J(x2)^T`` (``x2=None``: ``x2 = x1``) of an array-valued ``f``, optionally only
    over the parameter leaves with indices ``leaves`` (the others frozen)."""
    xs = [x1] if x2 is None else [x1, x2]
    blocks = jacobian_blocks(f, params, xs)
    (ntk,) = ntk_from_blocks(blocks[0], blocks[-1], trace_axes, diagonal_axes, leaves)
    return ntk
