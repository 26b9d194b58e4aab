"""Structured-derivative empirical NTK (``implementation=STRUCTURED_DERIVATIVES``, ``_structured``).

Oracle: the NTK by definition, ``jax.jacobian`` of every parameter leaf contracted with numpy
(``tests/empirical_oracles.py``), per output leaf and per parameter leaf (so the per-group split
is checked too). Every parameterised layer and combinator of ``stax`` appears: Dense on flat and
on spatial inputs, Conv 1-D/2-D with VALID/SAME/CIRCULAR padding and strides, both
parameterisations, with and without bias; every activation; FanOut/parallel/FanInSum/Identity
residual blocks; Flatten and GlobalAvgPool heads; list-valued outputs. Output axes: the default
``trace_axes=(-1,)``, full ``()``, traced/diagonal batch and spatial axes; ``x2`` given and
``x2=None``. float64 at 1e-10, float32 at 1e-4 (``conftest.TOLERANCES``).

Cost: each network is compiled once (all axis/x2 combinations and both group splits in one
``jax.jit``), plus once for the brute-force Jacobians.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tol
from empirical_oracles import jacobian_blocks, ntk_from_blocks

from ntk_mlft import stax
from ntk_mlft.empirical import (
    NtkImplementation,
    _structured,
    empirical_ntk_by_group,
    empirical_ntk_fn,
    resolve_groups,
)

SD, JC, AUTO = (NtkImplementation.STRUCTURED_DERIVATIVES,
                NtkImplementation.JACOBIAN_CONTRACTION, NtkImplementation.AUTO)


def _mlp_ntk():
    return stax.serial(stax.Dense(7, W_std=1.3, b_std=0.3), stax.Erf(), stax.Dense(5, b_std=0.2),
                       stax.Gelu(), stax.Dense(3, W_std=0.8, b_std=0.2)), (4,)


def _mlp_standard():
    p = "standard"
    return stax.serial(stax.Dense(6, W_std=1.4, b_std=0.4, parameterization=p, s=(2, 3)),
                       stax.Relu(), stax.Dense(4, b_std=0.1, parameterization=p),
                       stax.Sin(0.8, 1.4, 0.3),
                       stax.Dense(2, W_std=0.9, parameterization=p, s=(3, 1))), (5,)


def _conv1d():
    """VALID with stride 2, SAME, CIRCULAR, then a Dense on the spatial output (P > 1)."""
    return stax.serial(stax.Conv(4, (3,), strides=(2,), padding="VALID", b_std=0.2),
                       stax.LeakyRelu(0.1),
                       stax.Conv(3, (2,), padding="SAME", W_std=1.2, parameterization="standard"),
                       stax.Abs(),
                       stax.Conv(3, (3,), strides=(2,), padding="CIRCULAR", b_std=0.1),
                       stax.Relu(), stax.Dense(2, b_std=0.3)), (9, 2)


def _conv2d():
    return stax.serial(stax.Conv(3, (3, 2), strides=(2, 1), padding="SAME", b_std=0.1),
                       stax.ABRelu(-0.4, 1.3),
                       stax.Conv(2, (2, 2), strides=(1, 2), padding="CIRCULAR", b_std=0.2,
                                 parameterization="standard", s=(2, 2)),
                       stax.Erf(), stax.Conv(2, (2, 2), padding="VALID"), stax.Flatten(),
                       stax.Dense(2, b_std=0.1)), (6, 5, 2)


def _resnet():
    """Conv residual block (FanOut, parallel with Identity, FanInSum) and a GlobalAvgPool head."""
    block = stax.serial(stax.FanOut(2),
                        stax.parallel(stax.serial(stax.Relu(), stax.Conv(3, (3,), padding="SAME",
                                                                         b_std=0.1)),
                                      stax.Identity()),
                        stax.FanInSum())
    return stax.serial(stax.Conv(3, (2,), padding="CIRCULAR", b_std=0.3), block, stax.Gelu(),
                       stax.GlobalAvgPool(), stax.Dense(2, b_std=0.2)), (6, 2)


def _two_heads():
    """A list-valued output: each leaf gets its own kernel."""
    return stax.serial(stax.Dense(5, b_std=0.1), stax.FanOut(2),
                       stax.parallel(stax.Dense(2), stax.serial(stax.Erf(), stax.Dense(3,
                                                                                    b_std=0.4)))
                       ), (4,)


NETS = {"mlp_ntk": _mlp_ntk, "mlp_standard": _mlp_standard, "conv1d": _conv1d,
        "conv2d": _conv2d, "resnet": _resnet, "two_heads": _two_heads}
# more (trace_axes, diagonal_axes) per network, on top of the default ((-1,), ()): slow tier
AXES = {
    "mlp_ntk": [((), ()), ((), (0,)), ((0,), ()), ((0, 1), ())],
    "mlp_standard": [((), ())],
    "conv1d": [((1, 2), ()), ((-1,), (1,)), ((), (0, -1)), ((0, -1), (1,))],
    "conv2d": [((), ())],
    "resnet": [((), (1,))],
    "two_heads": [((), ())],
}


def _setup(name, dtype=np.float64, n1=4, n2=3):
    (init_fn, apply_fn, _), in_shape = NETS[name]()
    _, params = init_fn(jax.random.PRNGKey(7), (1,) + in_shape)
    rng = np.random.default_rng(11)
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
    x1 = np.asarray(rng.normal(size=(n1,) + in_shape), dtype)
    x2 = np.asarray(rng.normal(size=(n2,) + in_shape), dtype)
    return apply_fn, params, x1, x2


@functools.lru_cache(maxsize=None)
def _reference(name):
    """``(f, params, x1, x2, J(x1) blocks, J(x2) blocks)`` of a float64 network (computed once)."""
    f, params, x1, x2 = _setup(name)
    return (f, params, x1, x2, *jacobian_blocks(f, params, [x1, x2]))


def _combos(name, more_axes):
    out = []
    for tr, dg in [((-1,), ())] + (AXES[name] if more_axes else []):
        out.append((tr, dg, True))                       # x2 = None
        if 0 not in tr and 0 not in dg:
            out.append((tr, dg, False))                  # x2 given
    return out


def _leaf_groups(params):
    """One group per parameter leaf (a label tree), so every Theta_W and Theta_b is checked on
    its own; their sum is the NTK for ``x2`` given."""
    leaves, treedef = jax.tree.flatten(params)
    return jax.tree.unflatten(treedef, [f"leaf{i:02d}" for i in range(len(leaves))])


def _ours(f, params, x1, x2, name, more_axes):
    """The combinations of one network in ONE compilation (``more_axes``: all of ``AXES``):
    kernels for ``x2=None`` (and ``x2`` given where more axes are asked for) and the per-leaf
    split for ``x2`` given."""
    combos = [c for c in _combos(name, more_axes) if more_axes or c[2]]

    def run(p):
        ntks = [empirical_ntk_fn(f, tr, dg, None, SD)(x1, None if same else x2, p)
                for tr, dg, same in combos]
        split = empirical_ntk_by_group(f, p, x1, x2, groups=_leaf_groups(p), implementation=SD)
        return ntks, split

    return combos, jax.jit(run)(params)


def _assert_close(got, ref, dtype, what):
    got = np.asarray(got, np.float64)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    scale = max(np.max(np.abs(ref)), 1e-300)
    err = np.max(np.abs(got - ref)) / scale
    assert err <= tol(dtype), (what, err)


def _check_network(name, more_axes):
    f, params, x1, x2, blocks1, blocks2 = _reference(name)
    combos, (ntks, split) = _ours(f, params, x1, x2, name, more_axes)
    for (tr, dg, same), got in zip(combos, ntks):
        refs = ntk_from_blocks(blocks1, blocks1 if same else blocks2, tr, dg)
        for k, (g, r) in enumerate(zip(jax.tree.leaves(got), refs)):
            _assert_close(g, r, np.float64, (name, tr, dg, same, k))
    members = resolve_groups(params, _leaf_groups(params))
    assert sorted(split) == sorted(members) and len(members) == len(jax.tree.leaves(params))
    for g_name, idx in members.items():
        refs = ntk_from_blocks(blocks1, blocks2, (-1,), (), leaves=list(idx))
        for k, (g, r) in enumerate(zip(jax.tree.leaves(split[g_name]), refs)):
            _assert_close(g, r, np.float64, (name, g_name, k))
    assert all(np.max(np.abs(r)) > 0 for r in ntk_from_blocks(blocks1, blocks2, (-1,), ())), name


@pytest.mark.parametrize("name", list(NETS))
def test_structured_matches_brute_force(name):
    """Default axes: x2=None, and x2 given split into every parameter leaf's share."""
    _check_network(name, more_axes=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NETS))
