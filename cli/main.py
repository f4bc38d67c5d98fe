"""The `smash` command: parse the arguments, run the command, print its summary.

Every error a user can fix (a bad config, a missing run, an unusable file...) becomes
one line on stderr and exit code 2; a cancelled job exits 3, Ctrl-C 130.
"""

from __future__ import annotations

import json
import os
import sys

from cli.commands import CLIError
from cli.dashboard import LaunchError
from cli.parser import build_parser
from core.arch import ArchError
from core.config import ConfigError
from core.errors import BadRequest, Cancelled
from core.ids import RunIdError
from core.jobs import JobError
from engine.data.source import DataError
from engine.exec.spec import ExecutorError
from engine.export import ExportError
from engine.jobs.supervisor import EngineError
from engine.runtime.checkpoint import CheckpointError
from engine.runtime.workdir import RunBusyError
from engine.scoring.scorer import ScoreError
from engine.study import CorrelateError
from store import StoreError

__all__ = ["USER_ERRORS", "build_parser", "main"]

USER_ERRORS = (ConfigError, DataError, ArchError, StoreError, CheckpointError, ExportError,
               CorrelateError, ExecutorError, BadRequest, ScoreError, EngineError, JobError,
               RunIdError, RunBusyError, LaunchError, CLIError)


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
    except USER_ERRORS as exc:
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
