"""Shared argument checks name the argument and what is allowed."""

import numpy as np
import pytest

from ntk_mlft import _progress
from ntk_mlft._checks import as_finite_array, check_choice, check_positive_int, check_positive_scalar


def test_as_finite_array_reports_nan_position():
    with pytest.raises(ValueError, match=r"y must be finite.*first at index \(1, 0\)"):
        as_finite_array("y", [[1.0, 2.0], [np.nan, 3.0]])


def test_as_finite_array_checks_rank_and_type():
    with pytest.raises(ValueError, match=r"x must have ndim in \(2,\); got shape \(3,\)"):
        as_finite_array("x", [1.0, 2.0, 3.0], ndim=2)
    with pytest.raises(TypeError, match="x must be numeric"):
        as_finite_array("x", ["a", "b"])
    assert as_finite_array("x", [1, 2]).dtype == np.float64


@pytest.mark.parametrize("value", [0, -1.5, float("nan"), float("inf")])
def test_positive_scalar_rejects(value):
    with pytest.raises(ValueError, match="budget must be finite and > 0"):
        check_positive_scalar("budget", value)


def test_positive_scalar_types():
    assert check_positive_scalar("lam", 0, allow_zero=True) == 0.0
    with pytest.raises(TypeError, match="budget must be a real number"):
        check_positive_scalar("budget", "10")
    with pytest.raises(TypeError):
        check_positive_scalar("budget", True)


def test_positive_int():
    assert check_positive_int("n", np.int64(3)) == 3
    with pytest.raises(TypeError, match="n must be an integer"):
        check_positive_int("n", 3.0)
    with pytest.raises(ValueError, match="n must be >= 1; got 0"):
        check_positive_int("n", 0)


def test_choice():
    assert check_choice("get", "ntk", ("nngp", "ntk")) == "ntk"
    with pytest.raises(ValueError, match=r"get must be one of \['nngp', 'ntk'\]; got 'x'"):
        check_choice("get", "x", ("nngp", "ntk"))


def test_progress_passes_items_through_when_disabled_or_enabled():
    assert list(_progress.progress(range(4), enabled=False)) == [0, 1, 2, 3]
    assert list(_progress.progress(range(4), enabled=True, desc="t")) == [0, 1, 2, 3]
