"""``ntk_mlft.empirical`` equals neural-tangents 0.6.5's empirical kernels (``tests/fixtures/``).

Two networks (a 2-hidden-layer MLP with 3 outputs; a 1-D CNN with circular/SAME convs, strides,
a standard-parameterised layer and a Flatten -> Dense(2) head) at NT's own initial params (stored
leaves, unflattened with our treedef after checking it equals NT's). The reference kernels are
``nt.empirical_ntk_fn(..., vmap_axes=0)`` (NT's JACOBIAN_CONTRACTION, NTK_VECTOR_PRODUCTS and
STRUCTURED_DERIVATIVES agreed to 1e-12 when the fixtures were made) and
``nt.empirical_nngp_fn``, for ``trace_axes=(-1,)``, ``trace_axes=()`` (full output-output
blocks) and ``diagonal_axes=(-1,)``, with ``x2`` given and ``x2=None``. Every implementation
(JACOBIAN_CONTRACTION, NTK_VECTOR_PRODUCTS, AUTO, STRUCTURED_DERIVATIVES) is compared at
relative error 1e-10 under ``jax.jit`` (one XLA compilation per combination): a fast tier of
combinations by default, the full product under ``-m slow``.
"""

from __future__ import annotations

import itertools
import json

import jax
import pytest
from nt_fixtures import build, load, nt_params, rel_err, spec_of

from ntk_mlft import empirical

TOL = 1e-10
DATA = load("nt_empirical.npz")
AXES = {k: tuple(tuple(a) for a in v) for k, v in json.loads(DATA["axes"].item()).items()}
NETS = ("mlp", "cnn")
IMPLS = (empirical.NtkImplementation.JACOBIAN_CONTRACTION,
         empirical.NtkImplementation.NTK_VECTOR_PRODUCTS, empirical.NtkImplementation.AUTO,
         empirical.NtkImplementation.STRUCTURED_DERIVATIVES)
FAST = {("mlp", "tr", "12", IMPLS[0], 0), ("cnn", "tr", "12", IMPLS[1], 0),
        ("mlp", "tr", "12", IMPLS[2], 0), ("cnn", "full", "11", IMPLS[0], 0),
        ("cnn", "diag", "11", IMPLS[0], 0), ("cnn", "full", "12", IMPLS[1], None),
        ("mlp", "full", "11", IMPLS[3], None), ("cnn", "tr", "12", IMPLS[3], 0),
        ("cnn", "diag", "11", IMPLS[3], None)}
ALL = [(net, tag, second, impl, vmap) for net, tag, second, impl, vmap in
       itertools.product(NETS, AXES, ("12", "11"), IMPLS, (0, None))]


def _net(net: str):
    pre = net + "__"
    init_fn, apply_fn, _ = build(spec_of(DATA, pre))
    x1 = DATA[pre + "x1"]
    abstract = jax.eval_shape(lambda key: init_fn(key, x1.shape)[1], jax.random.PRNGKey(0))
    treedef = jax.tree_util.tree_structure(abstract)
    assert str(treedef) == DATA[pre + "params_treedef"].item()
    params = nt_params(DATA, pre, treedef)
    assert rel_err(apply_fn(params, x1), DATA[pre + "apply"]) <= TOL
    return apply_fn, params, x1, DATA[pre + "x2"]


@pytest.mark.parametrize(
    "net,tag,second,impl,vmap",
    [pytest.param(*c, marks=() if c in FAST else pytest.mark.slow) for c in ALL])
def test_empirical_ntk_matches_nt(net, tag, second, impl, vmap):
    apply_fn, params, x1, x2 = _net(net)
    trace_axes, diagonal_axes = AXES[tag]
    ntk_fn = empirical.empirical_ntk_fn(apply_fn, trace_axes=trace_axes,
                                        diagonal_axes=diagonal_axes, vmap_axes=vmap,
                                        implementation=impl)
    ntk_fn = jax.jit(ntk_fn)  # one XLA compilation instead of op-by-op dispatch
    ours = ntk_fn(x1, x2 if second == "12" else None, params)
    assert rel_err(ours, DATA[f"{net}__ntk_{tag}_{second}"]) <= TOL


@pytest.mark.parametrize("net", NETS)
def test_empirical_nngp_matches_nt(net):
    apply_fn, params, x1, x2 = _net(net)
    for tag, (trace_axes, diagonal_axes) in AXES.items():
        nngp_fn = empirical.empirical_nngp_fn(apply_fn, trace_axes=trace_axes,
                                              diagonal_axes=diagonal_axes)
        for second, x2_ in (("12", x2), ("11", None)):
            assert rel_err(nngp_fn(x1, x2_, params), DATA[f"{net}__nngp_{tag}_{second}"]) <= TOL


@pytest.mark.parametrize("impl", [IMPLS[0], IMPLS[3]])
def test_per_layer_split_sums_to_nts_ntk(impl):
    apply_fn, params, x1, x2 = _net("mlp")
    parts = jax.jit(lambda p: empirical.empirical_ntk_by_group(apply_fn, p, x1, x2,
                                                               implementation=impl))(params)
    assert len(parts) == 3  # one group per Dense layer
    total = sum(parts.values())
    assert rel_err(total, DATA["mlp__ntk_tr_12"]) <= TOL
