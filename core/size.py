"""Parameter and FLOP counts of an architecture, from its shape alone: arithmetic, no tensors.

Both follow the network an Arch builds for final training (engine/nets/archnet.py):
pre-activation BN-ReLU-conv units, a 1x1 bottleneck after an affine-free batch norm,
transitions of BN-ReLU-1x1 conv-avg pool, and a BN, global pool and linear head.
tests/engine/nets/test_nets.py holds both to that network's own counts.
"""

from __future__ import annotations

from core.arch import Arch


def count_params(arch: Arch, image_channels: int, num_classes: int) -> int:
    """Trainable parameters of the Arch as a free-weight network."""
    n = image_channels * arch.stem_channels * 9  # stem conv, no bias
    for b, block in enumerate(arch.blocks):
        for layer in block.layers:
            nb, n_out = arch.layer_bottleneck(b, layer), arch.layer_out(layer)
            n += arch.layer_in(b, layer) * nb  # the 1x1 bottleneck (its batch norm has no affine)
            for path in layer.paths:
                for c, conv in enumerate(path):
                    c_in = nb if c == 0 else n_out
                    n += 2 * c_in + (c_in // conv.groups) * n_out * conv.kernel[0] * conv.kernel[1]
        if b + 1 < len(arch.blocks):
            c_in = arch.out_channels(b)
            n += 2 * c_in + c_in * arch.blocks[b + 1].in_channels
    c_last = arch.out_channels(len(arch.blocks) - 1)
    return n + 2 * c_last + c_last * num_classes + num_classes


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
