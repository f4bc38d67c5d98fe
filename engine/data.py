"""Image data sets held in memory as uint8 tensors, plus seeded batching and augmentation.

Every source is decoded once into (N, C, H, W) uint8 tensors so that training indexes
batches straight out of memory (on the GPU if the caller moves them there) instead of
running a DataLoader. All randomness is seeded: the validation split from the run seed,
batch order from (seed, epoch), augmentation from a caller-held generator. So a resumed
run sees exactly the batches the interrupted one would have seen.

Sources: Debian's Fashion-MNIST IDX files, torchvision's CIFAR folders, an ImageFolder
tree, an .npz file, or a small generated data set for tests. Nothing is ever downloaded;
missing or malformed data raises `DataError` with one line saying what to do.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.config import DataConfig

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
CIFAR_DEFAULT_ROOT = "./data"
IMAGEFOLDER_DEFAULT_SIZE = 32
HOLDOUT_SEED = 20240601
"""Seeds the 1/6 test hold-out (ImageFolder/npz without a test set) and the ImageFolder
shuffle. Fixed, not the run seed, so runs with different seeds share one test set."""
SYNTHETIC_SEED = 1234
SYNTHETIC_SIZES = (2000, 500)
MAX_CLASSES = 100_000
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
"""Larger images are refused before decoding (a small PNG can claim gigapixels)."""
MAX_ARRAY_BYTES = 64 * 1024**3
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class DataError(ValueError):
    """Data missing or malformed; message is one line saying what is wrong and how to get it."""


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


@dataclass
class _Raw:
    """A source's images before limits and the validation split (numpy, NCHW uint8)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int


# ----------------------------------------------------------------------------- loading


def load_data(cfg: DataConfig, seed: int) -> DataSplits:
    """Load `cfg.dataset`, apply the limits, hold out `val_size` training images by `seed`."""
    loaders = {
        "fashion-mnist": _load_fashion_mnist,
        "cifar10": _load_cifar,
        "cifar100": _load_cifar,
        "imagefolder": _load_imagefolder,
        "npz": _load_npz,
        "synthetic": _load_synthetic,
    }
    if cfg.dataset not in loaders:
        raise DataError(f"[data].dataset = {cfg.dataset!r}; allowed: {', '.join(loaders)}")
    raw = loaders[cfg.dataset](cfg)

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


def _holdout(n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) splitting a fixed, seeded 1/6 off as test; each kept in order."""
    if n < 2:
        raise DataError(f"{what}: {n} image(s); need at least 2 to hold out a test set")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED)).numpy()
    k = max(1, n // 6)
    return np.sort(perm[k:]), np.sort(perm[:k])


# ---------------------------------------------------------------- Fashion-MNIST / IDX


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


def _load_fashion_mnist(cfg: DataConfig) -> _Raw:
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
    return _Raw(train_x[:, None], train_y.astype(np.int64), test_x[:, None],
                test_y.astype(np.int64), 10)


# ----------------------------------------------------------------------------- CIFAR


def _load_cifar(cfg: DataConfig) -> _Raw:
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
    return _Raw(*parts, classes)


# ----------------------------------------------------------------------- ImageFolder


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


def _shuffled(samples: list[tuple[Path, int]]) -> list[tuple[Path, int]]:
    """ImageFolder lists class by class; shuffle (fixed seed) so "first N" spans all classes."""
    perm = torch.randperm(len(samples), generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    return [samples[i] for i in perm.tolist()]


def _load_imagefolder(cfg: DataConfig) -> _Raw:
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

    def decode(samples: list[tuple[Path, int]], limit: int) -> tuple[np.ndarray, np.ndarray]:
        samples = samples[:limit] if limit > 0 else samples
        return (_decode_all([p for p, _ in samples], size),
                np.array([c for _, c in samples], dtype=np.int64))

    if test is None:
        keep, held = _holdout(len(train), str(train_dir))
        train, test = [train[i] for i in keep], [train[i] for i in held]
    # Limits are applied again by load_data; decoding only what they keep saves time.
    raw = _Raw(*decode(train, cfg.limit_train), *decode(test, cfg.limit_test), 0)
    raw.num_classes = len(classes)
    # Grayscale images come through convert("RGB") with three equal channels: keep one.
    gray = all((a[:, 0] == a[:, 1]).all() and (a[:, 1] == a[:, 2]).all()
               for a in (raw.train_x, raw.test_x))
    if gray:
        raw.train_x, raw.test_x = raw.train_x[:, :1], raw.test_x[:, :1]
    return raw


# ------------------------------------------------------------------------------- npz


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


def _load_npz(cfg: DataConfig) -> _Raw:
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
        raw = _Raw(x, y, xt, yt, 0)
    else:
        keep, held = _holdout(len(x), str(path))
        raw = _Raw(x[keep], y[keep], x[held], y[held], 0)
    raw.num_classes = int(max(y.max(), raw.test_y.max(initial=0))) + 1
    return raw


# ------------------------------------------------------------------------- synthetic


def make_synthetic(n: int, classes: int = 10, size: int = 16, seed: int = SYNTHETIC_SEED
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` grayscale images: a smooth per-class pattern, randomly shifted, plus noise.

    Noise and shifts of up to 2 pixels keep it from saturating (a linear model reaches
    about 85% test accuracy, a small MLP about 90%), so architectures can still differ.
    """
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(classes, 1, 4, 4, generator=g)
    templates = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    templates = (templates - templates.amin((2, 3), keepdim=True)) / (
        templates.amax((2, 3), keepdim=True) - templates.amin((2, 3), keepdim=True))
    y = torch.randint(0, classes, (n,), generator=g)
    clean = (templates[y] * 255).round().to(torch.uint8)
    shifted = augment(clean, padding=2, flip=False, generator=g).float() / 255
    noisy = shifted * 0.6 + 0.2 + 0.3 * torch.randn(shifted.shape, generator=g)
    return (noisy.clamp(0, 1) * 255).round().to(torch.uint8), y


