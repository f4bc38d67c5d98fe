"""The HyperNet: give it an encoded architecture, get the weights of its 1x1 bottlenecks.

A fully convolutional DenseNet of weight-normalised 3x3 convs with LeakyReLU and no
batch norm runs over the (noise + encoding, rows, columns) grid. Each output cell holds
a (row_units x unit) x (col_units x unit) block of the 1x1 weight matrix, so the grid
reshapes into one big matrix from which every layer cuts its own weights. With
`generate = "bottleneck+ops"` it also emits, per layer, a scale for every output
channel of every op conv, applied to the op's freely learned weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.config import HyperNetConfig, SpaceConfig
from core.vocab import SLOTS
from engine.hyper.encoding import EncodingLayout, LayerSpan
from engine.nets.generated import Generated


class WNConv2d(nn.Module):
    """Weight-normalised conv, no bias: direction v over its norm, times a learned gain g.

    `norm = "tensor"` divides by the norm of the whole weight and learns one gain, as the
    authors did (their notes found the per-channel form unstable); "channel" divides each
    output channel by its own norm and learns a gain per channel. Gains start at the
    norm an orthogonal init would have, so both forms start from the same weights."""

    def __init__(self, c_in: int, c_out: int, kernel: int, norm: str = "tensor"):
        super().__init__()
        self.v = nn.Parameter(torch.empty(c_out, c_in, kernel, kernel))
        nn.init.orthogonal_(self.v.view(c_out, -1))
        self.per_channel = norm == "channel"
        gain = torch.ones(c_out, 1, 1, 1) if self.per_channel else self.v.detach().norm().view(1)
        self.g = nn.Parameter(gain)
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_channel:
            scale = self.g / self.v.flatten(1).norm(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)
        else:
            scale = self.g / self.v.norm().clamp_min(1e-8)
        return F.conv2d(x, self.v * scale, padding=self.pad)


class HyperNet(nn.Module):
    def __init__(self, space: SpaceConfig, cfg: HyperNetConfig):
        super().__init__()
        self.space, self.cfg = space, cfg
        self.layout = EncodingLayout(space, cfg)
        self.cell = (self.layout.row_ch, self.layout.col_ch)
        self.n_w = self.cell[0] * self.cell[1]
        self.n_ops = SLOTS * space.max_units * space.unit if cfg.generate == "bottleneck+ops" else 0
        self.shared = nn.ParameterList()
        if cfg.generate == "none":
            for b in range(space.blocks):
                w = torch.empty(space.max_bottleneck_channels, space.max_block_channels(b))
                nn.init.orthogonal_(w)
                self.shared.append(nn.Parameter(w))
        self.body, self.head, self._dense = nn.ModuleList(), None, []
        if cfg.generate != "none":
            self._build_body(cfg)

    def _build_body(self, cfg: HyperNetConfig) -> None:
        norm = cfg.weight_norm
        grid_ch = cfg.noise_channels + self.layout.channels
        body: list[nn.Module] = [WNConv2d(grid_ch, cfg.stem, 3, norm)]
        ch = cfg.stem + (grid_ch if cfg.dense_input else 0)
        self._dense: list[bool] = [False]
        for stage, (growth, n) in enumerate(zip(cfg.growth, cfg.layers, strict=True)):
            for _ in range(n):
                body.append(WNConv2d(ch, growth, 3, norm))
                self._dense.append(True)
                ch += growth
            if stage + 1 < len(cfg.growth):
                body.append(WNConv2d(ch, ch // 2, 3, norm))
                self._dense.append(False)
                ch //= 2
        self.body = nn.ModuleList(body)
        self.head = WNConv2d(ch, self.n_w + self.n_ops, 1, norm)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, noise + encoding channels, R, T) -> (B, weight channels, R, T).

        With `dense_input` the grid itself is the first member of the dense concatenation
        (kept raw: a LeakyReLU would not change its 0/1 entries but would bend the noise)."""
        h = self.body[0](grid)
        if self.cfg.dense_input:
            h = torch.cat([grid, F.leaky_relu(h, 0.02)], 1)
        else:
            h = F.leaky_relu(h, 0.02)
        for conv, dense in zip(self.body[1:], self._dense[1:], strict=True):
            out = F.leaky_relu(conv(h), 0.02)
            h = torch.cat([h, out], 1) if dense else out
        return self.head(h)

    def flops(self, rows: int, cols: int) -> int:
        """FLOPs of one forward pass over a (rows, cols) grid: every conv of the body and the
        head, 2 per multiply-add (as core/size.py counts a network's); 0 without a HyperNet.
        The work SMASH adds to a step beyond the network it runs (bench/step.py)."""
        convs = [*self.body, self.head] if self.head is not None else []
        return sum(2 * c.v.shape[0] * c.v.shape[1] * c.v.shape[2] * c.v.shape[3] for c in convs) * rows * cols

    def generate(self, enc: torch.Tensor, spans: list[LayerSpan],
                 noise: torch.Tensor) -> Generated:
        """Weights of every layer of one architecture from its encoding and a noise draw."""
        if self.cfg.generate == "none":
            return Generated([self._shared_weight(s) for s in spans], None)
        grid = torch.cat([noise, enc], 0).unsqueeze(0)
        out = self(grid)[0]
        rows, cols = out.shape[1:]
        rc, cc = self.cell
        # (rc*cc, R, T) -> (R*rc, T*cc): cell (r, t) becomes block [r*rc:(r+1)*rc, t*cc:(t+1)*cc].
        w = out[: self.n_w].view(rc, cc, rows, cols).permute(2, 0, 3, 1).reshape(rows * rc, cols * cc)
        bottlenecks = []
        for s in spans:
            m = w[: s.n_out, s.col0 * cc: s.col0 * cc + s.n_in]
            m = m / m.norm().clamp_min(1e-8)
            bottlenecks.append(m.view(s.n_out, s.n_in, 1, 1))
        op_scales = None
        if self.n_ops:
            ops = out[self.n_w:]
            op_scales = [
                1.0 + torch.tanh(ops[:, : s.rows, s.col0: s.col0 + s.cols].mean(dim=(1, 2)))
                .view(SLOTS, -1)
                for s in spans
            ]
        return Generated(bottlenecks, op_scales)

    def _shared_weight(self, s: LayerSpan) -> torch.Tensor:
        """A layer's 1x1 cut from its block's shared matrix: the columns of the banks it reads."""
        w = self.shared[s.block]
        m = torch.cat([w[: s.n_out, o: o + s.bank] for o in s.read_offsets], 1)
        return (m / m.norm().clamp_min(1e-8)).view(s.n_out, s.n_in, 1, 1)