def test_structured_matches_brute_force_all_axes(name):
    _check_network(name, more_axes=True)


@pytest.mark.parametrize("name", [pytest.param("mlp_ntk", marks=pytest.mark.slow), "conv2d"])
def test_structured_float32(name):
    f, p32, x1_32, x2_32 = _setup(name, np.float32)
    *_, blocks1, blocks2 = _reference(name)
    ntk_fn = jax.jit(empirical_ntk_fn(f, (-1,), (), 0, SD))
    for second, b in ((x2_32, blocks2), (None, blocks1)):
        got = ntk_fn(x1_32, second, p32)
        assert got.dtype == jnp.float32
        (ref,) = ntk_from_blocks(blocks1, b, (-1,), ())
        _assert_close(got, ref, np.float32, (name, second is None))


@pytest.mark.parametrize("gram", [True, False])
def test_gram_and_jacobian_forms_agree_with_brute_force(gram, monkeypatch):
    """Both contraction orders of ``_layer_terms`` (the cost model picks one per layer)."""
    monkeypatch.setattr(_structured, "_gram_is_cheaper", lambda *args: gram)
    f, params, x1, x2, blocks1, blocks2 = _reference("conv1d")
    got = jax.jit(empirical_ntk_fn(f, (1, 2), (), None, SD))(x1, x2, params)
    (ref,) = ntk_from_blocks(blocks1, blocks2, (1, 2), ())
    _assert_close(got, ref, np.float64, gram)


