"""`python -m engine ...` runs the `smash` command, so `torchrun -m engine train ...` works."""

from __future__ import annotations

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
