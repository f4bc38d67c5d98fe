"""Tests for engine.data: every source from tiny files written here, splits, batches, augment."""

from __future__ import annotations

import gzip
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.config import DATASETS, DataConfig
from engine.data.batches import augment, batch_indices, eval_batches, normalize, steps_per_epoch
from engine.data.fashion_mnist import read_idx
from engine.data.source import DataError
from engine.data.splits import LOADERS, load_data

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_every_configurable_dataset_has_a_loader():
    """The config validates dataset names without importing the engine; both lists agree."""
    assert tuple(LOADERS) == DATASETS


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def _indexed_images(n: int, h: int = 4, w: int = 5, c: int | None = None) -> np.ndarray:
    """Images whose first two pixels spell their index, so splits can be traced."""
    x = np.zeros((n, h, w) if c is None else (n, h, w, c), dtype=np.uint8)
    x.reshape(n, -1)[:, 0] = np.arange(n) // 256
    x.reshape(n, -1)[:, 1] = np.arange(n) % 256
    return x


def _ids(x: torch.Tensor) -> set[int]:
    flat = x.reshape(len(x), -1).to(torch.int64)
    return set((flat[:, 0] * 256 + flat[:, 1]).tolist())


# ------------------------------------------------------------------------------ IDX


def _idx_bytes(a: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes()
    return header + a.astype(np.uint8).tobytes()


def _write_idx(path: Path, a: np.ndarray) -> None:
    data = _idx_bytes(a)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def _fake_fashion(folder: Path, n_train: int = 30, n_test: int = 12, h: int = 5, w: int = 7) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz",
                   rng.integers(0, 256, (n, h, w), dtype=np.uint8))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_idx_round_trip_gz_and_plain(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (6, 3, 4), dtype=np.uint8)
    for name in ("a.gz", "a"):
        _write_idx(tmp_path / name, a)
        np.testing.assert_array_equal(read_idx(tmp_path / name), a)


def test_fashion_layout_from_written_files(tmp_path):
    _fake_fashion(tmp_path)
    d = load_data(DataConfig(root=str(tmp_path), val_size=5), seed=0)
    assert d.name == "fashion-mnist" and d.num_classes == 10
    assert d.train_x.shape == (25, 1, 5, 7) and d.val_x.shape == (5, 1, 5, 7)
    assert d.test_x.shape == (12, 1, 5, 7) and d.image_shape == (1, 5, 7)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64
    assert d.test_y.tolist() == [i % 10 for i in range(12)]