def test_large_batch_uses_symmetric_blocks():
    """``x2=None`` with N >= 512 takes the block-symmetric products (Gram form of Dense)."""
    init, apply, _ = stax.serial(stax.Dense(6, b_std=0.1), stax.Relu(), stax.Dense(2))
    _, params = init(jax.random.PRNGKey(0), (1, 3))
    x = np.random.default_rng(1).normal(size=(530, 3))
    (blocks,) = jacobian_blocks(apply, params, [x])
    for tr, dg in (((-1,), ()), ((), (-1,))):
        got = jax.jit(empirical_ntk_fn(apply, tr, dg, 0, SD))(x, None, params)
        (ref,) = ntk_from_blocks(blocks, blocks, tr, dg)
        _assert_close(got, ref, np.float64, (tr, dg))


def test_auto_traces_the_structured_program():
    f, params, x1, x2, *_ = _reference("mlp_ntk")
    auto = jax.make_jaxpr(empirical_ntk_fn(f, implementation=AUTO))(x1, x2, params)
    structured = jax.make_jaxpr(empirical_ntk_fn(f, implementation=SD))(x1, x2, params)
    jc = jax.make_jaxpr(empirical_ntk_fn(f, implementation=JC))(x1, x2, params)
    assert str(auto) == str(structured) != str(jc)


def test_auto_falls_back_for_other_functions_and_layouts():
    f, params, x1, x2, blocks1, blocks2 = _reference("mlp_ntk")
    wrapped = lambda p, x: f(p, x)  # noqa: E731  (not a stax apply_fn)
    (ref,) = ntk_from_blocks(blocks1, blocks2, (-1,), ())
    got = jax.jit(empirical_ntk_fn(wrapped, implementation=AUTO))(x1, x2, params)
    _assert_close(got, ref, np.float64, "wrapped")
    # batch-last output: not batch-first, so AUTO uses JC/NVP and SD refuses
    init, apply, _ = stax.serial(stax.Dense(3, b_std=0.1), stax.Flatten(batch_axis_out=1))
    _, p = init(jax.random.PRNGKey(0), (1, 4))
    (ref,) = ntk_from_blocks(*jacobian_blocks(apply, p, [x1, x2]), (), ())

    def auto_and_split(q):
        return (empirical_ntk_fn(apply, (), (), None, AUTO)(x1, x2, q),
                empirical_ntk_by_group(apply, q, x1, x2, trace_axes=()))

    got, split = jax.jit(auto_and_split)(p)
    _assert_close(got, ref, np.float64, "batch last")
    _assert_close(sum(split.values()), ref, np.float64, "by group, batch last")
    with pytest.raises(ValueError, match=r"Flatten: the structured-derivative NTK needs the "
                                         r"batch on axis 0.*JACOBIAN_CONTRACTION"):
        jax.eval_shape(empirical_ntk_fn(apply, (), (), None, SD), x1, x2, p)


def test_kwargs_and_rng_pass_through():
    f, params, x1, x2, *_ = _reference("mlp_ntk")
    ntk_fn = jax.jit(empirical_ntk_fn(f, implementation=SD))
    plain = ntk_fn(x1, x2, params)
    keyed = ntk_fn(x1, x2, params, rng=jax.random.PRNGKey(0))
    np.testing.assert_array_equal(plain, keyed)


def test_network_without_parameters_has_zero_ntk():
    _, apply, _ = stax.serial(stax.Relu(), stax.Flatten())
    x1, x2 = np.ones((3, 2, 2)), np.ones((2, 2, 2))
    got = empirical_ntk_fn(apply, (), (), None, SD)(x1, x2, [(), ()])
    assert got.shape == (3, 2, 4, 4) and not np.any(got)


def test_bad_input():
    f, params, x1, _ = _setup("mlp_ntk")
    with pytest.raises(ValueError, match=r"needs an apply_fn built by ntk_mlft.stax.*"
                                         r"JACOBIAN_CONTRACTION or NTK_VECTOR_PRODUCTS"):
        empirical_ntk_fn(jax.jit(f), implementation=SD)
    with pytest.raises(ValueError, match=r"axis 0 of x and of f\(x\) as the batch.*vmap_axes=1"):
        empirical_ntk_fn(f, vmap_axes=1, implementation=SD)
    with pytest.raises(ValueError, match="needs an apply_fn built by ntk_mlft.stax"):
        empirical_ntk_by_group(lambda p, x: f(p, x), params, x1, implementation=SD)
    with pytest.raises(ValueError, match=r"Dense\(7\): inputs of shape \(4, 3\) have 3 features "
                                         r"on axis -1, but the params .*\(4, 7\).* for 4"):
        empirical_ntk_fn(f, implementation=SD)(x1[:, :3], None, params)
