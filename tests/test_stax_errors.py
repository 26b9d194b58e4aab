"""Bad input to stax layers and kernel functions: clear ValueError/TypeError naming the layer,
the argument and the shapes."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ntk_mlft import stax


def _mlp():
    return stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))


def test_mismatched_feature_dims():
    with pytest.raises(ValueError, match=r"x1 and x2 .*\(4, 3\).*\(2, 5\)"):
        _mlp()[2](np.ones((4, 3)), np.ones((2, 5)))


def test_unknown_get_lists_allowed():
    with pytest.raises(ValueError, match=r"get must be .*'nngp'.*'ntk'.*got 'ntkk'"):
        _mlp()[2](np.ones((2, 3)), get="ntkk")
    with pytest.raises(ValueError, match="got 'bad'"):
        _mlp()[2](np.ones((2, 3)), get=("nngp", "bad"))


@pytest.mark.parametrize("kwargs", [{"W_std": -1.0}, {"b_std": -0.1}, {"W_std": float("nan")}])
def test_negative_or_nonfinite_std(kwargs):
    with pytest.raises(ValueError, match=r"Dense\(8\).*_std must be finite and >= 0"):
        stax.Dense(8, **kwargs)


def test_std_of_wrong_type():
    with pytest.raises(TypeError, match="W_std must be a real number"):
        stax.Dense(8, W_std="1")


def test_unknown_parameterization():
    with pytest.raises(ValueError, match="parameterization must be 'ntk' or 'standard'"):
        stax.Dense(8, parameterization="mup")


def test_inputs_without_feature_axis():
    with pytest.raises(ValueError, match=r"x1 must have a batch and a feature axis.*\(5,\)"):
        _mlp()[2](np.ones(5))


def test_activation_needs_affine_input():
    with pytest.raises(ValueError, match=r"ABRelu\(0, 1\): its input must be Gaussian.*\(3, 4\)"):
        stax.Relu()[2](np.ones((3, 4)))


def test_fan_in_sum_needs_branches_of_equal_shape():
    net = stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(3), stax.Dense(4)),
                      stax.FanInSum())
    with pytest.raises(ValueError, match=r"FanInSum: all branches must have the same shape.*"
                                         r"\(2, 3\).*\(2, 4\)"):
        net[2](np.ones((2, 5)))


def test_parallel_needs_list_input():
    with pytest.raises(ValueError, match=r"parallel\(.*\): needs a list of 2"):
        stax.parallel(stax.Dense(3), stax.Dense(3))[2](np.ones((2, 5)))


def test_serial_rejects_foreign_layers():
    with pytest.raises(TypeError, match="serial: every layer must be"):
        stax.serial(stax.Dense(3), (lambda: 0, lambda: 0, lambda: 0))


def test_non_numeric_input():
    with pytest.raises(TypeError, match="x1 must be"):
        _mlp()[2]([np.ones((2, 3))])


def test_conv_wrong_input_rank():
    conv = stax.Conv(4, (3,), padding="SAME")
    with pytest.raises(ValueError, match=r"Conv\(4, \(3,\).*expects inputs of rank 3.*\(5, 7\)"):
        conv[2](np.ones((5, 7)))
    with pytest.raises(ValueError, match=r"expects inputs of rank 4.*\(2, 6, 1\)"):
        stax.Conv(4, (3, 3))[2](np.ones((2, 6, 1)))


def test_conv_valid_filter_larger_than_input():
    with pytest.raises(ValueError, match=r"spatial size 2 is smaller than the filter 3"):
        stax.Conv(4, (3,))[2](np.ones((2, 2, 1)))


@pytest.mark.parametrize("kwargs, match", [
    ({"padding": "REFLECT"}, "padding must be one of"),
    ({"strides": (0,)}, "strides must be 1 positive ints"),
    ({"dimension_numbers": ("NCA", "OIA", "NCA")}, "dimension_numbers must be channels-last"),
    ({"W_std": -2.0}, "W_std must be finite and >= 0"),
])
def test_conv_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stax.Conv(4, (3,), **kwargs)


def test_layer_after_flatten_of_wrong_rank_is_named():
    net = stax.serial(stax.Flatten(), stax.Conv(4, (3,)))
    with pytest.raises(ValueError, match=r"Conv\(4.*rank 3.*\(2, 12\)"):
        net[2](np.ones((2, 4, 3)))


# ------------------------------------------------------------------------------------------
# issue: "a clear ValueError naming the layer and the shapes"


def test_layer_after_fan_out_needs_one_input():
    net = stax.serial(stax.FanOut(2), stax.Dense(3))
    msg = r"Dense\(3\): takes one input, got 2 branches with shapes \[\(2, 4\), \(2, 4\)\]"
    with pytest.raises(ValueError, match=msg):
        net[2](np.ones((2, 4)))
    with pytest.raises(ValueError, match=msg):
        net[0](jax.random.PRNGKey(0), (2, 4))
    with pytest.raises(ValueError, match=r"Conv\(2, \(3,\).*takes one input, got 2 branches"):
        stax.serial(stax.FanOut(2), stax.Conv(2, (3,)))[2](np.ones((2, 5, 1)))
    _, params = stax.Dense(3)[0](jax.random.PRNGKey(0), (2, 4))
    with pytest.raises(ValueError, match=r"Dense\(3\): takes one input, got 2 branches"):
        stax.Dense(3)[1](params, [np.ones((2, 4))] * 2)


@pytest.mark.parametrize("jit", [False, True])
def test_apply_with_wrong_feature_size_names_the_layer(jit):
    init_fn, apply_fn, _ = _mlp()
    _, params = init_fn(jax.random.PRNGKey(0), (2, 4))
    apply_fn = jax.jit(apply_fn) if jit else apply_fn
    with pytest.raises(ValueError, match=r"Dense\(8\): inputs of shape \(2, 5\) have 5 features "
                                         r"on axis -1, but the params \(weights of shape "
                                         r"\(4, 8\)\) were initialised for 4"):
        apply_fn(params, np.ones((2, 5)))


def test_conv_apply_with_wrong_channels_or_rank():
    init_fn, apply_fn, _ = stax.Conv(4, (3,), padding="SAME")
    _, params = init_fn(jax.random.PRNGKey(0), (2, 6, 2))
    with pytest.raises(ValueError, match=r"Conv\(4, \(3,\).*\(2, 6, 3\) have 3 features.*for 2"):
        apply_fn(params, np.ones((2, 6, 3)))
    with pytest.raises(ValueError, match=r"Conv\(4, \(3,\).*expects inputs of rank 3.*\(2, 6\)"):
        apply_fn(params, np.ones((2, 6)))


def test_unknown_or_empty_get_names_the_network():
    net = _mlp()[2]
    name = r"kernel_fn of serial\(Dense\(8\), ABRelu\(0, 1\), Dense\(1\)\)"
    with pytest.raises(ValueError, match=name + r": get must be .*got 'ntkk'"):
        net(np.ones((2, 3)), get="ntkk")
    with pytest.raises(ValueError, match=name + r": get must be .*non-empty.*got an empty tuple"):
        net(np.ones((2, 3)), get=())
    with pytest.raises(ValueError, match=name + r": get must be .*got 3"):
        net(np.ones((2, 3)), get=3)
    with pytest.raises(ValueError, match=r"batch: get must be .*non-empty.*got \(\)"):
        stax.batch(net, 2)(np.ones((3, 3)), get=())


@pytest.mark.parametrize("out_dim", [-3, 0, 2.5, True, "4"])
def test_dense_out_dim_must_be_a_positive_int(out_dim):
    with pytest.raises(ValueError, match=r"Dense\(.*\): out_dim must be an integer >= 1; got"):
        stax.Dense(out_dim)


@pytest.mark.parametrize("args, kwargs, match", [
    ((0, (3,)), {}, r"out_chan must be an integer >= 1; got 0"),
    ((-2, (3,)), {}, r"out_chan must be an integer >= 1; got -2"),
    ((4, (0,)), {}, r"filter_shape must be a non-empty tuple of positive ints.*got \(0,\)"),
    ((4, ()), {}, r"filter_shape must be a non-empty tuple of positive ints.*got \(\)"),
    ((4, 3), {}, r"filter_shape must be a non-empty tuple of positive ints.*got 3"),
    ((4, (2.5,)), {}, r"filter_shape must be a non-empty tuple of positive ints"),
    ((4, (3, 3)), {"strides": (1, 0)}, r"strides must be 2 positive ints; got \(1, 0\)"),
    ((4, (3,)), {"strides": (1, 1)}, r"strides must be 1 positive ints; got \(1, 1\)"),
    ((4, (3,)), {"parameterization": "standard", "s": (1, 0)}, r"s\[1\] must be an integer"),
])
def test_conv_sizes_must_be_positive_ints(args, kwargs, match):
    with pytest.raises(ValueError, match=r"Conv\(.*\): " + match):
        stax.Conv(*args, **kwargs)


def test_dense_width_scalings_must_be_positive_ints():
    with pytest.raises(ValueError, match=r"Dense\(3\): s must be a pair"):
        stax.Dense(3, parameterization="standard", s=(1,))
    with pytest.raises(ValueError, match=r"Dense\(3\): s\[0\] must be an integer >= 1; got 0"):
        stax.Dense(3, parameterization="standard", s=(0, 1))
