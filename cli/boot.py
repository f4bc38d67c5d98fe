"""The `smash` command's entry point: commands that train or score go onto the engine's
allocator first, then the command runs.

`reexec` must run before anything imports torch, so this module imports the command
itself (cli.main, which imports torch) only after it has run; engine/runtime/allocator.py
says why the allocator matters. Only the commands that do the heavy work in their own
process restart: the engine starts its jobs on the allocator itself, and the rest (the
dashboard, `smash graph`'s browser) are left on the system's.
"""

from __future__ import annotations

import sys

from engine.runtime import allocator  # torch-free: safe before the restart

HEAVY = frozenset({"train", "score", "retrain", "correlate"})


def command_of(argv: list[str]) -> str | None:
    """The subcommand in `smash ARGS`: the first argument that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def main() -> int:
    if command_of(sys.argv[1:]) in HEAVY:
        allocator.reexec()
    from cli.main import main as run

    return run()
