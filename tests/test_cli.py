"""The CLI wiring: every registered command has --help and the common options."""

import pytest

from ntk_mlft.cli import entry as cli


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "ntk-mlft" in text and "typical session" in text
    for name, module in cli._available_commands().items():
        assert name in text and module.HELP.split()[0] in text


@pytest.mark.parametrize("name", sorted(cli._available_commands()))
def test_every_command_has_common_options(name, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--seed", "--out", "--json", "--quiet"):
        assert option in text, f"{name} --help lacks {option}"


@pytest.mark.parametrize("name", sorted(cli._available_commands()))
def test_command_help_shows_the_module_docstring_as_plain_text(name, capsys):
    with pytest.raises(SystemExit):
        cli.main([name, "--help"])
    text = capsys.readouterr().out
    assert f"ntk-mlft {name}" in text.split("options:")[0]   # the docstring's first line is the description
    assert "``" not in text and ":mod:" not in text and ":class:" not in text
    assert "(default: None)" not in text


def test_plain_strips_rest_markup():
    doc = "see :mod:`ntk_mlft.studies.error_model` and :class:`~ntk_mlft.allocation.costs.CostTable`, ``--out``"
    assert cli._plain(doc) == \
        "see ntk_mlft.studies.error_model and CostTable, --out"