def _load_synthetic(cfg: DataConfig) -> _Raw:
    n_train, n_test = SYNTHETIC_SIZES
    x, y = make_synthetic(n_train + n_test)
    return _Raw(x[:n_train].numpy(), y[:n_train].numpy(), x[n_train:].numpy(),
                y[n_train:].numpy(), 10)


# ------------------------------------------------------------------ batches, transforms


def normalize(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x / 255 - mean) / std per channel, float32, on x's device; x is (..., C, H, W)."""
    c = x_uint8.shape[-3]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"normalize: images have {c} channels but mean/std have {len(mean)}/{len(std)}")
    m = torch.tensor(mean, dtype=torch.float32, device=x_uint8.device).view(c, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x_uint8.device).view(c, 1, 1)
    return (x_uint8.to(torch.float32) / 255.0 - m) / s


def augment(x_uint8: torch.Tensor, padding: int, flip: bool, generator: torch.Generator
            ) -> torch.Tensor:
    """Random crop after zero padding, then random horizontal flip, one draw per image.

    Random numbers come from the CPU `generator` (crop offsets first, then flips) whatever
    x's device, so the result depends only on the generator's state. One gather for the
    whole batch; with padding 0 and flip False, x itself is returned.
    """
    if x_uint8.ndim != 4:
        raise ValueError(f"augment expects (B, C, H, W) images, got shape {tuple(x_uint8.shape)}")
    if padding < 0:
        raise ValueError(f"augment: padding = {padding}; must be >= 0")
    b, _, h, w = x_uint8.shape
    if padding == 0 and not flip:
        return x_uint8
    dev = x_uint8.device
    if padding > 0:
        offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator).to(dev)
        oy, ox = offsets[0], offsets[1]
        src = F.pad(x_uint8, (padding, padding, padding, padding))
    else:
        oy = ox = torch.zeros(b, dtype=torch.int64, device=dev)
        src = x_uint8
    cols = torch.arange(w, device=dev).expand(b, w)
    if flip:
        flipped = (torch.rand(b, generator=generator) < 0.5).to(dev)
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    rows = oy[:, None] + torch.arange(h, device=dev)
    cols = ox[:, None] + cols
    batch = torch.arange(b, device=dev)[:, None, None]
    # Advanced indices around a slice put the batch dims first: (B, H, W, C).
    out = src[batch, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def _mixed_generator(*keys: int) -> torch.Generator:
    """A generator seeded from several integers, well mixed so nearby keys don't collide."""
    state = np.random.SeedSequence([k % 2**64 for k in keys]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0]) >> 1)


def check_batches(n: int, batch_size: int, what: str) -> None:
    """DataError unless `n` training images fill at least one batch."""
    if n < batch_size:
        raise DataError(f"the training split holds {n} image(s), fewer than {what} = {batch_size}; "
                        "lower the batch size or val_size, or use more data")


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches in one pass over n items (the short last batch is dropped)."""
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}; must be >= 1")
    return n // batch_size


def batch_indices(n: int, batch_size: int, seed: int, epoch: int) -> torch.Tensor:
    """(steps_per_epoch, batch_size) int64 rows of one seeded permutation of range(n).

    A pure function of its arguments, so a run resumed mid-epoch regenerates the same order.
    """
    steps = steps_per_epoch(n, batch_size)
    perm = torch.randperm(n, generator=_mixed_generator(seed, epoch, 0xBA7C4))
    return perm[: steps * batch_size].view(steps, batch_size)


def eval_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive slices (views, no copy) of x and y; the last may be short."""
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}; must be >= 1")
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size], y[i:i + batch_size]
