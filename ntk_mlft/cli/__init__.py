"""The ``ntk-mlft`` console script: ``main`` wires one module per sub-command (``allocate``,
``curves``, ``demo``, ``validate``, ``generate``, ``costs``); ``_problem_args`` holds the options
shared by the commands that take a built-in problem."""

from ntk_mlft.cli.entry import COMMANDS as COMMANDS
from ntk_mlft.cli.entry import build_parser as build_parser
from ntk_mlft.cli.entry import main as main

__all__ = ["COMMANDS", "build_parser", "main"]
