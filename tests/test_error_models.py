"""PowerLawErrorModel: hand-computed values, the skipping rule, finite-difference gradient, input errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tol

from ntk_mlft.estimators.base import ErrorModel, PowerLawErrorModel, check_counts, effective_counts


def _model() -> PowerLawErrorModel:
    return PowerLawErrorModel(coef=[4.0, 2.0, 0.5], exponent=[1.0, 0.5, 2.0], floor=0.01)


def test_error_matches_hand_computation():
    m = _model()
    # 0.01 + 4/8 + 2/sqrt(16) + 0.5/3**2
    expected = 0.01 + 0.5 + 0.5 + 0.5 / 9.0
    assert m.error([8, 16, 3]) == pytest.approx(expected, rel=tol(np.float64))
    assert m.n_levels == 3
    assert isinstance(m, ErrorModel)


def test_skipped_level_moves_its_term_to_the_next_used_level():
    m = _model()
    # level 2 skipped: its term is evaluated at level 3's count
    expected = 0.01 + 4.0 / 8 + 2.0 / np.sqrt(5.0) + 0.5 / 25.0
    assert m.error([8, 0, 5]) == pytest.approx(expected, rel=tol(np.float64))
    # levels 1 and 2 skipped: everything at the finest count
    expected = 0.01 + 4.0 / 5 + 2.0 / np.sqrt(5.0) + 0.5 / 25.0
    assert m.error([0, 0, 5]) == pytest.approx(expected, rel=tol(np.float64))
    np.testing.assert_array_equal(effective_counts(np.array([0.0, 3.0, 0.0, 7.0])), [3.0, 3.0, 7.0, 7.0])


def test_merged_groups_reproduce_the_error():
    m = _model()
    active = np.array([False, True, True])
    groups = m.merged(active)
    assert len(groups) == 2
    counts = {1: 6.0, 2: 11.0}
    total = m.floor + sum(float((c * counts[i + 1] ** -p).sum()) for i, (c, p) in enumerate(groups))
    assert total == pytest.approx(m.error([0, 6, 11]), rel=tol(np.float64))


def test_error_many_matches_error(rng):
    m = _model()
    counts = rng.integers(0, 50, size=(20, 3)).astype(float)
    counts[:, -1] += 1
    np.testing.assert_allclose(m.error_many(counts), [m.error(c) for c in counts], rtol=tol(np.float64))


def test_gradient_matches_central_differences():
    m = _model()
    n = np.array([7.3, 12.1, 4.4])
    h = 1e-5
    fd = [(m.error(n + h * e) - m.error(n - h * e)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(m.gradient(n), fd, rtol=1e-7)


@pytest.mark.parametrize("kwargs, match", [
    (dict(coef=[1.0, -1.0], exponent=[1.0, 1.0]), "coef must be >= 0"),
    (dict(coef=[1.0, 1.0], exponent=[1.0, 0.0]), "exponent must be > 0"),
    (dict(coef=[1.0, 1.0], exponent=[1.0]), "same length"),
    (dict(coef=[1.0, np.nan], exponent=[1.0, 1.0]), "coef must be finite"),
    (dict(coef=[1.0], exponent=[1.0], floor=-0.1), "floor must be finite and >= 0"),
    (dict(coef=[], exponent=[]), "non-empty"),
])
def test_invalid_parameters_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PowerLawErrorModel(**kwargs)


def test_invalid_counts_are_rejected():
    m = _model()
    with pytest.raises(ValueError, match="finest level"):
        m.error([3, 3, 0])
    with pytest.raises(ValueError, match="shape"):
        m.error([3, 3])
    with pytest.raises(ValueError, match=">= 0"):
        check_counts([-1, 2, 3], 3)
    with pytest.raises(ValueError, match="all counts > 0"):
        m.gradient([0, 2, 3])
