"""Parameter and FLOP counts of an architecture, from its shape alone."""

from __future__ import annotations

import torch

from core.arch import Arch
from engine.nets.archnet import ArchNet


def count_params(arch: Arch, image_channels: int, num_classes: int) -> int:
    """Trainable parameters of the Arch as a free-weight network."""
    with torch.device("meta"):
        net = ArchNet(arch, image_channels, num_classes)
    return sum(p.numel() for p in net.parameters())


def count_flops(arch: Arch, image_shape: tuple[int, int, int], num_classes: int) -> int:
    """Forward FLOPs (2 x multiply-adds) of convolutions and the classifier for one image."""
    c_img, h, w = image_shape
    h, w = -(-h // arch.stem_stride), -(-w // arch.stem_stride)
    macs = c_img * arch.stem_channels * 9 * h * w
    for b, block in enumerate(arch.blocks):
        hw = h * w
        for layer in block.layers:
            n_in, nb, n_out = arch.layer_in(b, layer), arch.layer_bottleneck(b, layer), arch.layer_out(layer)
            macs += n_in * nb * hw
            for path in layer.paths:
                for c, conv in enumerate(path):
                    c_in = nb if c == 0 else n_out
                    macs += (c_in // conv.groups) * n_out * conv.kernel[0] * conv.kernel[1] * hw
        if b + 1 < len(arch.blocks):
            macs += arch.out_channels(b) * arch.blocks[b + 1].in_channels * hw
            h, w = h // 2, w // 2
    macs += arch.out_channels(len(arch.blocks) - 1) * num_classes
    return 2 * macs
