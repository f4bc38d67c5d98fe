"""Learning-rate schedules."""

from __future__ import annotations

import math


def cosine_lr(base: float, step: int, total: int) -> float:
    return 0.5 * base * (1 + math.cos(math.pi * step / max(total, 1)))
