"""CIFAR-10 / CIFAR-100 from torchvision's folders (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.config import DataConfig
from engine.data.source import DataError, RawData

CIFAR_DEFAULT_ROOT = "./data"


def load_cifar(cfg: DataConfig) -> RawData:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls, folder, classes, label = (
        (CIFAR10, "cifar-10-batches-py", 10, "CIFAR-10") if cfg.dataset == "cifar10"
        else (CIFAR100, "cifar-100-python", 100, "CIFAR-100"))
    root = Path(cfg.root or CIFAR_DEFAULT_ROOT)
    how = (f"set [data].root to a folder holding torchvision's {folder} (with internet, "
           f"torchvision.datasets.{cls.__name__}(root, download=True) fetches it once)")
    if not (root / folder).is_dir():
        raise DataError(f"{label} not found: no {folder} folder in {root}; {how}")
    parts = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=False)
        except RuntimeError as exc:
            raise DataError(f"{label} in {root / folder} is incomplete or fails torchvision's "
                            f"checksum check; {how}") from exc
        except Exception as exc:  # unpickling garbage raises many kinds of error
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DataError(f"{label} in {root / folder} is unreadable ({reason}); {how}") from exc
        x = np.ascontiguousarray(np.asarray(ds.data, dtype=np.uint8).transpose(0, 3, 1, 2))
        y = np.asarray(ds.targets, dtype=np.int64)
        if len(x) != len(y) or (y.size and (y.min() < 0 or y.max() >= classes)):
            raise DataError(f"{label} in {root / folder}: labels do not match the images; {how}")
        parts += [x, y]
    return RawData(*parts, classes)
