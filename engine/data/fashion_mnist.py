"""Fashion-MNIST from Debian's IDX files."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from core.config import DataConfig
from engine.data.source import DataError, RawData

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (gzip when the name ends in .gz), checking it whole."""
    path = Path(path)
    hint = "re-install it (dataset-fashion-mnist) or point [data].root at a good copy"
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                buf = f.read()
        else:
            buf = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{path}: unreadable or truncated ({reason}); {hint}") from exc
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number); {hint}")
    if buf[2] != 0x08:
        raise DataError(f"{path}: IDX element type 0x{buf[2]:02x} is not unsigned byte (0x08); {hint}")
    ndim = buf[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(buf) < header:
        raise DataError(f"{path}: IDX header truncated or with 0 dimensions; {hint}")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(buf) - header != expected:
        raise DataError(f"{path}: header says {'x'.join(map(str, dims))} = {expected} bytes of data, "
                        f"file holds {len(buf) - header}; {hint}")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist(cfg: DataConfig) -> RawData:
    folder = Path(cfg.root or FASHION_MNIST_DIR)
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    paths = [_find_idx(folder, s) for s in stems]
    missing = [s + ".gz" for s, p in zip(stems, paths, strict=True) if p is None]
    if missing:
        detail = "" if len(missing) == 4 else f" (missing {', '.join(missing)})"
        raise DataError(f"Fashion-MNIST not found in {folder}{detail}: install it with "
                        f"`apt-get install dataset-fashion-mnist` or set [data].root")
    arrays = []
    for path, want in zip(paths, (3, 1, 3, 1), strict=True):
        a = read_idx(path)
        if a.ndim != want:
            kind = "images (N x H x W)" if want == 3 else "labels (N)"
            raise DataError(f"{path}: {a.ndim}-D IDX array; expected {want}-D {kind}")
        arrays.append(a)
    for (ix, iy), (px, py) in (((0, 1), (paths[0], paths[1])), ((2, 3), (paths[2], paths[3]))):
        if len(arrays[ix]) != len(arrays[iy]):
            raise DataError(f"{px} holds {len(arrays[ix])} images but {py} holds {len(arrays[iy])} labels")
        if arrays[iy].size and arrays[iy].max() >= 10:
            raise DataError(f"{py}: label {int(arrays[iy].max())} out of range 0..9")
    train_x, train_y, test_x, test_y = arrays
    return RawData(train_x[:, None], train_y.astype(np.int64), test_x[:, None],
                test_y.astype(np.int64), 10)
