"""Load a configured data set into train / validation / test tensors with its channel statistics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from core.config import DataConfig
from engine.data.cifar import load_cifar
from engine.data.fashion_mnist import load_fashion_mnist
from engine.data.imagefolder import load_imagefolder
from engine.data.npz import load_npz
from engine.data.source import DataError, RawData
from engine.data.synthetic import load_synthetic

LOADERS: dict[str, Callable[[DataConfig], RawData]] = {
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar,
    "cifar100": load_cifar,
    "imagefolder": load_imagefolder,
    "npz": load_npz,
    "synthetic": load_synthetic,
}
"""The source behind each `[data].dataset` name. core.config.DATASETS lists the same
names in the same order (the config is checked without importing torch; a test keeps
the two equal)."""


@dataclass
class DataSplits:
    """Train / validation / test images in memory; val is held out of train by the run seed."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)


def load_data(cfg: DataConfig, seed: int) -> DataSplits:
    """Load `cfg.dataset`, apply the limits, hold out `val_size` training images by `seed`."""
    if cfg.dataset not in LOADERS:
        raise DataError(f"[data].dataset = {cfg.dataset!r}; allowed: {', '.join(LOADERS)}")
    raw = LOADERS[cfg.dataset](cfg)

    train_x, train_y = _limit(raw.train_x, cfg.limit_train), _limit(raw.train_y, cfg.limit_train)
    test_x, test_y = _limit(raw.test_x, cfg.limit_test), _limit(raw.test_y, cfg.limit_test)
    n = len(train_x)
    if cfg.val_size >= n:
        limited = f" (limit_train = {cfg.limit_train})" if cfg.limit_train else ""
        raise DataError(f"[data].val_size = {cfg.val_size} but {cfg.dataset} has only {n} training "
                        f"images{limited}; lower val_size so some remain for training")
    if len(test_x) == 0:
        raise DataError(f"{cfg.dataset}: the test set is empty")

    train_x_t = torch.tensor(train_x, dtype=torch.uint8)
    train_y_t = torch.tensor(train_y, dtype=torch.int64)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx = perm[:cfg.val_size].sort().values
    keep_idx = perm[cfg.val_size:].sort().values
    train_x_t, val_x_t = train_x_t[keep_idx], train_x_t[val_idx]
    train_y_t, val_y_t = train_y_t[keep_idx], train_y_t[val_idx]

    mean, std = channel_stats(train_x_t)
    return DataSplits(
        name=cfg.dataset,
        train_x=train_x_t, train_y=train_y_t,
        val_x=val_x_t, val_y=val_y_t,
        test_x=torch.tensor(test_x, dtype=torch.uint8),
        test_y=torch.tensor(test_y, dtype=torch.int64),
        num_classes=raw.num_classes, mean=mean, std=std,
    )


def _limit(a: np.ndarray, n: int) -> np.ndarray:
    return a[:n] if n > 0 else a


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of x / 255, exact via a 256-bin histogram (no float copy).

    A constant channel gets std 1 so normalising never divides by zero.
    """
    values = torch.arange(256, dtype=torch.float64)
    means, stds = [], []
    for c in range(x.shape[1]):
        hist = torch.bincount(x[:, c].reshape(-1).cpu(), minlength=256).to(torch.float64)
        total = hist.sum()
        m = (hist * values).sum() / total
        var = ((hist * (values - m) ** 2).sum() / total).item()
        means.append(m.item() / 255.0)
        stds.append(var**0.5 / 255.0 if var > 0 else 1.0)
    return tuple(means), tuple(stds)
