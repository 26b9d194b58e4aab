"""The ``ntk-mlft`` console script: one sub-command per module in :mod:`ntk_mlft.commands`.

Every sub-command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. This file only wires them up and adds the options every command shares:
``--seed``, ``--out``, ``--json`` and ``--quiet``. Sub-command modules are imported lazily so
``ntk-mlft --help`` stays fast and a broken optional dependency only affects its command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser", "COMMANDS"]

# name -> module under ntk_mlft.commands
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "allocate": "allocate",
    "curves": "curves",
    "validate": "validate",
    "generate": "generate",
    "costs": "costs",
}


def _available_commands() -> dict[str, object]:
    """Import each registered command module; skip ones that are not present yet."""
    found = {}
    for name, module in COMMANDS.items():
        try:
            found[name] = importlib.import_module(f"ntk_mlft.commands.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"ntk_mlft.commands.{module}":
                raise
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ntk-mlft",
        description="Multi-Level Fine-Tuning budget allocation in the NTK regime.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available_commands().items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        common = p.add_argument_group("common options")
        common.add_argument("--seed", type=int, default=0, help="random seed (all randomness derives from it)")
        common.add_argument("--out", type=str, default=None, help="output file or folder (command-specific)")
        common.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
        common.add_argument("--quiet", action="store_true", help="no progress bars or chatter on stderr")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code. Input errors exit with code 2 and a message."""
    import jax

    jax.config.update("jax_enable_x64", True)
    args = build_parser().parse_args(argv)
    from ntk_mlft._progress import set_progress_enabled

    set_progress_enabled(not args.quiet and not args.json)
    try:
        return int(args._run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"ntk-mlft {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
