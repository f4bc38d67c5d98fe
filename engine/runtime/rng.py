"""Named seeded random streams, so every step's draws are reproducible from (seed, step, stream)."""

from __future__ import annotations

import numpy as np
import torch


def step_rng(seed: int, step: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, step])


def torch_gen(seed: int, step: int, stream: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed, stream, step]).generate_state(1)[0]))
    return g
