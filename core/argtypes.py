"""Command-line value checks: every number and name a user types is bounded here.

argparse calls these as `type=` converters; a bad value becomes one line (the
parser's `error`, below) and exit code 2, before any file or store row is touched.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from core.ids import check_run_id

SEED_MAX = 2**32 - 1
INT_MAX = 2**31 - 1


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def int_in(lo: int, hi: int = INT_MAX) -> Callable[[str], int]:
    """An integer converter that accepts lo..hi inclusive."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range; allowed {lo}..{hi}")
        return value
    convert.__name__ = "integer"
    return convert


def int_list(lo: int, hi: int = INT_MAX) -> Callable[[str], tuple[int, ...]]:
    """A comma list of integers in lo..hi ("8" or "1,2,4,8"), sorted, each once."""
    one = int_in(lo, hi)

    def convert(text: str) -> tuple[int, ...]:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError("give at least one integer")
        return tuple(sorted({one(p) for p in parts}))
    convert.__name__ = "integer list"
    return convert


def float_in(lo: float, hi: float, *, open_low: bool = False) -> Callable[[str], float]:
    """A finite float converter in [lo, hi] (or (lo, hi] with open_low)."""
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        low_ok = value > lo if open_low else value >= lo
        if not (math.isfinite(value) and low_ok and value <= hi):
            bracket = "(" if open_low else "["
            raise argparse.ArgumentTypeError(f"{text} is out of range; allowed {bracket}{lo:g}, {hi:g}]")
        return value
    convert.__name__ = "number"
    return convert


def run_id(text: str) -> str:
    """A run id that names a folder directly inside the workdir."""
    try:
        return check_run_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


seed = int_in(0, SEED_MAX)
port = int_in(1, 65535)
