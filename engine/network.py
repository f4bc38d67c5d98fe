"""Networks built from an Arch.

`SMASHNet` holds the freely learned weights shared by every architecture (stem, op
convs sliced to size per block and conv slot, transitions, head) and runs any Arch with
1x1 weights from the HyperNet. `ArchNet` is the same Arch as an ordinary nn.Module with
weights of its own, for final training. Both run the same memory-bank forward, so given
the same weights they compute the same function; `ArchNet.load_smash` copies them over.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import SpaceConfig
from engine.encoding import SLOTS, slot_index
from engine.hypernet import Generated
from engine.search_space import Arch, Conv, Layer

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
                c_in = nb_max if s % 2 == 0 else n_max
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
            c = max_block_channels(space, b)
            self.trans_g.append(nn.Parameter(torch.ones(c)))
            self.trans_b.append(nn.Parameter(torch.zeros(c)))
            w = torch.empty(ins[b + 1], c, 1, 1)
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
            self.trans_w.append(nn.Parameter(w))
        c_last = max_block_channels(space, space.blocks - 1)
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
        weights with one autograd node per slot (see `_Windows`)."""
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
            cuts = _Windows.apply(self.op_w[j], tuple(w for _, w in items))
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


# ------------------------------------------------------------------ free weights

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


# ------------------------------------------------------------------ size

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
