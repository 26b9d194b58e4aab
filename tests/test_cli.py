"""The CLI wiring: every registered command has --help and the common options."""

import pytest

from ntk_mlft import cli


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "ntk-mlft" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(cli._available_commands()))
def test_every_command_has_common_options(name, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--seed", "--out", "--json", "--quiet"):
        assert option in text, f"{name} --help lacks {option}"
