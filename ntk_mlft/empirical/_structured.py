"""Structured-derivative empirical NTK of ``ntk_mlft.stax`` networks (``implementation=3``).

Every parameterised ``stax`` layer (``Dense``, ``Conv``) is linear in its parameters: for each
example ``i`` and output position ``p``

    z[i, p, :] = w_scale * u[i, p, :] @ W + b_scale * b,                     W: (A, B), b: (B,)

with ``u`` the layer input (``Dense``; ``P`` = positions other than batch and features) or its
patches (``Conv``; ``A = C_in * prod(filter_shape)``, ``P`` = output positions), see
``kernels._layer.LinearTap``. Let ``d[i, o, p, :] = d f(x_i)_o / d z[i, p, :]`` (shape
``(N, *O, P, B)``, ``O`` the per-example output shape) be the cotangent of the layer output. Then
``df(x_i)_o / dW = w_scale sum_p u[i, p] (x) d[i, o, p]`` and ``df(x_i)_o / db = b_scale sum_p
d[i, o, p]``, so the layer's share of ``Theta = J(x1) J(x2)^T`` never needs the Jacobian:

    Theta_W[i, j, o, o'] = w_scale^2 sum_{p, q} (u1[i, p] . u2[j, q]) (d1[i, o, p] . d2[j, o', q]),
    Theta_b[i, j, o, o'] = b_scale^2 (sum_p d1[i, o, p]) . (sum_q d2[j, o', q]),

(for ``Dense`` on flat inputs, ``P = 1``: ``Theta_W = w_scale^2 (u1 u2^T) * (d1 d2^T)``, the
Gram-matrix form). Output axes are traced / kept diagonal / zipped exactly as in
``ntk_mlft.empirical`` (``_ntk_axes``), any ``trace_axes``/``diagonal_axes``. When the Gram form
costs more than forming the per-example Jacobian ``sum_p u[i, p] (x) d[i, o, p]`` (convolutions
with many positions), the latter is formed and contracted instead; both are exact and the choice
is made per layer from the operation counts (``_gram_is_cheaper``).

All cotangents come from ONE forward pass with an additive zero probe at every linear layer's
output and ``|O|`` vector-Jacobian products (one per per-example output entry, vmapped), each
with the same cotangent on every example. That gives ``d f(x_i)_o / d z[i]`` only because the
examples are independent: ``f(x_i)`` does not depend on ``x_k`` for ``k != i`` (the assumption
``vmap_axes=0`` certifies for other functions). Every ``stax`` layer acts on each example on its
own, and configurations with the batch elsewhere than axis 0 (``Flatten(batch_axis_out=1)``,
...) raise ``UnsupportedStructure``, so for ``stax`` networks the result equals ``J J^T``
exactly (float round-off), whatever ``vmap_axes`` says.

Cost for an MLP of widths ``n_l``: one forward and ``|O|`` backward passes plus, per layer,
``N1 N2 (n_in + |O| n_out)`` multiply-adds: no ``O(N |O| P)`` Jacobian ever exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from ntk_mlft.kernels import ApplyFn, LinearTap, UnsupportedStructure

from ._axes import (
    axes_for,
    check_paired_shapes,
    contract,
    kernel_shape,
    pair_labels,
    symmetric_contract,
)

__all__ = ["check_supported", "structured_ntk_terms", "UnsupportedStructure"]


def check_supported(f: Callable, vmap_axes: Any) -> None:
    """``ValueError`` unless ``f`` is an ``apply_fn`` of ``ntk_mlft.stax`` with batch axis 0."""
    if not isinstance(f, ApplyFn):
        raise ValueError(
            "implementation=STRUCTURED_DERIVATIVES needs an apply_fn built by ntk_mlft.stax (it "
            f"reads the layers' structure); got {f!r}. For any other function use "
            "JACOBIAN_CONTRACTION or NTK_VECTOR_PRODUCTS (or AUTO, which falls back to them).")
    axes = vmap_axes if isinstance(vmap_axes, tuple) else (vmap_axes, vmap_axes)
    if any(a not in (None, 0) for a in axes[:2]):
        raise ValueError(
            "implementation=STRUCTURED_DERIVATIVES treats axis 0 of x and of f(x) as the batch "
            f"(stax networks); got vmap_axes={vmap_axes!r}. Use vmap_axes=None or 0, or "
            "JACOBIAN_CONTRACTION.")


def _taps(layer, params, x, kwargs) -> list[tuple[LinearTap, jax.ShapeDtypeStruct]]:
    """Static description of every linear layer, in call order (one trace, no computation)."""
    found = []

    def tap(rec: LinearTap, z):
        found.append((rec, jax.ShapeDtypeStruct(z.shape, z.dtype)))
        return z

    jax.eval_shape(lambda p, a: layer.tapped(p, a, tap, (), **kwargs), params, x)
    return found


def _cotangents(layer, params, x, kwargs, taps):
    """``(u_l, d_l per output leaf, output treedef, output leaves)`` for input ``x``.

    ``u_l``: ``(N, P, A)``; ``d[k][l]``: ``(N, *O_k, P, B)`` for output leaf ``k``.
    """
    probes = [jnp.zeros(sd.shape, sd.dtype) for _, sd in taps]

    def forward(probe_values):
        inputs = []

        def tap(rec: LinearTap, z):
            inputs.append(rec.inputs)
            return z + probe_values[len(inputs) - 1]

        return layer.tapped(params, x, tap, (), **kwargs), inputs

    out, vjp_fn, inputs = jax.vjp(forward, probes, has_aux=True)
    leaves, o_def = jax.tree.flatten(out)
    n = jax.tree.leaves(x)[0].shape[0]
    per_leaf = []
    for k, leaf in enumerate(leaves):
        if leaf.ndim < 1 or leaf.shape[0] != n:
            raise UnsupportedStructure(f"{layer.name}: output leaf of shape {leaf.shape} does "
                                       f"not have the batch ({n}) on axis 0")
        o_shape = leaf.shape[1:]
        size = math.prod(o_shape)
        basis = jnp.eye(size, dtype=leaf.dtype).reshape((size,) + o_shape)

        def pull(e, k=k, leaf=leaf):
            cts = [jnp.zeros_like(v) for v in leaves]
            cts[k] = jnp.broadcast_to(e, leaf.shape)
            return vjp_fn(o_def.unflatten(cts))[0]

        grads = jax.vmap(pull)(basis)                   # per tap: (|O|, N, *z.shape[1:])
        ds = []
        for g, (rec, sd) in zip(grads, taps):
            g = jnp.moveaxis(jnp.moveaxis(g, 0, 1), 1 + rec.channel_axis, -1)
            ds.append(g.reshape((n,) + o_shape + (-1, sd.shape[rec.channel_axis])))
        per_leaf.append(ds)
    return inputs, per_leaf, o_def, leaves


def _gram_is_cheaper(n1, n2, o_shape, trace, diag, p, a, b) -> bool:
    """Multiply-adds of the Gram form vs. forming per-example Jacobians (module docstring)."""
    batch_pairs = n1 if (0 in trace or 0 in diag) else n1 * n2
    o_pairs = math.prod(s if (i + 1 in trace or i + 1 in diag) else s * s
                        for i, s in enumerate(o_shape))
    o_num = math.prod(o_shape)
    gram = batch_pairs * p * p * (a + o_pairs * (b + 1))
    jacobian = (n1 + n2) * o_num * p * a * b + batch_pairs * o_pairs * a * b
    return p == 1 or gram <= jacobian


def _layer_terms(u1, d1, u2, d2, rec: LinearTap, trace, diag, same: bool):
    """``(Theta_W, Theta_b or None)`` of one linear layer for one output leaf."""
    n_out = d1.ndim - 2                                  # batch + per-example output axes
    paired = [i for i in range(n_out) if i not in trace and i not in diag]
    n_pos, width = u1.shape[1], u1.shape[2]
    if n_pos == 1 and 0 in paired:
        # Dense on flat inputs, batch pair kept: (u1 u2^T) * (d1 . d2), plain matrix products
        def cross(a, b):
            if same and len(paired) == 1:
                return symmetric_contract(a, a.ndim - 1, (), (), 0)
            return contract(a, b, 1, (), ())
        gu = cross(u1[:, 0], u2[:, 0])
        gd = (symmetric_contract(d1[..., 0, :], n_out, trace, diag, 0) if same and paired == [0]
              else contract(d1[..., 0, :], d2[..., 0, :], n_out, trace, diag))
        gu = gu.reshape(gu.shape + (1,) * (gd.ndim - 2))
        theta_b = None if rec.b_scale is None else gd * rec.b_scale ** 2
        return gu * gd * rec.w_scale ** 2, theta_b
    lab1, lab2, out = pair_labels(n_out, trace, diag)
    p, q, a, b = (2 * n_out + i for i in range(4))
    traced = math.prod(d1.shape[i] for i in trace)
    if _gram_is_cheaper(u1.shape[0], u2.shape[0], d1.shape[1:-2], trace, diag, n_pos, width,
                        d1.shape[-1]):
        batch = [lab1[0]] + ([lab2[0]] if lab2[0] != lab1[0] else [])
        keep = out if lab1[0] in out else [lab1[0]] + out   # batch stays until the product
        gu = jnp.einsum(u1, [lab1[0], p, a], u2, [lab2[0], q, a], batch + [p, q])
        gd = jnp.einsum(d1, lab1 + [p, b], d2, lab2 + [q, b], keep + [p, q])
        theta_w = jnp.einsum(gu, batch + [p, q], gd, keep + [p, q], out)
        theta_b = None if rec.b_scale is None else jnp.einsum(gd, keep + [p, q], out)
        theta_w = theta_w * (rec.w_scale ** 2 / traced)
        if theta_b is not None:
            theta_b = theta_b * (rec.b_scale ** 2 / traced)
        return theta_w, theta_b

    def jac(u, d):                                        # (N, *O, A * B)
        j = jnp.einsum(u, [lab1[0], p, a], d, lab1 + [p, b], lab1 + [a, b])
        return j.reshape(d.shape[:-2] + (-1,))

    j1 = jac(u1, d1)
    if same and len(paired) == 1:
        theta_w = symmetric_contract(j1, n_out, trace, diag, paired[0])
    else:
        theta_w = contract(j1, j1 if same else jac(u2, d2), n_out, trace, diag)
    theta_b = None
    if rec.b_scale is not None:
        theta_b = contract(d1.sum(-2), d2.sum(-2), n_out, trace, diag) * rec.b_scale ** 2
    return theta_w * rec.w_scale ** 2, theta_b


def structured_ntk_terms(f: ApplyFn, params, leaf_index: Mapping[tuple, int], x1, x2,
                         kw1: dict, kw2: dict, trace_axes, diagonal_axes):
    """Per output leaf ``(terms, zero)``, and the output treedef.

    ``leaf_index`` maps the key path of every parameter leaf (a tuple of plain ints/strings) to
    its index in ``jax.tree.leaves(params)``. ``terms`` maps a leaf's index to its share
    ``Theta_leaf`` in the layout of ``empirical_ntk_fn``'s result; ``zero`` is a zero kernel of
    that layout (the NTK of a network without parameters, or of a group no layer reads).
    ``x2=None`` means ``x2 = x1`` (cotangents computed once). Raises ``UnsupportedStructure`` for
    configurations that are not batch-first.
    """
    try:
        return _terms(f.layer, params, leaf_index, x1, x2, kw1, kw2, trace_axes, diagonal_axes)
    except UnsupportedStructure as err:
        raise UnsupportedStructure(f"{err}. Use implementation=JACOBIAN_CONTRACTION or "
                                   "NTK_VECTOR_PRODUCTS for this network") from None


def _terms(layer, params, index, x1, x2, kw1, kw2, trace_axes, diagonal_axes):
    same = x2 is None
    taps1 = _taps(layer, params, x1, kw1)
    u1, d1, o_def, out1 = _cotangents(layer, params, x1, kw1, taps1)
    if same:
        u2, d2, out2 = u1, d1, out1
    else:
        u2, d2, _, out2 = _cotangents(layer, params, x2, kw2, _taps(layer, params, x2, kw2))
    result = []
    for k, (leaf1, leaf2) in enumerate(zip(out1, out2)):
        trace, diag = axes_for(trace_axes, diagonal_axes, leaf1.ndim)
        check_paired_shapes(leaf1.shape, leaf2.shape, trace, diag)
        terms: dict[int, Any] = {}
        for l_idx, (rec, _) in enumerate(taps1):
            theta_w, theta_b = _layer_terms(u1[l_idx], d1[k][l_idx], u2[l_idx], d2[k][l_idx],
                                            rec, trace, diag, same)
            for suffix, theta in ((0, theta_w), (1, theta_b)):
                if theta is None:
                    continue
                key = rec.path + (suffix,)
                if key not in index:
                    raise ValueError(f"{rec.layer}: no parameter leaf at params path {key}; "
                                     "params do not belong to this network")
                terms[index[key]] = theta
        zero = jnp.zeros(kernel_shape(leaf1.shape, leaf2.shape, trace, diag), leaf1.dtype)
        result.append((terms, zero))
    return result, o_def
