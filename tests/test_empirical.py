"""Empirical NTK/NNGP: brute-force Jacobians, frozen-parameter sub-networks, wide-net limit.

Oracles (``tests/empirical_oracles.py``): ``jax.jacobian`` of the parameter leaves + ``numpy``
contraction and an independent trace/diagonal reduction; the NTK of the network with all other
parameters frozen (per-group split); the analytic ``stax`` kernel (width -> infinity, error
~ width^-1/2). The structured-derivative implementation has its own file,
``tests/test_empirical_structured.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tol
from empirical_oracles import brute_ntk, canon, reference_reduce

from ntk_mlft import stax
from ntk_mlft.empirical import (
    NtkImplementation,
    empirical_kernel_fn,
    empirical_nngp_fn,
    empirical_ntk_by_group,
    empirical_ntk_fn,
    resolve_groups,
)

JC, NVP, AUTO = (NtkImplementation.JACOBIAN_CONTRACTION, NtkImplementation.NTK_VECTOR_PRODUCTS,
                 NtkImplementation.AUTO)


def _mlp():
    init, apply, _ = stax.serial(stax.Dense(7, b_std=0.3), stax.Erf(), stax.Dense(3, b_std=0.2))
    _, params = init(jax.random.PRNGKey(1), (1, 5))
    rng = np.random.default_rng(2)
    return apply, params, rng.normal(size=(4, 5)), rng.normal(size=(3, 5))


def _cnn():
    init, apply, _ = stax.serial(stax.Conv(4, (3,), padding="SAME", b_std=0.1), stax.Relu(),
                                 stax.Conv(3, (2,), padding="VALID"))
    _, params = init(jax.random.PRNGKey(3), (1, 6, 2))
    rng = np.random.default_rng(4)
    return apply, params, rng.normal(size=(4, 6, 2)), rng.normal(size=(3, 6, 2))


NETS = {"mlp": _mlp, "cnn": _cnn}


AXES = {
    "mlp": [((-1,), ()), ((), ()), ((), (0,))],
    "cnn": [((-1,), ()), ((-1,), (1,)), ((1, 2), ()), ((), (0, -1))],
}
CASES = [(net, tr, dg) for net, axes in AXES.items() for tr, dg in axes]


@pytest.mark.parametrize("net,trace_axes,diagonal_axes", CASES)
def test_implementations_match_brute_force(net, trace_axes, diagonal_axes):
    f, params, x1, x2 = NETS[net]()
    pairs = [(x1, None)] + ([] if 0 in canon(diagonal_axes, 2) else [(x1, x2)])
    # every implementation x vmap_axes combination, spread over x2=None / x2 given
    combos = [[(JC, 0), (NVP, None)], [(JC, None), (NVP, 0)]]
    if len(pairs) == 1:
        combos = [combos[0] + combos[1]]
    for (a, b), todo in zip(pairs, combos):
        ref = brute_ntk(f, params, a, b, trace_axes, diagonal_axes)
        scale = np.max(np.abs(ref))
        for impl, vmap_axes in todo:
            ntk_fn = empirical_ntk_fn(f, trace_axes, diagonal_axes, vmap_axes, impl)
            got = jax.jit(ntk_fn)(a, b, params)
            assert got.shape == ref.shape, (impl, vmap_axes)
            np.testing.assert_allclose(got, ref, rtol=0, atol=tol(np.float64) * scale,
                                       err_msg=f"{impl!r} vmap_axes={vmap_axes}")


@pytest.mark.slow  # ~8 s of jit compiles
def test_auto_jit_and_kernel_fn_agree():
    f, params, x1, x2 = _cnn()
    ref = brute_ntk(f, params, x1, x2, (-1,), ())
    auto = jax.jit(empirical_ntk_fn(f, implementation=AUTO))(x1, x2, params)
    np.testing.assert_allclose(auto, ref, atol=tol(np.float64) * np.max(np.abs(ref)), rtol=0)
    kernel_fn = empirical_kernel_fn(f, vmap_axes=0)
    both = kernel_fn(x1, x2, None, params)
    nngp_ref = reference_reduce(np.tensordot(np.asarray(f(params, x1)),
                                              np.asarray(f(params, x2)), 0), 3, (2,), ())
    np.testing.assert_allclose(both.ntk, ref, atol=tol(np.float64) * np.max(np.abs(ref)), rtol=0)
    np.testing.assert_allclose(both.nngp, nngp_ref, rtol=tol(np.float64))
    assert kernel_fn(x1, x2, ("ntk", "nngp"), params)._fields == ("ntk", "nngp")
    np.testing.assert_allclose(kernel_fn(x1, None, "nngp", params),
                               empirical_nngp_fn(f)(x1, None, params), rtol=tol(np.float64))


@pytest.mark.parametrize("trace_axes,diagonal_axes", [((-1,), ()), ((), ()), ((), (-1,))])
def test_nngp_matches_outer_product(trace_axes, diagonal_axes):
    f, params, x1, x2 = _mlp()
    y1, y2 = np.asarray(f(params, x1)), np.asarray(f(params, x2))
    ref = reference_reduce(np.tensordot(y1, y2, 0), 2, canon(trace_axes, 2),
                            canon(diagonal_axes, 2))
    got = empirical_nngp_fn(f, trace_axes, diagonal_axes)(x1, x2, params)
    np.testing.assert_allclose(got, ref, rtol=tol(np.float64))


@pytest.mark.slow  # ~7 s
def test_float32_matches_float64_brute_force():
    f, params, x1, x2 = _mlp()
    p32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    x1_32, x2_32 = np.float32(x1), np.float32(x2)
    ref = brute_ntk(f, params, x1, x2, (-1,), ())
    for impl in (JC, NVP):
        got = empirical_ntk_fn(f, vmap_axes=0, implementation=impl)(x1_32, x2_32, p32)
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol(np.float32) * np.max(np.abs(ref)))


def test_tuple_kwargs_are_split_between_x1_and_x2():
    f, params, x1, x2 = _mlp()

    def g(p, x, scale=1.0):
        return scale * f(p, x)

    base = empirical_ntk_fn(f)(x1, x2, params)
    scaled = empirical_ntk_fn(g)(x1, x2, params, scale=(2.0, 3.0))
    np.testing.assert_allclose(scaled, 6.0 * base, rtol=tol(np.float64))


# ------------------------------------------------------------------------------------------
# per-group split


@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_groups_sum_to_full_and_equal_frozen_subnetwork_ntk(net):
    f, params, x1, x2 = NETS[net]()
    parts = empirical_ntk_by_group(f, params, x1, x2, trace_axes=())
    kind = "Dense" if net == "mlp" else "Conv"
    assert list(parts) == [f"layer_00_{kind}", f"layer_02_{kind}"]   # activation omitted
    full = empirical_ntk_fn(f, trace_axes=())(x1, x2, params)
    np.testing.assert_allclose(sum(parts.values()), full, rtol=0,
                               atol=tol(np.float64) * np.max(np.abs(full)))
    members = resolve_groups(params)
    for name, idx in members.items():
        ref = brute_ntk(f, params, x1, x2, (), (), leaves=idx)
        np.testing.assert_allclose(parts[name], ref, rtol=0,
                                   atol=tol(np.float64) * np.max(np.abs(ref)))
        assert np.max(np.abs(ref)) > 1e-3 * np.max(np.abs(full))   # every layer contributes


def test_group_specifications_agree():
    f, params, x1, _ = _mlp()
    by_pred = empirical_ntk_by_group(
        f, params, x1, groups={"weights": lambda path: path[-1] == 0,
                               "biases": lambda path: path[-1] == 1})
    labels = ((("weights", "biases")), (), ("weights", "biases"))
    by_tree = empirical_ntk_by_group(f, params, x1, groups=labels)
    for k in ("weights", "biases"):
        np.testing.assert_allclose(by_pred[k], by_tree[k], rtol=tol(np.float64))
    by_list = empirical_ntk_by_group(f, params, x1, groups={"first": [0], "last": [1, 2]})
    default = empirical_ntk_by_group(f, params, x1)
    np.testing.assert_allclose(by_list["first"], default["layer_00_Dense"], rtol=tol(np.float64))
    np.testing.assert_allclose(by_list["last"], default["layer_02_Dense"], rtol=tol(np.float64))
    bias_ref = brute_ntk(f, params, x1, None, (-1,), (), leaves=(1, 3))
    np.testing.assert_allclose(by_pred["biases"], bias_ref, rtol=tol(np.float64))
    assert resolve_groups({"enc": {"w": np.ones(2)}, "dec": np.ones(3)}) == {"enc": (1,),
                                                                             "dec": (0,)}


def test_group_errors():
    f, params, x1, _ = _mlp()
    with pytest.raises(ValueError, match="groups overlap"):
        resolve_groups(params, {"a": [0], "b": lambda p: p[0] in (0, 2)})
    with pytest.raises(ValueError, match="groups do not cover"):
        resolve_groups(params, {"a": [0]})
    with pytest.raises(ValueError, match="groups"):
        resolve_groups(params, "all")
    with pytest.raises(ValueError, match=r"groups\['a'\]"):
        resolve_groups(params, {"a": 3})


# ------------------------------------------------------------------------------------------
# bad input


def test_bad_input():
    f, params, x1, x2 = _mlp()
    with pytest.raises(ValueError, match="x1 and x2"):
        empirical_ntk_fn(f)(x1, x2[:, :4], params)
    with pytest.raises(ValueError, match="x1 and x2"):
        empirical_nngp_fn(f)(x1, x2[:, :4], params)
    with pytest.raises(ValueError, match="implementation"):
        empirical_ntk_fn(f, implementation=7)
    with pytest.raises(ValueError, match="implementation"):
        empirical_ntk_fn(f, implementation="fast")
    with pytest.raises(ValueError, match=r"STRUCTURED_DERIVATIVES needs an apply_fn built by "
                                         r"ntk_mlft.stax.*JACOBIAN_CONTRACTION"):
        empirical_ntk_fn(lambda p, x: f(p, x),
                         implementation=NtkImplementation.STRUCTURED_DERIVATIVES)
    with pytest.raises(ValueError, match="NTK-vector products do not split"):
        empirical_ntk_by_group(f, params, x1, implementation=NVP)
    with pytest.raises(ValueError, match="trace_axes and diagonal_axes"):
        empirical_ntk_fn(f, trace_axes=(-1,), diagonal_axes=(1,))(x1, None, params)
    with pytest.raises(ValueError, match="trace_axes: axis 2"):
        empirical_ntk_fn(f, trace_axes=(2,))(x1, None, params)
    with pytest.raises(ValueError, match="diagonal_axes"):
        empirical_ntk_fn(f, trace_axes=(), diagonal_axes=(0,))(x1, x2, params)
    with pytest.raises(ValueError, match="get"):
        empirical_kernel_fn(f)(x1, None, "cov1", params)
    with pytest.raises(ValueError, match="vmap_axes"):
        empirical_ntk_fn(f, vmap_axes=(0, "a", {}))


# ------------------------------------------------------------------------------------------
# infinite-width limit


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wide_network_converges_to_analytic_ntk(dtype):
    """||Theta_w - Theta_inf||_F / ||Theta_inf||_F ~ w^(-1/2) (Jacot et al. 2018; the O(1/sqrt(w))
    fluctuation of the finite-width NTK at initialisation). RMS over seeds, slope of the log-log
    fit over widths."""
    widths = (32, 128, 512)
    seeds = range(4)
    x = np.random.default_rng(5).normal(size=(6, 4))
    errs = []
    for w in widths:
        init, apply, kernel_fn = stax.serial(
            stax.Dense(w, W_std=1.5, b_std=0.1), stax.Relu(),
            stax.Dense(w, W_std=1.5, b_std=0.1), stax.Relu(),
            stax.Dense(1, W_std=1.5, b_std=0.1))
        ref = np.asarray(kernel_fn(x, None, "ntk"))
        ntk_fn = jax.jit(empirical_ntk_fn(apply, vmap_axes=0))
        sq = []
        for s in seeds:
            _, params = init(jax.random.PRNGKey(s), x.shape)
            params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
            emp = np.asarray(ntk_fn(jnp.asarray(x, dtype), None, params), np.float64)
            sq.append(np.sum((emp - ref) ** 2) / np.sum(ref ** 2))
        errs.append(np.sqrt(np.mean(sq)))
    slope = np.polyfit(np.log(widths), np.log(errs), 1)[0]
    assert -0.8 <= slope <= -0.3, (errs, slope)
    assert errs[-1] < 0.2


@pytest.mark.parametrize("trace_axes,diagonal_axes", [((-1,), ()), ((), (-1,))])
def test_large_batch_symmetric_blocks_match_brute_force(trace_axes, diagonal_axes):
    """``x2=None`` with N >= 512 takes the block-symmetric contraction path."""
    init, apply, _ = stax.serial(stax.Dense(4, b_std=0.1), stax.Relu(), stax.Dense(2))
    _, params = init(jax.random.PRNGKey(0), (1, 3))
    x = np.random.default_rng(1).normal(size=(530, 3))
    ref = brute_ntk(apply, params, x, None, trace_axes, diagonal_axes)
    got = empirical_ntk_fn(apply, trace_axes, diagonal_axes, vmap_axes=0)(x, None, params)
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol(np.float64) * np.max(np.abs(ref)))
