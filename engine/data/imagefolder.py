"""An ImageFolder tree of class folders, decoded and resized."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from core.config import DataConfig
from engine.data.source import HOLDOUT_SEED, MAX_IMAGE_PIXELS, DataError, RawData, holdout

IMAGEFOLDER_DEFAULT_SIZE = 32
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _scan_classes(folder: Path) -> dict[str, list[Path]]:
    """Class name -> sorted image files (recursive), like torchvision's ImageFolder.

    Symlinked folders are followed, but a folder reached twice (a loop, or one class
    linking into another) is refused: its images would be read again under a wrong label."""
    found: dict[str, list[Path]] = {}
    seen: set[str] = set()
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = []
        for dirpath, _, names in os.walk(d, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:
                raise DataError(f"{dirpath}: leads to {real}, a folder already read (a symlink loop "
                                "or a link into another class); remove the link")
            seen.add(real)
            files += [Path(dirpath) / f for f in names if f.lower().endswith(IMAGE_EXTENSIONS)]
        found[d.name] = sorted(files)
    return found


def _decode(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise DataError(f"{path}: {img.width} x {img.height} pixels; images larger than "
                                f"{MAX_IMAGE_PIXELS} pixels are refused")
            rgb = img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, DataError):
            raise
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{path}: not a readable image ({reason})") from exc
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def _decode_all(paths: Sequence[Path], size: int) -> np.ndarray:
    """Decode in threads (PIL releases the GIL), keeping order."""
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    if not paths:
        return out
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        for i, arr in enumerate(pool.map(lambda p: _decode(p, size), paths)):
            out[i] = arr
    return out


def _decode_samples(samples: list[tuple[Path, int]], limit: int, size: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of the first `limit` samples (all when 0)."""
    samples = samples[:limit] if limit > 0 else samples
    return (_decode_all([p for p, _ in samples], size),
            np.array([c for _, c in samples], dtype=np.int64))


def _shuffled(samples: list[tuple[Path, int]]) -> list[tuple[Path, int]]:
    """ImageFolder lists class by class; shuffle (fixed seed) so "first N" spans all classes."""
    perm = torch.randperm(len(samples), generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    return [samples[i] for i in perm.tolist()]


def load_imagefolder(cfg: DataConfig) -> RawData:
    if not cfg.root:
        raise DataError("[data].root is empty; set it to an ImageFolder directory (one subfolder per class)")
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"ImageFolder root {root} is not a directory; set [data].root to one "
                        "with one subfolder of images per class")
    size = cfg.image_size or IMAGEFOLDER_DEFAULT_SIZE
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes = _scan_classes(train_dir)
    if not classes:
        raise DataError(f"{train_dir}: no class subfolders; ImageFolder needs one subfolder of "
                        "images per class")
    empty = [c for c, files in classes.items() if not files]
    if empty:
        raise DataError(f"{train_dir}: class folder(s) {', '.join(empty)} hold no images "
                        f"({', '.join(IMAGE_EXTENSIONS)}); remove them or add images")
    index = {c: i for i, c in enumerate(classes)}
    train = _shuffled([(f, index[c]) for c, files in classes.items() for f in files])

    test = None
    if train_dir != root and (root / "test").is_dir():
        test_classes = _scan_classes(root / "test")
        unknown = [c for c in test_classes if c not in index]
        if unknown:
            raise DataError(f"{root / 'test'}: class folder(s) {', '.join(unknown)} are not in "
                            f"{train_dir}; test classes must be training classes")
        test = _shuffled([(f, index[c]) for c, files in test_classes.items() for f in files])
        if not test:
            raise DataError(f"{root / 'test'}: no images; remove the folder or add images")

    if test is None:
        keep, held = holdout(len(train), str(train_dir))
        train, test = [train[i] for i in keep], [train[i] for i in held]
    # Limits are applied again by load_data; decoding only what they keep saves time.
    raw = RawData(*_decode_samples(train, cfg.limit_train, size),
                  *_decode_samples(test, cfg.limit_test, size), 0)
    raw.num_classes = len(classes)
    # Grayscale images come through convert("RGB") with three equal channels: keep one.
    gray = all((a[:, 0] == a[:, 1]).all() and (a[:, 1] == a[:, 2]).all()
               for a in (raw.train_x, raw.test_x))
    if gray:
        raw.train_x, raw.test_x = raw.train_x[:, :1], raw.test_x[:, :1]
    return raw
