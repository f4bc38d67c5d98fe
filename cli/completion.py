"""`smash completion SHELL`: a tab-completion script for every subcommand and option.

shtab writes the script from the parser once, so completing a word runs no Python
(the `smash` command itself imports torch, far too slow to run on every Tab).
"""

from __future__ import annotations

import argparse

import shtab


def add_command(sub, root: argparse.ArgumentParser) -> None:
    c = sub.add_parser("completion", help="print a shell completion script (see the README)")
    c.add_argument("shell", choices=shtab.SUPPORTED_SHELLS)
    c.set_defaults(func=lambda args: print(shtab.complete(root, shell=args.shell)))
