"""The `smash` command's entry point: commands that train or score go onto the engine's
allocator first, then the command runs.

`reexec` must run before anything imports torch; nothing imported here does (cli.main
loads a command's module only when it runs), and engine/runtime/allocator.py says why
the allocator matters. Only the commands that do the heavy work in their own process
restart: the engine starts its jobs on the allocator itself, and the rest (the listings,
the dashboard, `smash graph`'s browser) are left on the system's.
"""

from __future__ import annotations

import sys

from cli.main import main as run
from engine.runtime import allocator

HEAVY = frozenset({"train", "score", "retrain", "correlate"})


def command_of(argv: list[str]) -> str | None:
    """The subcommand in `smash ARGS`: the first argument that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def main() -> int:
    if command_of(sys.argv[1:]) in HEAVY:
        allocator.reexec()
    return run()
