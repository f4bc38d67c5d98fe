"""The memory-bank forward pass that SMASHNet and ArchNet share.

Both run an Arch the same way (read banks, apply the layer, add its output chunks into
banks, transition between blocks) and differ only in where the weights of a layer and a
transition come from, which they pass in as functions. So given the same weights they
compute the same function, and `ArchNet.load_smash` can copy SMASHNet's over.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from core.arch import Arch, Conv, Layer

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
    """Padding that keeps an op conv's output the size of its input (odd, dilated kernels)."""
    return tuple(d * (k - 1) // 2 for k, d in zip(conv.kernel, conv.dilation, strict=True))
