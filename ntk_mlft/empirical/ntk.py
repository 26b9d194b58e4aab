"""Finite-width (empirical) NNGP and NTK of any JAX function (neural-tangents 0.6.5 contract).

``empirical_ntk_fn`` / ``empirical_nngp_fn`` / ``empirical_kernel_fn`` return
``Theta(x1, x2) = J(x1) J(x2)^T`` and ``K = f(x1) f(x2)^T`` with neural-tangents' shape rules:
``trace_axes`` (default ``(-1,)``) summed in pairs and divided by their size, ``diagonal_axes``
kept once, every other output axis twice, zipped; so an output ``(N, C)`` gives ``(N1, N2)``.
``empirical_ntk_by_group`` returns one ``Theta_g`` per parameter group (default: per layer), the
NTK of training only that group; they sum to ``Theta``.

Implementations (``NtkImplementation``, same names and values as neural-tangents):
``JACOBIAN_CONTRACTION`` (default), ``NTK_VECTOR_PRODUCTS``, ``STRUCTURED_DERIVATIVES`` (networks
built by ``ntk_mlft.stax`` only; anything else, or a layer that is not batch-first, is a
``ValueError`` naming the alternatives; details in ``ntk_mlft.empirical._structured``) and ``AUTO``
(structured where possible, else the one XLA's cost analysis gives fewer FLOPs). ``vmap_axes``
certifies that ``f`` acts independently on slices of ``x`` (``0`` for a batch-first network
without batch norm); ``None`` assumes nothing and is always correct.

Keyword arguments of ``ntk_fn(x1, x2, params, **apply_fn_kwargs)`` are passed to ``f``; as in
neural-tangents a tuple ``(v1, v2)`` gives ``v1`` to ``f(x1)`` and ``v2`` to ``f(x2)``, and an
``rng`` key is split in two when ``x2`` is given. Pytree outputs get one kernel per leaf.

Derivation (definition, per-group decomposition, the three implementations): ``docs/theory.md``
section 7. Speed: ``benchmarks/results/kernels.json`` and ``ntk_mlft/kernels/README.md``.
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from . import _structured
from ._axes import axes_for, check_paired_shapes, contract, reduce_full, symmetric_contract

__all__ = [
    "NtkImplementation",
    "empirical_kernel_fn",
    "empirical_nngp_fn",
    "empirical_ntk_by_group",
    "empirical_ntk_fn",
    "resolve_groups",
]

PyTree = Any


class NtkImplementation(enum.IntEnum):
    """How the empirical NTK is computed (values as in neural-tangents 0.6.5)."""

    AUTO = 0
    JACOBIAN_CONTRACTION = 1
    NTK_VECTOR_PRODUCTS = 2
    STRUCTURED_DERIVATIVES = 3


EmpiricalKernel = collections.namedtuple("EmpiricalKernel", ["nngp", "ntk"])

# ----------------------------------------------------------------------------------------------
# inputs, keyword arguments, vmap axes


def _split_kwargs(kwargs: Mapping[str, Any], has_x2: bool) -> tuple[dict, dict]:
    k1, k2 = {}, {}
    for k, v in kwargs.items():
        if k == "rng" and has_x2 and v is not None:
            k1[k], k2[k] = jax.random.split(v)
        elif isinstance(v, tuple) and len(v) == 2:
            k1[k], k2[k] = v
        else:
            k1[k] = k2[k] = v
    return k1, k2


def _parse_vmap_axes(vmap_axes):
    """``(in_axes, out_axes, kwargs_axes)`` or ``None``; an int means ``(a, a, {})``."""
    if vmap_axes is None:
        return None
    if isinstance(vmap_axes, tuple) and len(vmap_axes) == 3:
        x_axis, fx_axis, kw_axes = vmap_axes
    else:
        x_axis, fx_axis, kw_axes = vmap_axes, vmap_axes, {}
    if not isinstance(fx_axis, int) or not isinstance(x_axis, int):
        raise ValueError(f"vmap_axes: in_axes and out_axes must be ints; got {vmap_axes!r}")
    if not isinstance(kw_axes, Mapping):
        raise ValueError(f"vmap_axes: kwargs_axes must be a dict; got {kw_axes!r}")
    return x_axis, fx_axis, dict(kw_axes)


def _check_inputs(x1, x2, axis: int) -> None:
    if x1 is None:
        raise ValueError("x1 must be an array (or pytree of arrays); got None")
    if x2 is None:
        return
    l1, l2 = jax.tree.leaves(x1), jax.tree.leaves(x2)
    if len(l1) != len(l2):
        raise ValueError(f"x1 and x2 must have the same pytree structure; got {len(l1)} and "
                         f"{len(l2)} leaves")
    for a, b in zip(l1, l2):
        s1, s2 = tuple(jnp.shape(a)), tuple(jnp.shape(b))
        if len(s1) != len(s2):
            raise ValueError(f"x1 and x2 must have the same rank; got shapes {s1} and {s2}")
        ax = axis % len(s1) if s1 else 0
        if s1[:ax] + s1[ax + 1:] != s2[:ax] + s2[ax + 1:]:
            raise ValueError(f"x1 and x2 must agree on every axis but the batch axis {axis} "
                             f"(features); got shapes {s1} and {s2}")


class _Problem:
    """One call: ``f`` restricted to ``x1``/``x2`` as functions of the params, plus axes."""

    def __init__(self, f, x1, x2, kwargs, vmap_axes):
        self.vmap = _parse_vmap_axes(vmap_axes)
        _check_inputs(x1, x2, 0 if self.vmap is None else self.vmap[0])
        self.f, self.same = f, x2 is None
        self.x1, self.x2 = x1, x1 if x2 is None else x2
        self.kw1, self.kw2 = _split_kwargs(kwargs, not self.same)

    def fn(self, which: int) -> Callable[[PyTree], PyTree]:
        x, kw = (self.x1, self.kw1) if which == 1 else (self.x2, self.kw2)
        return lambda p: self.f(p, x, **kw)

    def jacobians(self, params, which: int) -> PyTree:
        """``J(x)``: an output-shaped tree of params-shaped trees of ``(*O, *p.shape)``."""
        x, kw = (self.x1, self.kw1) if which == 1 else (self.x2, self.kw2)
        if self.vmap is None:
            return jax.jacrev(lambda p: self.f(p, x, **kw))(params)
        x_axis, fx_axis, kw_axes = self.vmap
        batched = {k: v for k, v in kw.items() if k in kw_axes}
        static = {k: v for k, v in kw.items() if k not in kw_axes}

        def one(xi, bkw):
            xe = jax.tree.map(lambda a: jnp.expand_dims(a, x_axis), xi)
            bkw = {k: jax.tree.map(lambda a, ax=kw_axes[k]: jnp.expand_dims(a, ax), v)
                   for k, v in bkw.items()}

            def fp(p):
                out = self.f(p, xe, **bkw, **static)
                return jax.tree.map(lambda o: jnp.squeeze(o, fx_axis), out)

            return jax.jacrev(fp)(params)

        in_axes = (x_axis, {k: kw_axes[k] for k in batched})
        return jax.vmap(one, in_axes=in_axes, out_axes=fx_axis)(x, batched)


# ----------------------------------------------------------------------------------------------
# implementations


def _jc_per_leaf(problem: _Problem, params, trace_axes, diagonal_axes) -> list:
    """Per output leaf, the list over parameter leaves of ``J_l(x1) J_l(x2)^T`` (contracted)."""
    fx1 = jax.eval_shape(problem.fn(1), params)
    fx2 = fx1 if problem.same else jax.eval_shape(problem.fn(2), params)
    j1 = problem.jacobians(params, 1)
    j2 = j1 if problem.same else problem.jacobians(params, 2)
    o_def = jax.tree.structure(fx1)
    out1, out2 = jax.tree.leaves(fx1), jax.tree.leaves(fx2)
    j1s = o_def.flatten_up_to(j1)
    j2s = o_def.flatten_up_to(j2)
    result = []
    for s1, s2, ja, jb in zip(out1, out2, j1s, j2s):
        n = len(s1.shape)
        trace, diag = axes_for(trace_axes, diagonal_axes, n)
        check_paired_shapes(s1.shape, s2.shape, trace, diag)
        paired = [i for i in range(n) if i not in trace and i not in diag]
        terms = []
        for la, lb in zip(jax.tree.leaves(ja), jax.tree.leaves(jb)):
            la = la.reshape(s1.shape + (-1,))
            if problem.same and len(paired) == 1:
                terms.append(symmetric_contract(la, n, trace, diag, paired[0]))
            else:
                terms.append(contract(la, lb.reshape(s2.shape + (-1,)), n, trace, diag))
        result.append(terms)
    return result, o_def


def _ntk_jc(problem: _Problem, params, trace_axes, diagonal_axes):
    per_leaf, o_def = _jc_per_leaf(problem, params, trace_axes, diagonal_axes)
    return o_def.unflatten([sum(terms[1:], terms[0]) for terms in per_leaf])


def _sd_per_leaf(problem: _Problem, params, trace_axes, diagonal_axes):
    """Structured derivatives (``ntk_mlft.empirical._structured``): per output leaf ``(terms, zero)``."""
    index = {path: j for j, path in enumerate(_leaf_paths(params))}
    return _structured.structured_ntk_terms(
        problem.f, params, index, problem.x1, None if problem.same else problem.x2, problem.kw1,
        problem.kw2, trace_axes, diagonal_axes)


def _ntk_sd(problem: _Problem, params, trace_axes, diagonal_axes):
    per_leaf, o_def = _sd_per_leaf(problem, params, trace_axes, diagonal_axes)
    return o_def.unflatten([sum(terms.values(), zero) if terms else zero
                            for terms, zero in per_leaf])


def _ntk_nvp_full(f1, f2, params):
    """Full ``(*O1, *O2)`` NTK per output leaf by vjp-then-jvp over the basis of ``f(x2)``."""
    fx2, vjp2 = jax.vjp(f2, params)
    leaves2, o_def = jax.tree.flatten(fx2)
    out = []
    for i, leaf in enumerate(leaves2):
        size = leaf.size
        basis = jnp.eye(size, dtype=leaf.dtype).reshape((size,) + leaf.shape)

        def column(e, i=i):
            ct = [jnp.zeros_like(l) for l in leaves2]
            ct[i] = e
            (dp,) = vjp2(o_def.unflatten(ct))
            return jax.tree.leaves(jax.jvp(f1, (params,), (dp,))[1])[i]

        cols = jax.vmap(column)(basis)                          # (size2, *O1)
        n1 = cols.ndim - 1
        cols = cols.reshape(leaf.shape + cols.shape[1:])        # (*O2, *O1)
        out.append(jnp.moveaxis(cols, tuple(range(leaf.ndim)),
                                tuple(range(n1, n1 + leaf.ndim))))
    return out, o_def


def _ntk_nvp(problem: _Problem, params, trace_axes, diagonal_axes):
    if problem.vmap is None:
        fulls, o_def = _ntk_nvp_full(problem.fn(1), problem.fn(2), params)
    else:
        x_axis, fx_axis, kw_axes = problem.vmap
        b1 = {k: v for k, v in problem.kw1.items() if k in kw_axes}
        b2 = {k: v for k, v in problem.kw2.items() if k in kw_axes}
        static1 = {k: v for k, v in problem.kw1.items() if k not in kw_axes}
        static2 = {k: v for k, v in problem.kw2.items() if k not in kw_axes}

        def single(x, bkw, static):
            xe = jax.tree.map(lambda a: jnp.expand_dims(a, x_axis), x)
            bkw = {k: jax.tree.map(lambda a, ax=kw_axes[k]: jnp.expand_dims(a, ax), v)
                   for k, v in bkw.items()}
            return lambda p: jax.tree.map(lambda o: jnp.squeeze(o, fx_axis),
                                          problem.f(p, xe, **bkw, **static))

        def pair(xa, xb, ka, kb):
            fulls, _ = _ntk_nvp_full(single(xa, ka, static1), single(xb, kb, static2), params)
            return fulls

        fx1 = jax.eval_shape(problem.fn(1), params)
        o_def = jax.tree.structure(fx1)
        nds = [o.ndim for o in jax.tree.leaves(fx1)]
        kax = {k: kw_axes[k] for k in b1}
        inner = jax.vmap(pair, in_axes=(x_axis, None, kax, None),
                         out_axes=[fx_axis % n for n in nds])
        outer = jax.vmap(inner, in_axes=(None, x_axis, None, kax),
                         out_axes=[n + fx_axis % n for n in nds])
        fulls = outer(problem.x1, problem.x2, b1, b2)
    out = []
    for full in fulls:
        n = full.ndim // 2
        trace, diag = axes_for(trace_axes, diagonal_axes, n)
        check_paired_shapes(full.shape[:n], full.shape[n:], trace, diag)
        out.append(reduce_full(full, n, trace, diag))
    return o_def.unflatten(out)


def _flops(fn, *args) -> float:
    spec = jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), args)
    cost = jax.jit(fn).lower(*spec).cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", math.inf))


def _check_implementation(implementation) -> NtkImplementation:
    try:
        impl = NtkImplementation(implementation)
    except (ValueError, TypeError) as err:
        raise ValueError(f"implementation must be one of "
                         f"{[f'{m.name}={m.value}' for m in NtkImplementation]}; "
                         f"got {implementation!r}") from err
    return impl


def _structured_available(f, vmap_axes) -> bool:
    try:
        _structured.check_supported(f, vmap_axes)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------
# public API


def empirical_ntk_fn(f: Callable, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None,
                     implementation: NtkImplementation | int =
                     NtkImplementation.JACOBIAN_CONTRACTION) -> Callable:
    """``ntk_fn(x1, x2, params, **apply_fn_kwargs)`` computing ``J(x1) J(x2)^T``.

    Args:
      f: ``f(params, x, **kwargs) -> y`` (array or pytree), e.g. an ``apply_fn``.
      trace_axes: output axes averaged over in pairs (removed from the result).
      diagonal_axes: output axes of which only the diagonal is kept (appear once).
      vmap_axes: ``None``, an int, or ``(in_axes, out_axes, kwargs_axes)`` certifying that
        ``f`` is a ``vmap`` over those axes (see the module docstring).
      implementation: an :class:`NtkImplementation` or its int value.

    Returns:
      ``ntk_fn(x1, x2, params, **kw)``; ``x2=None`` means ``x2 = x1``. For ``f(x)`` of shape
      ``(N, *O)`` the result has shape ``(N1, N2)`` followed by the non-traced output axes
      (zipped pairs, diagonal axes once), divided by the product of the traced sizes.
      jit-compatible (``jax.jit(ntk_fn)``).
    """
    impl = _check_implementation(implementation)
    _parse_vmap_axes(vmap_axes)
    if impl is NtkImplementation.STRUCTURED_DERIVATIVES:
        _structured.check_supported(f, vmap_axes)
    try_structured = impl is NtkImplementation.AUTO and _structured_available(f, vmap_axes)
    fns = {NtkImplementation.JACOBIAN_CONTRACTION: _ntk_jc,
           NtkImplementation.NTK_VECTOR_PRODUCTS: _ntk_nvp,
           NtkImplementation.STRUCTURED_DERIVATIVES: _ntk_sd}

    def ntk_fn(x1, x2, params, **apply_fn_kwargs):
        problem = _Problem(f, x1, x2, apply_fn_kwargs, vmap_axes)
        choice = impl
        if try_structured:
            try:
                return _ntk_sd(problem, params, trace_axes, diagonal_axes)
            except _structured.UnsupportedStructure:
                pass  # a layer configuration that is not batch-first: the cheaper of JC / NVP
        if choice is NtkImplementation.AUTO:
            costs = {}
            for k in (NtkImplementation.JACOBIAN_CONTRACTION,
                      NtkImplementation.NTK_VECTOR_PRODUCTS):
                def run(a, b, p, kw, g=fns[k]):
                    return g(_Problem(f, a, b, kw, vmap_axes), p, trace_axes, diagonal_axes)
                costs[k] = _flops(run, x1, x2, params, apply_fn_kwargs)
            choice = min(costs, key=lambda k: (costs[k], k.value))
        return fns[choice](problem, params, trace_axes, diagonal_axes)

    return ntk_fn


def empirical_nngp_fn(f: Callable, trace_axes=(-1,), diagonal_axes=()) -> Callable:
    """``nngp_fn(x1, x2, params, **apply_fn_kwargs)`` computing ``f(x1) f(x2)^T``.

    Same output layout and normalisation as :func:`empirical_ntk_fn` (traced axes averaged).
    """
    def nngp_fn(x1, x2, params, **apply_fn_kwargs):
        problem = _Problem(f, x1, x2, apply_fn_kwargs, None)
        y1 = problem.fn(1)(params)
        y2 = y1 if problem.same else problem.fn(2)(params)
        o_def = jax.tree.structure(y1)
        out = []
        for a, b in zip(jax.tree.leaves(y1), o_def.flatten_up_to(y2)):
            trace, diag = axes_for(trace_axes, diagonal_axes, a.ndim)
            check_paired_shapes(a.shape, b.shape, trace, diag)
            out.append(contract(a, b, a.ndim, trace, diag))
        return o_def.unflatten(out)

    return nngp_fn


def empirical_kernel_fn(f: Callable, trace_axes=(-1,), diagonal_axes=(), vmap_axes=None,
                        implementation: NtkImplementation | int =
                        NtkImplementation.JACOBIAN_CONTRACTION) -> Callable:
    """``kernel_fn(x1, x2, get, params, **kw)``: empirical NNGP and/or NTK (neural-tangents API).

    ``get=None`` returns an ``EmpiricalKernel(nngp, ntk)`` namedtuple, a string the one array,
    a tuple of names a namedtuple with those fields in that order.
    """
    fns = {"nngp": empirical_nngp_fn(f, trace_axes, diagonal_axes),
           "ntk": empirical_ntk_fn(f, trace_axes, diagonal_axes, vmap_axes, implementation)}

    def kernel_fn(x1, x2, get, params, **apply_fn_kwargs):
        names = ("nngp", "ntk") if get is None else (get,) if isinstance(get, str) else tuple(get)
        bad = [g for g in names if g not in fns]
        if bad or not names:
            raise ValueError(f"get must be None, 'nngp', 'ntk' or a tuple of those; got {get!r}")
        out = {g: fns[g](x1, x2, params, **apply_fn_kwargs) for g in names}
        if isinstance(get, str):
            return out[get]
        if get is None:
            return EmpiricalKernel(**out)
        return collections.namedtuple("EmpiricalKernel", names)(**out)

    return kernel_fn


# ----------------------------------------------------------------------------------------------
# per-group decomposition


def _key_value(k) -> Any:
    for attr in ("idx", "key", "name"):
        if hasattr(k, attr):
            return getattr(k, attr)
    return k


def _leaf_paths(tree) -> list[tuple]:
    """Key paths of the leaves of ``tree`` as tuples of plain ints/strings, e.g. ``(2, 0)``."""
    return [tuple(_key_value(k) for k in p) for p, _ in
            jax.tree_util.tree_flatten_with_path(tree)[0]]


def _default_groups(params) -> dict[str, list[int]]:
    paths = _leaf_paths(params)
    if isinstance(params, (tuple, list)):
        groups: dict[str, list[int]] = {}
        width = max(2, len(str(len(params) - 1)))
        for i, entry in enumerate(params):
            leaves = jax.tree.leaves(entry)
            if not leaves:
                continue
            first = entry[0] if isinstance(entry, (tuple, list)) and entry else entry
            nd = jnp.ndim(first) if not isinstance(first, (tuple, list, dict)) else -1
            kind = "Dense" if nd == 2 else "Conv" if nd > 2 else "Params"
            groups[f"layer_{i:0{width}d}_{kind}"] = [j for j, p in enumerate(paths)
                                                       if p[0] == i]
        return groups
    if isinstance(params, Mapping):
        return {str(k): [j for j, p in enumerate(paths) if p[0] == k] for k in params
                if jax.tree.leaves(params[k])}
    return {"params": list(range(len(paths)))}


def _is_label_tree(groups, paths) -> bool:
    """A pytree of strings with the leaf paths of ``params`` (lists and tuples alike)."""
    return (all(isinstance(g, str) for g in jax.tree.leaves(groups))
            and _leaf_paths(groups) == paths)


def resolve_groups(params: PyTree, groups=None) -> dict[str, tuple[int, ...]]:
    """Partition the leaves of ``params`` (``jax.tree.leaves`` order) into named groups.

    ``groups``:

    * ``None``: one group per top-level entry with parameters. A tuple/list (a ``serial``
      network) gives ``"layer_00_Dense"``, ``"layer_01_Conv"``, ... (the kind is guessed from
      the rank of the entry's first leaf: 2 → Dense, > 2 → Conv, else Params; parameterless
      layers are omitted); a dict gives its keys; anything else one group ``"params"``.
    * a dict ``name -> predicate(path) -> bool`` or ``name -> list`` of top-level indices/keys;
      ``path`` is the leaf's key path as a tuple of plain ints/strings, e.g. ``(2, 0)`` for
      ``params[2][0]``.
    * a pytree with the structure of ``params`` whose leaves are group names (strings).

    Raises ``ValueError`` naming ``groups`` when a leaf falls into no group or into two.
    """
    paths = _leaf_paths(params)
    if not paths:
        raise ValueError("params has no array leaves; there is nothing to differentiate")
    if groups is None:
        members = _default_groups(params)
    elif _is_label_tree(groups, paths):
        members = {}
        for j, label in enumerate(jax.tree.leaves(groups)):
            members.setdefault(label, []).append(j)
    elif isinstance(groups, Mapping):
        members = {}
        for name, sel in groups.items():
            if callable(sel):
                members[str(name)] = [j for j, p in enumerate(paths) if sel(p)]
            elif isinstance(sel, Sequence) and not isinstance(sel, str):
                tops = set(sel)
                members[str(name)] = [j for j, p in enumerate(paths) if p and p[0] in tops]
            else:
                raise ValueError(f"groups[{name!r}] must be a predicate(path) or a list of "
                                 f"top-level indices/keys; got {sel!r}")
    else:
        raise ValueError("groups must be None, a dict name -> predicate/list of top-level "
                         "indices, or a params-shaped pytree of group-name strings; got "
                         f"{type(groups).__name__}")
    owner: dict[int, str] = {}
    for name, idx in members.items():
        for j in idx:
            if j in owner:
                raise ValueError(f"groups overlap: parameter leaf at path {paths[j]} is in both "
                                 f"{owner[j]!r} and {name!r}")
            owner[j] = name
    missing = [paths[j] for j in range(len(paths)) if j not in owner]
    if missing:
        raise ValueError(f"groups do not cover every parameter leaf; missing paths {missing}")
    return {name: tuple(idx) for name, idx in members.items() if idx}


def empirical_ntk_by_group(f: Callable, params: PyTree, x1, x2=None, groups=None,
                           trace_axes=(-1,), diagonal_axes=(), vmap_axes=None,
                           implementation: NtkImplementation | int = NtkImplementation.AUTO,
                           **apply_fn_kwargs) -> dict[str, Any]:
    """``{group: Theta_g}`` with ``Theta_g = J_g(x1) J_g(x2)^T`` and ``sum_g Theta_g = Theta``.

    ``J_g`` is the Jacobian with respect to the parameter leaves of group ``g`` only (see
    :func:`resolve_groups` for ``groups``), so ``Theta_g`` is the NTK of the network with every
    other parameter frozen. Each value has the shape of :func:`empirical_ntk_fn`'s output for
    the same ``trace_axes``/``diagonal_axes`` (``(N1, N2)`` by default).

    ``implementation``: ``STRUCTURED_DERIVATIVES`` (per linear layer ``Theta_W`` and ``Theta_b``
    from the layer structure, ``ntk_mlft.stax`` networks only), ``JACOBIAN_CONTRACTION`` (one
    einsum per parameter leaf, any ``f``) or ``AUTO`` (the default: structured when ``f`` is a
    ``stax`` ``apply_fn`` whose layers allow it, Jacobian contraction otherwise). The
    keyword ``implementation`` is therefore not passed on to ``f``.
    """
    impl = _check_implementation(implementation)
    if impl is NtkImplementation.NTK_VECTOR_PRODUCTS:
        raise ValueError("empirical_ntk_by_group: implementation must be JACOBIAN_CONTRACTION, "
                         "STRUCTURED_DERIVATIVES or AUTO (NTK-vector products do not split by "
                         "parameter group)")
    if impl is NtkImplementation.STRUCTURED_DERIVATIVES:
        _structured.check_supported(f, vmap_axes)
    members = resolve_groups(params, groups)
    problem = _Problem(f, x1, x2, apply_fn_kwargs, vmap_axes)
    per_leaf = None
    if impl is NtkImplementation.STRUCTURED_DERIVATIVES or (
            impl is NtkImplementation.AUTO and _structured_available(f, vmap_axes)):
        try:
            per_leaf, o_def = _sd_per_leaf(problem, params, trace_axes, diagonal_axes)
        except _structured.UnsupportedStructure:
            if impl is NtkImplementation.STRUCTURED_DERIVATIVES:
                raise
    if per_leaf is None:
        terms_lists, o_def = _jc_per_leaf(problem, params, trace_axes, diagonal_axes)
        per_leaf = [(dict(enumerate(terms)), None) for terms in terms_lists]
    out = {}
    for name, idx in members.items():
        totals = []
        for terms, zero in per_leaf:
            parts = [terms[j] for j in idx if j in terms]
            totals.append(sum(parts[1:], parts[0]) if parts else zero)
        out[name] = o_def.unflatten(totals)
    return out
