"""Turning in-memory images into training batches: normalising, seeded augmentation,
seeded batch order, and evaluation slices."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.source import DataError


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
