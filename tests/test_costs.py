"""CostTable: CSV round trip and every validation rule (levels 1..L, finite, > 0, increasing)."""

import numpy as np
import pytest

from ntk_mlft.allocation.costs import CostTable, as_cost_array


def test_from_costs_and_fields():
    t = CostTable.from_costs([0.5, 1.0, 4.0], grid=[16, 32, 64])
    assert t.n_levels == 3
    np.testing.assert_array_equal(t.level, [1, 2, 3])
    np.testing.assert_array_equal(t.grid, [16, 32, 64])
    assert t.grid.dtype.kind == "i" and t.cost_seconds.dtype == np.float64
    np.testing.assert_array_equal(CostTable.from_costs([1.0, 2.0]).grid, [2, 4])


def test_csv_round_trip_is_exact(tmp_path):
    costs = np.array([1.234567890123e-4, 3.3e-3, 0.1 / 3])
    t = CostTable.from_costs(costs, grid=[32, 64, 128])
    path = t.to_csv(tmp_path / "c.csv")
    text = path.read_text().splitlines()
    assert text[0] == "level,grid,cost_seconds" and len(text) == 4
    back = CostTable.from_csv(path)
    np.testing.assert_array_equal(back.cost_seconds, costs)  # repr() round-trips float64 exactly
    np.testing.assert_array_equal(back.grid, t.grid)


def test_csv_any_row_order_and_whitespace(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("level, grid, cost_seconds\n2, 64, 0.2\n1, 32, 0.1\n\n")
    t = CostTable.from_csv(p)
    np.testing.assert_array_equal(t.cost_seconds, [0.1, 0.2])


@pytest.mark.parametrize("rows, match", [
    ("1,32,0.1\n3,128,0.5\n", r"missing \[2\]"),
    ("1,32,0.1\n1,32,0.2\n", r"duplicated \[1\]"),
    ("1,32,0.2\n2,64,0.1\n", "strictly increasing"),
    ("1,32,0.2\n2,64,0.2\n", "strictly increasing"),
    ("1,32,-0.1\n2,64,0.1\n", "> 0"),
    ("1,32,nan\n2,64,0.1\n", "finite"),
    ("1,32,0.1\n2,0,0.2\n", "positive integers"),
    ("1,x,0.1\n", "integers"),
    ("", "no rows"),
])
def test_csv_bad_tables(tmp_path, rows, match):
    p = tmp_path / "c.csv"
    p.write_text("level,grid,cost_seconds\n" + rows)
    with pytest.raises(ValueError, match=match):
        CostTable.from_csv(p)


def test_csv_missing_column_and_file(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("level,cost_seconds\n1,0.1\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['grid'\]"):
        CostTable.from_csv(p)
    with pytest.raises(FileNotFoundError):
        CostTable.from_csv(tmp_path / "nope.csv")


def test_constructor_validates_levels_and_grid():
    with pytest.raises(ValueError, match="exactly 1..2"):
        CostTable(level=np.array([0, 1]), grid=np.array([1, 2]), cost_seconds=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="one entry per level"):
        CostTable(level=np.array([1, 2]), grid=np.array([1]), cost_seconds=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="positive integers"):
        CostTable.from_costs([1.0, 2.0], grid=[1.5, 2])
    with pytest.raises(TypeError, match="positive integers"):
        CostTable.from_costs([1.0, 2.0], grid=["a", "b"])


def test_as_cost_array():
    t = CostTable.from_costs([1.0, 2.0, 3.0])
    out = as_cost_array(t, n_levels=3)
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])
    out[0] = 99.0  # a copy: the frozen table is not mutated
    assert t.cost_seconds[0] == 1.0
    np.testing.assert_array_equal(as_cost_array([1, 5]), [1.0, 5.0])
    with pytest.raises(ValueError, match=r"one entry per level \(2 levels\); got 3"):
        as_cost_array(t, n_levels=2)
    with pytest.raises(ValueError, match="1-D"):
        as_cost_array([[1.0, 2.0]])
    with pytest.raises(ValueError, match="non-empty"):
        as_cost_array([])
    with pytest.raises(ValueError, match=r"level\(s\) \[2\]"):
        as_cost_array([1.0, np.inf])
    with pytest.raises(TypeError, match="numeric"):
        as_cost_array(["a", "b"])
