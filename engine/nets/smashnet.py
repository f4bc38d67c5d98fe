"""SMASHNet: the memory-bank network that runs any architecture on HyperNet-generated weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.arch import Arch, Conv, Layer
from core.config import SpaceConfig
from core.vocab import SLOTS, slot_index, slot_position
from engine.nets.banks import bank_forward, conv_padding
from engine.nets.batchstats import BatchStats
from engine.nets.generated import Generated
from engine.nets.windows import Windows


class SMASHNet(nn.Module):
    """The one-shot network: free weights shared by all Archs of a search space."""

    def __init__(self, space: SpaceConfig, image_channels: int, num_classes: int):
        super().__init__()
        self.space = space
        self.kmax = max(space.kernels)
        n_max = space.max_units * space.unit
        nb_max = space.max_bottleneck_channels
        self.stem = nn.Conv2d(image_channels, space.stem_channels, 3, padding=1,
                              stride=space.stem_stride, bias=False)
        self.op_w = nn.ParameterList()
        self.op_g = nn.ParameterList()
        self.op_b = nn.ParameterList()
        for _ in range(space.blocks):
            for s in range(SLOTS):
                c_in = nb_max if slot_position(s)[1] == 0 else n_max
                w = torch.empty(n_max, c_in, self.kmax, self.kmax)
                nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
                self.op_w.append(nn.Parameter(w))
                self.op_g.append(nn.Parameter(torch.ones(c_in)))
                self.op_b.append(nn.Parameter(torch.zeros(c_in)))
        ins = space.block_in_channels()
        self.trans_g = nn.ParameterList()
        self.trans_b = nn.ParameterList()
        self.trans_w = nn.ParameterList()
        for b in range(space.blocks - 1):
            c = space.max_block_channels(b)
            self.trans_g.append(nn.Parameter(torch.ones(c)))
            self.trans_b.append(nn.Parameter(torch.zeros(c)))
            w = torch.empty(ins[b + 1], c, 1, 1)
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
            self.trans_w.append(nn.Parameter(w))
        c_last = space.max_block_channels(space.blocks - 1)
        self.stats = BatchStats()
        self.head_g = nn.Parameter(torch.ones(c_last))
        self.head_b = nn.Parameter(torch.zeros(c_last))
        self.fc = nn.Linear(c_last, num_classes)
        nn.init.zeros_(self.fc.bias)

    def op_window(self, conv: Conv, c_in: int, c_out: int) -> tuple[slice, ...]:
        """Where an op conv's weight sits in its slot's shared weight: the first c_out
        filters, c_in / groups input channels, the centred kernel."""
        kh, kw = conv.kernel
        r0, c0 = (self.kmax - kh) // 2, (self.kmax - kw) // 2
        return (slice(0, c_out), slice(0, c_in // conv.groups), slice(r0, r0 + kh), slice(c0, c0 + kw))

    def op_weight(self, b: int, s: int, conv: Conv, c_in: int, c_out: int) -> torch.Tensor:
        return self.op_w[b * SLOTS + s][self.op_window(conv, c_in, c_out)]

    def op_weights(self, arch: Arch) -> dict[tuple[int, int, int], torch.Tensor]:
        """Every op conv weight of `arch`, keyed by (layer, path, conv), cut from the shared
        weights with one autograd node per slot (see `Windows`)."""
        wanted: dict[int, list[tuple[tuple[int, int, int], tuple[slice, ...]]]] = {}
        k = 0
        for b, block in enumerate(arch.blocks):
            for layer in block.layers:
                c_out = arch.layer_out(layer)
                for p, path in enumerate(layer.paths):
                    for c, conv in enumerate(path):
                        c_in = arch.layer_bottleneck(b, layer) if c == 0 else c_out
                        wanted.setdefault(b * SLOTS + slot_index(p, c), []).append(
                            ((k, p, c), self.op_window(conv, c_in, c_out)))
                k += 1
        out = {}
        for j, items in wanted.items():
            cuts = Windows.apply(self.op_w[j], tuple(w for _, w in items))
            out.update(zip((key for key, _ in items), cuts, strict=True))
        return out

    def forward(self, x: torch.Tensor, arch: Arch, gen: Generated) -> torch.Tensor:
        _bn = self.stats.norm
        self.stats.site = 0
        offsets, k = {}, 0
        for b, block in enumerate(arch.blocks):
            for i in range(len(block.layers)):
                offsets[b, i] = k
                k += 1

        op_w = self.op_weights(arch)

        def layer_fn(b: int, i: int, layer: Layer, inp: torch.Tensor) -> torch.Tensor:
            k = offsets[b, i]
            h = F.conv2d(F.relu(_bn(inp)), gen.bottlenecks[k])
            c_out = arch.layer_out(layer)
            out = None
            for p, path in enumerate(layer.paths):
                y = h
                for c, conv in enumerate(path):
                    s = slot_index(p, c)
                    j = b * SLOTS + s
                    y = F.relu(_bn(y, self.op_g[j], self.op_b[j]))
                    w = op_w[k, p, c]
                    if gen.op_scales is not None:
                        w = w * gen.op_scales[k][s, :c_out].view(-1, 1, 1, 1)
                    y = F.conv2d(y, w, padding=conv_padding(conv), dilation=conv.dilation,
                                 groups=conv.groups)
                out = y if out is None else out + y
            return out

        def transition_fn(b: int, h: torch.Tensor) -> torch.Tensor:
            h = F.relu(_bn(h, self.trans_g[b], self.trans_b[b]))
            h = F.conv2d(h, self.trans_w[b][:, : h.shape[1]])
            return F.avg_pool2d(h, 2)

        h = bank_forward(arch, self.stem(x), layer_fn, transition_fn)
        h = F.relu(_bn(h, self.head_g, self.head_b)).mean(dim=(2, 3))
        return F.linear(h, self.fc.weight[:, : h.shape[1]], self.fc.bias)
