"""Bad input to stax layers and kernel functions: clear ValueError/TypeError naming the layer,
the argument and the shapes."""

from __future__ import annotations

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