@pytest.mark.parametrize("damage", ["truncated_gzip", "not_gzip", "bad_magic", "short_data", "long_data"])
def test_idx_corrupt_file_names_the_file(tmp_path, damage):
    _fake_fashion(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    if damage == "truncated_gzip":
        path.write_bytes(path.read_bytes()[:-20])
    elif damage == "not_gzip":
        path.write_bytes(b"hello, this is not gzip at all")
    elif damage == "bad_magic":
        path.write_bytes(gzip.compress(b"\x12\x34" + raw[2:]))
    elif damage == "short_data":
        path.write_bytes(gzip.compress(raw[:-3]))
    else:
        path.write_bytes(gzip.compress(raw + b"\0"))
    with pytest.raises(DataError) as exc:
        load_data(DataConfig(root=str(tmp_path), val_size=5), seed=0)
    assert str(path) in _one_line(exc)


def test_idx_label_count_mismatch(tmp_path):
    _fake_fashion(tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(11, dtype=np.uint8))
    with pytest.raises(DataError, match="labels"):
        load_data(DataConfig(root=str(tmp_path), val_size=5), seed=0)


def test_fashion_missing_dir(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as exc:
        load_data(DataConfig(root=str(missing)), seed=0)
    msg = _one_line(exc)
    assert str(missing) in msg and "apt-get install dataset-fashion-mnist" in msg


def test_fashion_missing_one_file(tmp_path):
    _fake_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_data(DataConfig(root=str(tmp_path)), seed=0)


@pytest.mark.skipif(not FASHION.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_loads_quickly():
    start = time.perf_counter()
    d = load_data(DataConfig(limit_train=3000, limit_test=500, val_size=500), seed=0)
    elapsed = time.perf_counter() - start
    assert d.train_x.shape == (2500, 1, 28, 28) and d.val_x.shape == (500, 1, 28, 28)
    assert d.test_x.shape == (500, 1, 28, 28) and d.num_classes == 10
    assert set(d.train_y.unique().tolist()) == set(range(10))
    assert 0.2 < d.mean[0] < 0.4 and 0.25 < d.std[0] < 0.45
    assert elapsed < 5.0, f"loading took {elapsed:.1f}s"


# ------------------------------------------------------------------------------ npz


def test_npz_with_test_arrays_hwc(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 4, 6, 3), dtype=np.uint8)
    xt = np.random.default_rng(1).integers(0, 256, (7, 4, 6, 3), dtype=np.uint8)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.arange(20) % 3, x_test=xt, y_test=np.array([0, 1, 2, 3, 4, 0, 0]))
    d = load_data(DataConfig(dataset="npz", root=str(path), val_size=4), seed=0)
    assert d.image_shape == (3, 4, 6) and d.num_classes == 5  # max over test labels too
    np.testing.assert_array_equal(d.test_x.numpy(), xt.transpose(0, 3, 1, 2))
    assert len(d.train_x) + len(d.val_x) == 20


def test_npz_without_test_arrays_hw(tmp_path):
    x = _indexed_images(60)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.arange(60) % 4)
    d = load_data(DataConfig(dataset="npz", root=str(path), val_size=10), seed=0)
    assert d.image_shape == (1, 4, 5) and d.num_classes == 4
    assert len(d.test_x) == 10 and len(d.train_x) == 40 and len(d.val_x) == 10
    train, val, test = _ids(d.train_x), _ids(d.val_x), _ids(d.test_x)
    assert train | val | test == set(range(60)) and len(train) + len(val) + len(test) == 60
    # The test hold-out does not move with the run seed.
    assert _ids(load_data(DataConfig(dataset="npz", root=str(path), val_size=10), seed=5).test_x) == test


@pytest.mark.parametrize("arrays, needle", [
    (dict(x=np.zeros((5, 4, 4), np.float32), y=np.zeros(5, np.int64)), "'x' has dtype float32"),
    (dict(x=np.zeros((5, 4), np.uint8), y=np.zeros(5, np.int64)), "'x' has shape"),
    (dict(x=np.zeros((5, 4, 4), np.uint8), y=np.array([0, 1, -1, 0, 1])), "'y' holds negative"),
    (dict(x=np.zeros((5, 4, 4), np.uint8), y=np.zeros(4, np.int64)), "'y' has shape"),
    (dict(x=np.zeros((5, 4, 4), np.uint8), y=np.zeros(5, np.float64)), "'y' has dtype float64"),
    (dict(x=np.zeros((5, 4, 4), np.uint8)), "missing array 'y'"),
    (dict(y=np.zeros(5, np.int64)), "missing array 'x'"),
    (dict(x=np.zeros((5, 4, 4), np.uint8), y=np.zeros(5, np.int64), x_test=np.zeros((2, 4, 4), np.uint8)),
     "has 'x_test' but not 'y_test'"),
    (dict(x=np.zeros((5, 4, 4), np.uint8), y=np.zeros(5, np.int64),
          x_test=np.zeros((2, 3, 4), np.uint8), y_test=np.zeros(2, np.int64)), "'x_test' images are"),
    (dict(x=np.zeros((5, 4, 4), np.uint8), y=np.zeros(5, np.int64),
          x_test=np.zeros((2, 4, 4), np.uint8), y_test=np.array([0, 9.5])), "'y_test' has dtype"),
])
def test_npz_errors(tmp_path, arrays, needle):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as exc:
        load_data(DataConfig(dataset="npz", root=str(path), val_size=1), seed=0)
    msg = _one_line(exc)
    assert needle in msg and str(path) in msg


