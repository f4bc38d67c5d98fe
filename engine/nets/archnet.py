"""ArchNet: one architecture with free weights, for final training and export."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.arch import Arch, Conv, Layer
from core.vocab import SLOTS, slot_index
from engine.nets.banks import bank_forward, conv_padding
from engine.nets.generated import Generated
from engine.nets.smashnet import SMASHNet


class ConvUnit(nn.Sequential):
    """Pre-activation BN-ReLU-conv."""

    def __init__(self, c_in: int, c_out: int, conv: Conv):
        super().__init__(
            nn.BatchNorm2d(c_in), nn.ReLU(),
            nn.Conv2d(c_in, c_out, conv.kernel, padding=conv_padding(conv),
                      dilation=conv.dilation, groups=conv.groups, bias=False))


class ArchLayer(nn.Module):
    def __init__(self, n_in: int, n_bottleneck: int, n_out: int, layer: Layer):
        super().__init__()
        self.norm = nn.BatchNorm2d(n_in, affine=False)
        self.bottleneck = nn.Conv2d(n_in, n_bottleneck, 1, bias=False)
        self.paths = nn.ModuleList(
            nn.Sequential(*(ConvUnit(n_bottleneck if c == 0 else n_out, n_out, conv)
                            for c, conv in enumerate(path)))
            for path in layer.paths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bottleneck(F.relu(self.norm(x)))
        out = self.paths[0](h)
        for path in self.paths[1:]:
            out = out + path(h)
        return out


class Transition(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.AvgPool2d(2))


class ArchNet(nn.Module):
    """One architecture as an ordinary network with freely learned weights."""

    def __init__(self, arch: Arch, image_channels: int, num_classes: int):
        super().__init__()
        self.arch = arch
        self.stem = nn.Conv2d(image_channels, arch.stem_channels, 3, padding=1,
                              stride=arch.stem_stride, bias=False)
        self.layers = nn.ModuleList(
            nn.ModuleList(ArchLayer(arch.layer_in(b, la), arch.layer_bottleneck(b, la),
                                    arch.layer_out(la), la) for la in block.layers)
            for b, block in enumerate(arch.blocks))
        self.transitions = nn.ModuleList(
            Transition(arch.out_channels(b), arch.blocks[b + 1].in_channels)
            for b in range(len(arch.blocks) - 1))
        c_last = arch.out_channels(len(arch.blocks) - 1)
        self.head_norm = nn.BatchNorm2d(c_last)
        self.fc = nn.Linear(c_last, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = bank_forward(self.arch, self.stem(x),
                         lambda b, i, _layer, inp: self.layers[b][i](inp),
                         lambda b, h: self.transitions[b](h))
        h = F.relu(self.head_norm(h)).mean(dim=(2, 3))
        return self.fc(h)

    @torch.no_grad()
    def load_smash(self, smash: SMASHNet, gen: Generated) -> None:
        """Copy the weights `smash` would use for this Arch (generated 1x1s included)."""
        arch, k = self.arch, 0
        self.stem.weight.copy_(smash.stem.weight)
        for b, block in enumerate(arch.blocks):
            for i, layer in enumerate(block.layers):
                mod = self.layers[b][i]
                mod.bottleneck.weight.copy_(gen.bottlenecks[k])
                for p, path in enumerate(layer.paths):
                    for c, conv in enumerate(path):
                        s = slot_index(p, c)
                        j = b * SLOTS + s
                        bn, _, cv = mod.paths[p][c]
                        c_in = bn.num_features
                        bn.weight.copy_(smash.op_g[j][:c_in])
                        bn.bias.copy_(smash.op_b[j][:c_in])
                        w = smash.op_weight(b, s, conv, c_in, cv.out_channels)
                        if gen.op_scales is not None:
                            w = w * gen.op_scales[k][s, : cv.out_channels].view(-1, 1, 1, 1)
                        cv.weight.copy_(w)
                k += 1
        for b, t in enumerate(self.transitions):
            c = t[0].num_features
            t[0].weight.copy_(smash.trans_g[b][:c])
            t[0].bias.copy_(smash.trans_b[b][:c])
            t[2].weight.copy_(smash.trans_w[b][:, :c])
        c = self.head_norm.num_features
        self.head_norm.weight.copy_(smash.head_g[:c])
        self.head_norm.bias.copy_(smash.head_b[:c])
        self.fc.weight.copy_(smash.fc.weight[:, :c])
        self.fc.bias.copy_(smash.fc.bias)
