"""argparse ``type=`` converters that refuse out-of-range numbers while the command line is parsed,
before any work starts (``argument --trials: must be >= 1; got 0``, exit 2)."""

from __future__ import annotations

import argparse
import math

__all__ = ["int_at_least", "non_negative_float", "non_negative_int", "positive_float", "positive_int"]


def _int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}; got {value}")
    return value


def _float(text: str, allow_zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise argparse.ArgumentTypeError(f"must be finite and {'>= 0' if allow_zero else '> 0'}; got {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _int(text, 0)


def int_at_least(low: int):
    """A converter for integers >= ``low`` (e.g. 2 for a standard error over trials)."""
    def convert(text: str) -> int:
        return _int(text, low)

    convert.__name__ = f"int_at_least_{low}"
    return convert


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _float(text, allow_zero=False)


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _float(text, allow_zero=True)
