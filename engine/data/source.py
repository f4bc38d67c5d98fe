"""What every data source returns, the limits that guard loading, and the held-out split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.errors import BadRequest

HOLDOUT_SEED = 20240601
"""Seeds the 1/6 test hold-out (ImageFolder/npz without a test set) and the ImageFolder
shuffle. Fixed, not the run seed, so runs with different seeds share one test set."""
MAX_CLASSES = 100_000
"""Labels at or above this are refused: the classifier would be sized by them."""
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
"""Larger images are refused before decoding (a small PNG can claim gigapixels)."""
MAX_ARRAY_BYTES = 64 * 1024**3
"""An .npz array claiming more is refused before numpy allocates it."""


class DataError(BadRequest):
    """Data missing or malformed; message is one line saying what is wrong and how to get it."""


@dataclass
class RawData:
    """A source's images before limits and the validation split (numpy, NCHW uint8)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int


def holdout(n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) splitting a fixed, seeded 1/6 off as test; each kept in order."""
    if n < 2:
        raise DataError(f"{what}: {n} image(s); need at least 2 to hold out a test set")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED)).numpy()
    k = max(1, n // 6)
    return np.sort(perm[k:]), np.sort(perm[:k])
