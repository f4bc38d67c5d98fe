"""One result, three forms: a readable table, one JSON document, or CSV.

Every listing command builds a `Listing` (a JSON document for scripts, a DataFrame for
the table and the CSV, a few header lines for people) and `emit` prints the form asked
for. JSON keeps the store's numbers exactly (floats through `repr`, NaN as null);
only the table rounds them. The table writes SMASH scores in their run's score metric
(core.metric: error as a percentage, loss in nats as a plain number).
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TextIO

import numpy as np
import pandas as pd

from core.board import MISSING
from core.metric import format_score

SCORES = {"score_mean", "score_std", "best_score", "score_lo", "score_hi"}
"""SMASH score columns: shown in the run's score metric."""
PERCENT = {"test_error", "val_error", "progress", "predicted"} | SCORES
COMPACT = {"params", "flops"}


@dataclass
class Listing:
    """What a command found: `doc` for --json, `frame` for the table and --csv."""

    doc: Any
    frame: pd.DataFrame
    header: list[str] = field(default_factory=list)
    empty: str = "nothing to show"
    table: pd.DataFrame | None = None
    """What the table shows, when it differs from `frame` (fewer, merged columns)."""
    metric: str = "error"
    """The score metric of the run whose scores the table shows (core.metric)."""


def plain(value: Any) -> Any:
    """A value JSON can carry: numpy scalars unwrapped, NaN/NaT as None, times as ISO text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    return value


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts, every value JSON-ready."""
    return [plain(row) for row in frame.astype(object).to_dict("records")]


def compact(n: Any) -> str:
    if n is None or pd.isna(n):
        return MISSING
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return str(int(n))


def cell(column: str, value: Any, metric: str = "error") -> str:
    """How the table shows one value of `column`; a score in `metric`, the run's score metric."""
    if value is None or (not isinstance(value, str | list | dict | tuple) and pd.isna(value)):
        return MISSING
    if column in SCORES and isinstance(value, int | float | np.number):
        return format_score(float(value), metric)
    if column in PERCENT and isinstance(value, int | float | np.number):
        return f"{float(value):.2%}"
    if column in COMPACT:
        return compact(value)
    if isinstance(value, datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


def table_text(frame: pd.DataFrame, metric: str = "error") -> str:
    shown = pd.DataFrame({c: [cell(c, v, metric) for v in frame[c]] for c in frame.columns})
    return shown.to_string(index=False)


def emit(listing: Listing, form: str = "table", out: TextIO | None = None) -> None:
    """Print `listing` as `form`: table, json or csv."""
    out = out or sys.stdout
    try:
        _write(listing, form, out)
    except BrokenPipeError:  # `smash top | head`: the reader left; send the rest nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _write(listing: Listing, form: str, out: TextIO) -> None:
    if form == "json":
        out.write(json.dumps(plain(listing.doc), indent=2) + "\n")
    elif form == "csv":
        listing.frame.to_csv(out, index=False)
    else:
        for line in listing.header:
            out.write(line + "\n")
        shown = listing.frame if listing.table is None else listing.table
        out.write((table_text(shown, listing.metric) if len(shown) else listing.empty) + "\n")


def form_of(args) -> str:
    return "json" if args.json else "csv" if args.csv else "table"
