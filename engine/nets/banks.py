"""Networks built from an Arch.

`SMASHNet` holds the freely learned weights shared by every architecture (stem, op
convs sliced to size per block and conv slot, transitions, head) and runs any Arch with
1x1 weights from the HyperNet. `ArchNet` is the same Arch as an ordinary nn.Module with
weights of its own, for final training. Both run the same memory-bank forward, so given
the same weights they compute the same function; `ArchNet.load_smash` copies them over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.arch import Arch, Conv, Layer
from core.config import SpaceConfig


@dataclass
class Generated:
    """Weights for one architecture: its 1x1s, and per-layer op channel scales if generated."""

    bottlenecks: list[torch.Tensor]
    op_scales: list[torch.Tensor] | None

LayerFn = Callable[[int, int, Layer, torch.Tensor], torch.Tensor]


def bank_forward(arch: Arch, h: torch.Tensor, layer_fn: LayerFn,
                 transition_fn: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Run every block: read banks, apply the layer, add its output chunks into banks."""
    for b, block in enumerate(arch.blocks):
        bank = arch.bank_channels(b)
        banks: list[torch.Tensor | None] = list(h.split(bank, 1))
        banks += [None] * (arch.n_banks(b) - len(banks))
        for i, layer in enumerate(block.layers):
            parts = [banks[r] for r in layer.reads]
            out = layer_fn(b, i, layer, parts[0] if len(parts) == 1 else torch.cat(parts, 1))
            chunks = out.split(bank, 1)
            for j, w in enumerate(layer.writes):
                chunk = chunks[j % len(chunks)]
                banks[w] = chunk if banks[w] is None else banks[w] + chunk
        h = torch.cat(banks, 1)
        if b + 1 < len(arch.blocks):
            h = transition_fn(b, h)
    return h


def conv_padding(conv: Conv) -> tuple[int, int]:
    return tuple(d * (k - 1) // 2 for k, d in zip(conv.kernel, conv.dilation, strict=True))


def max_block_channels(space: SpaceConfig, b: int) -> int:
    return max(space.max_banks(b, u) * u * space.unit for u in space.bank_units)


class _Windows(torch.autograd.Function):
    """Several windows of one shared weight, each as a dense tensor, with one gradient.

    Slicing the parameter once per use makes autograd allocate and zero a parameter-sized
    gradient for every use (the shared op weights hold every kernel size, width and group
    count at once, so that is most of their size each time). Here backward zeroes one
    buffer per parameter per step and adds each window's gradient into its place."""

    @staticmethod
    def forward(ctx, param: torch.Tensor, windows: tuple[tuple[slice, ...], ...]):  # type: ignore[override]
        ctx.param, ctx.windows = param, windows
        fmt = (torch.channels_last if param.dim() == 4 and not param.is_contiguous()
               and param.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)
        return tuple(param[w].contiguous(memory_format=fmt) for w in windows)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):  # type: ignore[override]
        grad = None
        for w, g in zip(ctx.windows, grads, strict=True):
            if g is None:
                continue
            if grad is None:
                grad = torch.zeros_like(ctx.param)
            grad[w] += g
        ctx.param = None
        return grad, None


class BatchStats:
    """How SMASHNet normalises. Architectures change every step, so there are no running
    statistics: by default each batch normalises itself. For scoring, `collect` records
    per-call-site statistics over calibration batches of one Arch, and `fixed` then uses
    them (batch-norm recalibration), so a score no longer depends on the eval batch."""

    def __init__(self) -> None:
        self.mode = "batch"
        self.sums: list[list[torch.Tensor | int]] = []
        self.site = 0

    def collect(self) -> None:
        self.mode, self.sums = "collect", []

    def fix(self) -> None:
        self.mode = "fixed"

    def reset(self) -> None:
        self.mode, self.sums = "batch", []

    def norm(self, x: torch.Tensor, weight: torch.Tensor | None = None,
             bias: torch.Tensor | None = None) -> torch.Tensor:
        c = x.shape[1]
        w = None if weight is None else weight[:c]
        b = None if bias is None else bias[:c]
        i, self.site = self.site, self.site + 1
        if self.mode == "fixed":
            total_mean, total_sq, n = self.sums[i]
            mean = total_mean / n
            var = (total_sq / n - mean * mean).clamp_min(0)
            return F.batch_norm(x, mean, var, w, b, training=False)
        if self.mode == "collect":
            xf = x.detach().float()
            mean, sq = xf.mean(dim=(0, 2, 3)), (xf * xf).mean(dim=(0, 2, 3))
            if i == len(self.sums):
                self.sums.append([mean, sq, 1])
            else:
                self.sums[i][0] += mean
                self.sums[i][1] += sq
                self.sums[i][2] += 1
        return F.batch_norm(x, None, None, w, b, training=True)
