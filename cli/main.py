"""The `smash` command: parse the arguments, run the command, print its summary.

Every error a user can fix (a bad config, a missing run, an unusable file...) derives
from core's BadRequest and becomes one line on stderr and exit code 2; a cancelled job
exits 3, Ctrl-C 130. Nothing here loads the engine: each command's own module does, when
that command runs (cli/parser.py).
"""

from __future__ import annotations

import json
import os
import sys

from cli.parser import build_parser
from core.errors import BadRequest, Cancelled

__all__ = ["build_parser", "main"]


def print_summary(summary: dict, as_json: bool) -> None:
    """A command's summary: one JSON line, or `key: value` lines."""
    if as_json:
        print(json.dumps(summary, default=str))
    else:
        for k, v in summary.items():
            print(f"{k}: {v}")


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # stores, checkpoints and logs are the user's alone
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a bad argument (one line already printed), or --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        summary = args.func(args)
    except BadRequest as exc:
        print(f"smash {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        print(f"smash {args.command}: cancelled: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"smash {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    if summary is not None:  # None: the command printed its own output (the listing commands)
        print_summary(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
