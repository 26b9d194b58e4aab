"""`ntk-mlft transfer scaling`: --help, a small run's strict JSON and files, bad input exits 2
with one line."""

import json

import pytest

from ntk_mlft.cli import entry as cli

SMALL = ["transfer", "scaling", "--system", "poisson-aniso-2d", "--n-source-pool", "40", "--n-target-pool", "40",
         "--n-pre", "20", "--n-down", "4:20:4", "--size", "8", "--quiet"]


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["transfer", "scaling", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--n-pre", "--n-down", "--mixed", "--budgets", "--costs", "--seed", "--out", "--json"):
        assert opt in text


@pytest.mark.slow  # ~6 s
def test_small_run_writes_json_and_figures(tmp_path, capsys):
    out = tmp_path / "ts"
    code = cli.main([*SMALL, "--out", str(out), "--json", "--cache", str(tmp_path / "cache"),
                     "--n-pre-grid", "5,20", "--budgets", "30,100", "--seed", "3"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    study = report["studies"][0]
    assert len(study["curves"]) == 4 and study["shifts"][0] == 0.0
    curve = study["curves"][0]
    assert curve["n_down"] == [4, 7, 12, 20] and all(e > 0 for e in curve["finetune"] + curve["scratch"])
    assert len(report["plans"]) == 1 and len(report["plans"][0]["n_pre"]) == 2
    for f in report["files"]:
        assert (tmp_path / f).exists() or __import__("pathlib").Path(f).exists()
    assert (out / "samples_saved.png").exists() and (out / "samples_saved.pdf").exists()


@pytest.mark.parametrize("extra, message", [
    (["--n-down", "10:60:3"], "exceeds the target pool"),
    (["--n-pre", "41"], "exceeds the source pool"),
    (["--source-range", "5,1"], "inverted"),
    (["--target-ranges", "1,5;3,3"], "empty"),
    (["--costs", "10,1"], "strictly increasing"),
    (["--budgets", "10"], "--budgets needs --n-pre-grid"),
    (["--n-down", "a:b"], "--n-down must be integers"),
])
def test_bad_input_exits_2_with_one_line(extra, message, capsys, tmp_path):
    code = cli.main([*SMALL, *extra, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_generate_accepts_a_range_parameter(tmp_path, capsys):
    args = ["generate", "--problem", "poisson-aniso-2d", "--param", "range=2,3", "--param", "n_input=16",
            "--param", "n_coarse=16", "--param", "n_output=8", "--counts", "4", "--out", str(tmp_path / "g"),
            "--json"]
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == [4]
    assert cli.main([*args[:4], "range=3,2", *args[5:]]) == 2
    assert "inverted" in capsys.readouterr().err
