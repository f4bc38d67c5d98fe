"""What every data source returns, the limits that guard loading, and the held-out split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

HOLDOUT_SEED = 20240601
MAX_CLASSES = 100_000
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
MAX_ARRAY_BYTES = 64 * 1024**3


class DataError(ValueError):
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
