"""`python -m cli ...` runs the `smash` command, so `torchrun -m cli train ...` works."""

from __future__ import annotations

import sys

from cli.boot import main

if __name__ == "__main__":
    sys.exit(main())
