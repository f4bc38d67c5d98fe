"""`smash completion SHELL`: a tab-completion script for every subcommand and option.

shtab writes the script from the parser once, so completing a word runs no Python.
"""

from __future__ import annotations

import argparse

import shtab

from cli.parser import build_parser


def cmd_completion(args: argparse.Namespace) -> None:
    print(shtab.complete(build_parser(), shell=args.shell))
