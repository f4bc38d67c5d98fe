"""Images and labels from a user's .npz file, checked before they are read."""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from core.config import DataConfig
from engine.data.source import MAX_ARRAY_BYTES, MAX_CLASSES, DataError, RawData, holdout


def _npz_images(arr: np.ndarray, key: str, path: Path) -> np.ndarray:
    if arr.dtype != np.uint8:
        raise DataError(f"{path}: '{key}' has dtype {arr.dtype}; expected uint8 images")
    if arr.ndim == 3:
        return arr[:, None]
    if arr.ndim == 4:
        if arr.shape[1] <= 4 < arr.shape[3]:
            raise DataError(f"{path}: '{key}' has shape {arr.shape}, which looks like N x C x H x W; "
                            "store images as N x H x W x C (numpy: x.transpose(0, 2, 3, 1))")
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
    raise DataError(f"{path}: '{key}' has shape {arr.shape}; expected N x H x W or N x H x W x C")


def _npz_labels(arr: np.ndarray, key: str, n: int, path: Path) -> np.ndarray:
    if arr.dtype.kind not in "iu":
        raise DataError(f"{path}: '{key}' has dtype {arr.dtype}; expected integer class labels")
    if arr.shape != (n,):
        raise DataError(f"{path}: '{key}' has shape {arr.shape}; expected ({n},), one label per image")
    if arr.size and arr.min() < 0:
        raise DataError(f"{path}: '{key}' holds negative label {int(arr.min())}; expected labels >= 0")
    if arr.size and arr.max() >= MAX_CLASSES:
        raise DataError(f"{path}: '{key}' holds label {int(arr.max())}; labels must be below {MAX_CLASSES}")
    return arr.astype(np.int64)


def _check_npz_headers(path: Path) -> None:
    """Refuse an .npz whose array headers claim more bytes than their members hold
    (numpy would allocate what the header says before reading a byte of data)."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
            claimed = math.prod(shape) * dtype.itemsize
            if claimed > min(info.file_size, MAX_ARRAY_BYTES):
                raise DataError(f"{path}: array {info.filename[:-4]!r} claims shape {shape} "
                                f"({claimed} bytes) but holds {info.file_size} bytes")


def load_npz(cfg: DataConfig) -> RawData:
    if not cfg.root:
        raise DataError("[data].root is empty; set it to an .npz file with arrays x and y")
    path = Path(cfg.root)
    if not path.is_file():
        raise DataError(f"npz file {path} not found; set [data].root to an .npz file with arrays x and y")
    try:
        _check_npz_headers(path)
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            arrays = {k: z[k] for k in ("x", "y", "x_test", "y_test") if k in keys}
    except MemoryError:
        raise DataError(f"{path}: its arrays do not fit in memory") from None
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataError):
            raise
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{path}: not a readable .npz file ({reason})") from exc
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path}: missing array '{key}'; expected x (N x H x W [x C] uint8) "
                            f"and y (N integer labels)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, lack = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise DataError(f"{path}: has '{have}' but not '{lack}'; give both or neither")
    x = _npz_images(arrays["x"], "x", path)
    y = _npz_labels(arrays["y"], "y", len(x), path)
    if len(x) == 0:
        raise DataError(f"{path}: 'x' holds no images")
    if "x_test" in arrays:
        xt = _npz_images(arrays["x_test"], "x_test", path)
        yt = _npz_labels(arrays["y_test"], "y_test", len(xt), path)
        if xt.shape[1:] != x.shape[1:]:
            raise DataError(f"{path}: 'x_test' images are {xt.shape[1:]} (C, H, W) but 'x' images "
                            f"are {x.shape[1:]}; they must match")
        raw = RawData(x, y, xt, yt, 0)
    else:
        keep, held = holdout(len(x), str(path))
        raw = RawData(x[keep], y[keep], x[held], y[held], 0)
    raw.num_classes = int(max(y.max(), raw.test_y.max(initial=0))) + 1
    return raw
