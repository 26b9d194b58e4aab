"""``ntk-mlft transfer layers``: help, and bad input refused in one line before any training."""

from __future__ import annotations

import pytest

from ntk_mlft.cli import entry as cli


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["transfer", "layers", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--base", "--targets", "--layers", "--measure-pairs", "--seed", "--json"):
        assert option in out


@pytest.mark.parametrize("extra, message", [
    (["--layers", "conv9"], r"unknown layer 'conv9'; the network's groups are \['layer_00_Conv'"),
    (["--layers", "0,7"], r"layer index 7 is out of range: the network has 6 groups"),
    (["--layers", "0,+"], r"nothing is trainable"),
    (["--targets", "turbulence-sgs-2d:kf8"], r"spatial dimension"),
    (["--targets", "nope"], r"unknown SGS system 'nope'"),
])
def test_bad_input_exits_2_with_one_line(extra, message, capsys, tmp_path):
    import re

    code = cli.main(["transfer", "layers", "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and re.search(message, err), err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_small_run_prints_strict_json(tmp_path, capsys):
    import json

    code = cli.main(["transfer", "layers", "--out", str(tmp_path), "--json", "--depth", "3", "--width", "4",
                     "--n-base", "20", "--base-steps", "10", "--n-target", "4", "--retrain-steps", "5",
                     "--seeds", "2", "--n-boot", "2", "--layers", "0,-1,0+1", "--targets", "burgers-sgs-1d:re2x"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    target = report["targets"][0]
    assert target["sets"] == ["layer_00_Conv", "layer_04_Conv", "layer_00_Conv+layer_02_Conv"]
    assert set(target["measured"]) == {"layer_00_Conv", "layer_04_Conv"}
    assert (tmp_path / "transfer_layers.json").exists() and (tmp_path / "transfer_layers.png").exists()
