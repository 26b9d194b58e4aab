"""The ``ntk-mlft`` console script: one sub-command per module in :mod:`ntk_mlft.cli`.

Every sub-command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. This file only wires them up and adds the options every command shares:
``--seed``, ``--out``, ``--json`` and ``--quiet``. Sub-command modules are imported lazily so
``ntk-mlft --help`` stays fast and a broken optional dependency only affects its command.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

from ntk_mlft.cli._errors import check_no_empty_values, check_out_path, error_line, interrupts_get_through

__all__ = ["COMMANDS", "add_common_options", "build_parser", "main"]

# name -> module under ntk_mlft.cli
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "allocate": "allocate",
    "curves": "curves",
    "validate": "validate",
    "generate": "generate",
    "costs": "costs",
    "transfer": "transfer",
}


def _available_commands() -> dict[str, object]:
    """Import each registered command module; skip ones that are not present yet."""
    found = {}
    for name, module in COMMANDS.items():
        try:
            found[name] = importlib.import_module(f"ntk_mlft.cli.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"ntk_mlft.cli.{module}":
                raise
    return found


_EPILOG = """typical session:
  ntk-mlft costs --problem elliptic-rough --out costs.csv       # seconds per sample per level
  ntk-mlft allocate --costs costs.csv --budget 3600             # optimal N_l (default problem's NTK estimator)
  ntk-mlft curves --costs costs.csv --budgets 60:36000:20 --out results/curves
  ntk-mlft demo                                                 # everything above on the default problem

Every command takes --seed, --out, --json and --quiet; see ntk-mlft COMMAND --help."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's line breaks; shows defaults, except None/False (nothing to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action)


def _plain(doc: str | None) -> str:
    """A module docstring as terminal text: reST roles and double backquotes removed."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: m.group(1).split(".")[-1] if "~" in m.group(0) else m.group(1),
                  doc or "")
    return text.replace("``", "").strip()


MAX_SEED = 2 ** 31 - 1
"""Largest --seed: derived seeds (seed + offsets) stay within JAX's and numpy's integer seeds."""


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..{MAX_SEED}; got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in 0..{MAX_SEED}; got {value}")
    return value


def add_common_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool = False) -> None:
    """``--seed``, ``--out``, ``--json``, ``--quiet`` on ``parser``. ``suppress_defaults`` for a
    nested sub-command: given there they override the parent's, else the parent's value stays."""
    def default(value):
        return argparse.SUPPRESS if suppress_defaults else value

    common = parser.add_argument_group("common options")
    common.add_argument("--seed", type=_seed, default=default(0),
                        help=f"random seed, 0..{MAX_SEED} (all randomness derives from it)")
    common.add_argument("--out", type=str, default=default(None), help="output file or folder (command-specific)")
    common.add_argument("--json", action="store_true", default=default(False),
                        help="print machine-readable JSON on stdout")
    common.add_argument("--quiet", action="store_true", default=default(False),
                        help="no progress bars or chatter on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ntk-mlft",
        description="Multi-Level Fine-Tuning (MLFT) budget allocation in the NTK regime: how many training\n"
                    "samples to buy at each level of a multi-level PDE solver within a budget of solver\n"
                    "seconds, predicted from the neural tangent kernel of the network.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ntk_mlft import __version__

    parser.add_argument("--version", action="version", version=f"ntk-mlft {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available_commands().items():
        p = sub.add_parser(name, help=module.HELP, description=_plain(module.__doc__) or module.HELP,
                           formatter_class=_HelpFormatter)
        add_common_options(p)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code. Bad input (and an ``--out`` that cannot be
    written, checked before any work) exits with code 2 and one line, Ctrl-C with 130, wherever it
    lands (:mod:`ntk_mlft.cli._errors`)."""
    with interrupts_get_through():
        try:
            return _main(argv)
        except KeyboardInterrupt as err:  # one redelivered after the command's own handler
            line = error_line(None, err)
            print(line[0], file=sys.stderr)
            return line[1]


def _main(argv: Sequence[str] | None) -> int:
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        check_no_empty_values(args)
        import jax  # after parsing: --help and --version stay fast

        jax.config.update("jax_enable_x64", True)
        from ntk_mlft._progress import set_progress_enabled

        set_progress_enabled(not args.quiet and not args.json)
        kind = getattr(sys.modules.get(args._run.__module__), "OUT_KIND", None)
        if kind is not None and args.out is not None:
            check_out_path(args.out, kind)
        return int(args._run(args) or 0)
    except (KeyboardInterrupt, ValueError, TypeError, OSError, MemoryError) as err:
        line = error_line(command, err)
        if line is None:
            raise
        print(line[0], file=sys.stderr)
        return line[1]
