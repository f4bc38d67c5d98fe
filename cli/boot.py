"""The `smash` command's entry point: first onto the engine's allocator, then the command.

`reexec` must run before anything imports torch, so this module imports nothing else of
ours until it has run (engine/runtime/allocator.py says why the allocator matters).
"""

from __future__ import annotations


def main() -> int:
    from engine.runtime import allocator

    allocator.reexec()
    from cli.main import main as run

    return run()
