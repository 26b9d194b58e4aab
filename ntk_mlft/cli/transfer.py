"""``ntk-mlft transfer``: transfer-learning questions answered by the same kernel machinery.

Sub-commands, one module each (``ntk_mlft.cli.transfer_<name>`` with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``, like the top-level commands):
``scaling`` (downstream samples saved by fine-tuning from another physics regime) and
``layers`` (which layers of a trained network to re-train, from per-layer NTKs). A module that is
not installed is left out of ``--help``.
"""

from __future__ import annotations

import argparse
import importlib

HELP = "transfer across physics: samples saved by fine-tuning (scaling), which layers to re-train (layers)"

SUBCOMMANDS: dict[str, str] = {
    "scaling": "ntk_mlft.cli.transfer_scaling",
    "layers": "ntk_mlft.cli.transfer_layers",
}


def _available() -> dict[str, object]:
    found = {}
    for name, module in SUBCOMMANDS.items():
        try:
            found[name] = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.cli.entry import add_common_options

    sub = parser.add_subparsers(dest="transfer_command", metavar="SUBCOMMAND", required=True)
    for name, module in _available().items():
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__ or module.HELP,
                           formatter_class=parser.formatter_class)
        add_common_options(p, suppress_defaults=True)
        module.add_arguments(p)
        p.set_defaults(_transfer_run=module.run)


def run(args: argparse.Namespace) -> int:
    return int(args._transfer_run(args) or 0)