def test_npz_missing_and_garbage_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_data(DataConfig(dataset="npz", root=str(tmp_path / "no.npz")), seed=0)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.npz"):
        load_data(DataConfig(dataset="npz", root=str(tmp_path / "junk.npz")), seed=0)
    with pytest.raises(DataError, match="root is empty"):
        load_data(DataConfig(dataset="npz"), seed=0)


# ---------------------------------------------------------------------- ImageFolder


def _png(path: Path, color, size=(9, 7), mode="RGB") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_imagefolder_flat_rgb(tmp_path):
    colors = {"cat": (255, 0, 0), "dog": (0, 255, 0), "emu": (0, 0, 255)}
    for cls, color in colors.items():
        for i in range(6):
            _png(tmp_path / cls / f"{i}.png", color, size=(9 + i, 7))
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    d = load_data(DataConfig(dataset="imagefolder", root=str(tmp_path), image_size=8, val_size=2), 0)
    assert d.image_shape == (3, 8, 8) and d.num_classes == 3
    assert len(d.train_x) + len(d.val_x) + len(d.test_x) == 18 and len(d.test_x) == 3
    for x, y in ((d.train_x, d.train_y), (d.test_x, d.test_y)):
        for img, label in zip(x, y, strict=True):
            want = torch.tensor(list(colors.values())[int(label)], dtype=torch.uint8)
            assert torch.equal(img[:, 4, 4], want)


def test_imagefolder_train_test_grayscale_default_size(tmp_path):
    for split, n in (("train", 5), ("test", 2)):
        for cls, shade in (("a", 30), ("b", 200)):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.png", shade, mode="L")
    _png(tmp_path / "test" / "b" / "rgb_gray.png", (200, 200, 200))  # gray stored as RGB
    d = load_data(DataConfig(dataset="imagefolder", root=str(tmp_path), val_size=3), 0)
    assert d.image_shape == (1, 32, 32) and d.num_classes == 2
    assert len(d.train_x) == 7 and len(d.test_x) == 5
    assert ((d.test_x[:, 0, 0, 0] == 200) == (d.test_y == 1)).all()


def test_imagefolder_limits_span_classes(tmp_path):
    for c in range(4):
        for i in range(10):
            _png(tmp_path / f"c{c}" / f"{i}.png", c * 60, size=(4, 4), mode="L")
    d = load_data(DataConfig(dataset="imagefolder", root=str(tmp_path), image_size=4,
                             limit_train=12, limit_test=4, val_size=2), 0)
    assert len(d.train_x) == 10 and len(d.test_x) == 4
    assert len(set(torch.cat([d.train_y, d.val_y]).tolist())) > 1


