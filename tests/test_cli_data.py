"""`ntk-mlft generate` and `ntk-mlft costs`: files written, JSON output, errors exit with code 2."""

import json

import numpy as np

from ntk_mlft.allocation.costs import CostTable
from ntk_mlft.cli import entry as cli
from ntk_mlft.problems import get_problem

DARCY_SMALL = ["--param", "n_coarse=8", "--param", "n_input=16", "--param", "n_output=8"]


def test_generate_paired_writes_dataset_provenance_and_pilot(tmp_path, capsys):
    out = tmp_path / "data"
    code = cli.main(["generate", "--problem", "darcy-2d", *DARCY_SMALL, "--counts", "3,3,3", "--paired",
                     "--out", str(out), "--json", "--seed", "4"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == [3, 3, 3] and summary["grids"] == [8, 16, 32] and summary["levels"] == 3
    with np.load(out / "pilot.npz") as pilot_file, np.load(out / "dataset.npz") as data_file:
        pilot, data = dict(pilot_file), dict(data_file)
    assert set(pilot) >= {"x", "y_level1", "y_level2", "y_level3"}
    p = get_problem("darcy-2d", levels=3, n_coarse=8, n_input=16, n_output=8)
    np.testing.assert_array_equal(pilot["y_level2"], p.solve(pilot["x"], 2))
    np.testing.assert_array_equal(data["x_level3"], pilot["x"])
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 4 and prov["problem"]["name"] == "darcy-2d"
    assert list((out / "cache").glob("*.npz"))
    # the recommended pool for `allocate --pilot`: 3000 unlabeled inputs from the practical path's stream
    from ntk_mlft.studies.error_model import unlabeled_inputs

    assert summary["unlabeled_inputs"] == 3000
    np.testing.assert_array_equal(pilot["x_unlabeled"], unlabeled_inputs(p, 3000, seed=4))


def test_generate_paired_unequal_counts_nested_prefixes_and_common_pilot(tmp_path, capsys):
    out = tmp_path / "nested"
    args = ["generate", "--problem", "elliptic-rough", "--param", "n_coarse=16", "--param", "n_input=32",
            "--param", "n_output=8", "--counts", "6,4,2", "--paired", "--out", str(out), "--json"]
    assert cli.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == [6, 4, 2] and summary["pilot_samples"] == 2
    with np.load(out / "dataset.npz") as data_file, np.load(out / "pilot.npz") as pilot_file:
        data, pilot = dict(data_file), dict(pilot_file)
    np.testing.assert_array_equal(data["x_level2"], data["x_level1"][:4])  # nested prefixes
    np.testing.assert_array_equal(data["x_level3"], data["x_level1"][:2])
    np.testing.assert_array_equal(pilot["x"], data["x_level1"][:2])  # the inputs common to all levels
    for level in (1, 2, 3):
        np.testing.assert_array_equal(pilot[f"y_level{level}"], data[f"y_level{level}"][:2])


def test_generate_unpaired_with_levels_and_workers(tmp_path, capsys):
    out = tmp_path / "d"
    code = cli.main(["generate", "--problem", "burgers-shock", "--levels", "2", "--param", "n_coarse=16",
                     "--param", "n_input=16", "--param", "n_output=8", "--counts", "4,2", "--workers", "2",
                     "--out", str(out), "--quiet"])
    assert code == 0 and capsys.readouterr().out == ""
    with np.load(out / "dataset.npz") as data_file:
        data = dict(data_file)
    assert data["x_level1"].shape == (4, 16) and data["y_level2"].shape == (2, 8)
    assert not (out / "pilot.npz").exists()


def test_generate_errors(tmp_path, capsys):
    base = ["generate", "--out", str(tmp_path)]
    assert cli.main([*base, "--problem", "nope", "--counts", "1"]) == 2
    assert "available problems: elliptic-rough" in capsys.readouterr().err
    assert cli.main([*base, "--counts", "4,x"]) == 2
    assert "--counts must be comma-separated integers" in capsys.readouterr().err
    assert cli.main([*base, "--counts", "4,0,1"]) == 2
    assert "must be >= 1; got 0" in capsys.readouterr().err
    assert cli.main([*base, "--counts", "4,2", "--levels", "3"]) == 2
    assert "one sample count per level (3 levels)" in capsys.readouterr().err
    assert cli.main([*base, "--counts", "1,1", "--param", "sigma"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert cli.main([*base, "--counts", "1,1", "--param", "n_coarse=1.5"]) == 2
    assert "n_coarse must be an integer" in capsys.readouterr().err


def test_costs_writes_readable_table(tmp_path, capsys):
    out = tmp_path / "costs.csv"
    # grids 16 and 64: a 16x cost ratio, so the measured costs increase even on a busy machine
    code = cli.main(["costs", "--problem", "darcy-2d", "--levels", "2", "--param", "n_coarse=16",
                     "--param", "refinement=4", "--param", "n_input=16", "--param", "n_output=8",
                     "--repeats", "3", "--samples", "1",
                     "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    table = CostTable.from_csv(out)
    assert summary["grid"] == [16, 64] and table.n_levels == 2
    np.testing.assert_array_equal(table.cost_seconds, summary["cost_seconds"])