def test_imagefolder_errors(tmp_path):
    cfg = DataConfig(dataset="imagefolder", root=str(tmp_path), val_size=1)
    with pytest.raises(DataError, match="no class subfolders"):
        load_data(cfg, 0)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError, match="empty_class"):
        load_data(cfg, 0)
    _png(tmp_path / "empty_class" / "a.png", (1, 2, 3))
    (tmp_path / "empty_class" / "b.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="b.png"):
        load_data(cfg, 0)
    with pytest.raises(DataError, match="not a directory"):
        load_data(DataConfig(dataset="imagefolder", root=str(tmp_path / "nope")), 0)


# ---------------------------------------------------------------------------- CIFAR


def _fake_cifar10(root: Path, per_batch: int = 4, n_test: int = 6) -> np.ndarray:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        rows.append(data)
        entry = {"batch_label": name, "labels": [int(v) for v in rng.integers(0, 10, n)],
                 "data": data, "filenames": [f"{name}_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch,
            "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return np.concatenate(rows[5:])


@pytest.fixture
def skip_cifar_checksums(monkeypatch):
    """torchvision md5-checks the real CIFAR files; fake ones need the check off."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)


def test_cifar10_fake_torchvision_layout(tmp_path, skip_cifar_checksums):
    test_rows = _fake_cifar10(tmp_path)
    d = load_data(DataConfig(dataset="cifar10", root=str(tmp_path), val_size=3), seed=0)
    assert d.image_shape == (3, 32, 32) and d.num_classes == 10 and len(d.mean) == 3
    assert len(d.train_x) == 17 and len(d.val_x) == 3 and len(d.test_x) == 6
    np.testing.assert_array_equal(d.test_x.numpy(), test_rows.reshape(-1, 3, 32, 32))


def test_cifar100_fake_torchvision_layout(tmp_path, skip_cifar_checksums):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 12), ("test", 5)):
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "fine_labels": [int(v) for v in rng.integers(0, 100, n)],
                 "coarse_labels": [0] * n}
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [str(i) for i in range(100)]}))
    d = load_data(DataConfig(dataset="cifar100", root=str(tmp_path), val_size=2), seed=0)
    assert d.num_classes == 100 and len(d.train_x) == 10 and len(d.test_x) == 5


def test_cifar_missing(tmp_path):
    with pytest.raises(DataError) as exc:
        load_data(DataConfig(dataset="cifar10", root=str(tmp_path)), seed=0)
    msg = _one_line(exc)
    assert "cifar-10-batches-py" in msg and str(tmp_path) in msg and "download=True" in msg
    with pytest.raises(DataError, match="cifar-100-python"):
        load_data(DataConfig(dataset="cifar100", root=str(tmp_path)), seed=0)


def test_cifar_corrupt_fails_checksum(tmp_path):
    _fake_cifar10(tmp_path)
    with pytest.raises(DataError, match="checksum"):
        load_data(DataConfig(dataset="cifar10", root=str(tmp_path), val_size=3), seed=0)


# ---------------------------------------------------------------------- splits, stats


def _npz_cfg(tmp_path, n=120, **kw) -> DataConfig:
    path = tmp_path / "ids.npz"
    if not path.exists():
        np.savez(path, x=_indexed_images(n), y=np.arange(n) % 3,
                 x_test=_indexed_images(5), y_test=np.zeros(5, np.int64))
    return DataConfig(dataset="npz", root=str(path), **kw)


def test_split_determinism_and_disjointness(tmp_path):
    cfg = _npz_cfg(tmp_path, val_size=30)
    a, b, c = load_data(cfg, 0), load_data(cfg, 0), load_data(cfg, 1)
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.train_y, b.train_y)
    assert _ids(a.val_x) != _ids(c.val_x)
    assert not _ids(a.train_x) & _ids(a.val_x)
    assert _ids(a.train_x) | _ids(a.val_x) == set(range(120)) and len(a.val_x) == 30


def test_limits_before_split(tmp_path):
    d = load_data(_npz_cfg(tmp_path, val_size=10, limit_train=50, limit_test=2), 3)
    assert _ids(d.train_x) | _ids(d.val_x) == set(range(50)) and len(d.test_x) == 2


def test_val_size_too_large(tmp_path):
    with pytest.raises(DataError, match="val_size = 50 .* only 50 training images"):
        load_data(_npz_cfg(tmp_path, val_size=50, limit_train=50), 0)


def test_mean_std_match_train_split():
    d = load_data(DataConfig(dataset="synthetic", val_size=100, limit_train=600), 0)
    x = d.train_x.double() / 255
    assert d.mean[0] == pytest.approx(x.mean().item(), abs=1e-9)
    assert d.std[0] == pytest.approx(x.std(unbiased=False).item(), abs=1e-9)


def test_normalize():
    x = torch.randint(0, 256, (4, 2, 3, 3), dtype=torch.uint8)
    out = normalize(x, (0.5, 0.25), (0.5, 2.0))
    assert out.dtype == torch.float32 and out.shape == x.shape
    torch.testing.assert_close(out[:, 1], (x[:, 1].float() / 255 - 0.25) / 2.0)
    torch.testing.assert_close(normalize(x[0], (0.5, 0.25), (0.5, 2.0)), out[0])
    with pytest.raises(ValueError):
        normalize(x, (0.5,), (0.5,))


# -------------------------------------------------------------------------- batching


def test_batch_indices_pure_permutation():
    b = batch_indices(103, 10, seed=7, epoch=2)
    assert b.shape == (10, 10) and b.dtype == torch.int64 and steps_per_epoch(103, 10) == 10
    flat = b.flatten().tolist()
    assert len(set(flat)) == 100 and all(0 <= i < 103 for i in flat)
    assert torch.equal(b, batch_indices(103, 10, seed=7, epoch=2))
    assert not torch.equal(b, batch_indices(103, 10, seed=7, epoch=3))
    assert not torch.equal(b, batch_indices(103, 10, seed=8, epoch=2))
    assert not torch.equal(batch_indices(100, 10, 0, 1), batch_indices(100, 10, 1, 0))
    full = batch_indices(100, 10, seed=0, epoch=0)
    assert sorted(full.flatten().tolist()) == list(range(100))
    torch.manual_seed(123)  # the global RNG must not matter
    assert torch.equal(full, batch_indices(100, 10, seed=0, epoch=0))
    assert batch_indices(5, 10, 0, 0).shape == (0, 10)


def test_eval_batches_in_order():
    x, y = torch.arange(23).view(23, 1), torch.arange(23)
    batches = list(eval_batches(x, y, 10))
    assert [len(b[0]) for b in batches] == [10, 10, 3]
    assert torch.equal(torch.cat([b[0] for b in batches]), x)
    assert torch.equal(torch.cat([b[1] for b in batches]), y)


# --------------------------------------------------------------------------- augment


def test_augment_deterministic_shape_dtype():
    x = torch.randint(0, 256, (16, 3, 9, 11), dtype=torch.uint8)
    a = augment(x, 3, True, torch.Generator().manual_seed(5))
    b = augment(x, 3, True, torch.Generator().manual_seed(5))
    c = augment(x, 3, True, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert augment(x, 0, False, torch.Generator()) is x


def test_augment_flip_only_flips():
    x = torch.randint(0, 256, (64, 2, 5, 6), dtype=torch.uint8)
    out = augment(x, 0, True, torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and mirrored.any() and same.any()


def test_augment_crop_is_a_window_of_the_padded_image():
    x = torch.randint(1, 256, (32, 1, 6, 7), dtype=torch.uint8)
    p = 2
    out = augment(x, p, False, torch.Generator().manual_seed(1))
    padded = F.pad(x, (p, p, p, p))
    shifts = set()
    for i in range(len(x)):
        hits = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                if torch.equal(out[i], padded[i, :, dy:dy + 6, dx:dx + 7])]
        assert hits, f"image {i} is not a crop"
        shifts.add(hits[0])
    assert len(shifts) > 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="not applicable here: no CUDA")
def test_augment_cuda_matches_cpu():
    x = torch.randint(0, 256, (8, 3, 10, 10), dtype=torch.uint8)
    cpu = augment(x, 4, True, torch.Generator().manual_seed(3))
    gpu = augment(x.cuda(), 4, True, torch.Generator().manual_seed(3))
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)


# ------------------------------------------------------------------------- synthetic


def test_synthetic_deterministic_and_limited():
    cfg = DataConfig(dataset="synthetic", val_size=200)
    a, b = load_data(cfg, 0), load_data(cfg, 0)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_x, b.test_x)
    assert a.image_shape == (1, 16, 16) and a.num_classes == 10
    assert len(a.train_x) == 1800 and len(a.test_x) == 500
    small = load_data(DataConfig(dataset="synthetic", val_size=20, limit_train=300, limit_test=50), 0)
    assert len(small.train_x) == 280 and len(small.test_x) == 50
    assert torch.equal(small.test_x, a.test_x[:50])


def test_synthetic_is_learnable():
    d = load_data(DataConfig(dataset="synthetic", val_size=200), seed=0)
    x = normalize(d.train_x, d.mean, d.std).flatten(1)
    xt = normalize(d.test_x, d.mean, d.std).flatten(1)
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], d.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    steps = steps_per_epoch(len(x), 64)
    for step in range(300):
        idx = batch_indices(len(x), 64, seed=0, epoch=step // steps)[step % steps]
        loss = F.cross_entropy(model(x[idx]), d.train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == d.test_y).float().mean().item()
    assert acc > 0.5, acc
