"""Fixed-layout encoding of an Arch as a (channels, rows, columns) tensor.

Columns walk every layer's 1x1 input channels in order, `col_units` units per column;
rows walk the 1x1 output channels, `row_units` units per row. A cell is filled when the
layer's 1x1 has weights there, with one-hot fields describing the layer; unused cells
are 0. Fields sit at offsets computed from the search space alone, so they never move
while the kernel range anneals, and every field of an active conv carries a 1 (an
inactive conv slot says so with its own flag, never with the background value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from core.arch import Arch
from core.config import HyperNetConfig, SpaceConfig
from core.vocab import SLOTS, slot_position


@dataclass(frozen=True)
class LayerSpan:
    """Where one layer's 1x1 weights live in the generated grid."""

    block: int
    index: int
    col0: int
    cols: int
    rows: int
    n_in: int
    n_out: int
    bank: int = 0
    """Channels per bank of the layer's block."""
    read_offsets: tuple[int, ...] = ()
    """First channel, in the block's bank memory, of each bank the layer reads."""


class EncodingLayout:
    """Offsets of every field, a function of the search space only."""

    def __init__(self, space: SpaceConfig, hyper: HyperNetConfig):
        self.space = space
        self.row_ch = hyper.row_units * space.unit
        self.col_ch = hyper.col_units * space.unit
        self.n_rows = math.ceil(space.max_bottleneck_channels / self.row_ch)
        self.max_banks = space.max_banks_any
        sizes = [
            ("read", self.max_banks),
            ("write", self.max_banks),
            ("block", space.blocks),
            ("units", space.max_units),
            ("bank_units", len(space.bank_units)),
            ("layer_start", 1),
        ]
        for s in range(SLOTS):
            sizes += [
                (f"s{s}_active", 1), (f"s{s}_inactive", 1),
                (f"s{s}_kh", len(space.kernels)), (f"s{s}_kw", len(space.kernels)),
                (f"s{s}_dh", space.max_dilation), (f"s{s}_dw", space.max_dilation),
                (f"s{s}_groups", len(space.groups)),
            ]
        self.offset: dict[str, int] = {}
        pos = 0
        for name, n in sizes:
            self.offset[name] = pos
            pos += n
        self.channels = pos

    def spans(self, arch: Arch) -> list[LayerSpan]:
        spans, col = [], 0
        for b, block in enumerate(arch.blocks):
            for i, layer in enumerate(block.layers):
                n_in = arch.layer_in(b, layer)
                n_out = arch.layer_bottleneck(b, layer)
                cols = math.ceil(n_in / self.col_ch)
                bank = arch.bank_channels(b)
                spans.append(LayerSpan(b, i, col, cols, math.ceil(n_out / self.row_ch), n_in, n_out,
                                       bank, tuple(r * bank for r in layer.reads)))
                col += cols
        return spans

    def grid_shape(self, arch: Arch) -> tuple[int, int]:
        """(rows, columns) of `arch`'s encoding: the shape a noise draw for it takes."""
        last = self.spans(arch)[-1]
        return self.n_rows, last.col0 + last.cols

    def encode(self, arch: Arch) -> tuple[torch.Tensor, list[LayerSpan]]:
        """The (channels, rows, columns) float tensor for `arch`, and its layer spans."""
        sp, off = self.space, self.offset
        spans = self.spans(arch)
        n_cols = spans[-1].col0 + spans[-1].cols
        col = np.zeros((self.channels, n_cols), dtype=np.float32)
        rows = np.zeros(n_cols, dtype=np.int64)
        for span in spans:
            block = arch.blocks[span.block]
            layer = block.layers[span.index]
            c0, c1 = span.col0, span.col0 + span.cols
            rows[c0:c1] = span.rows
            v = col[:, c0:c1]
            # Which banks each column's input channels come from.
            for j in range(span.cols):
                u0 = j * self.col_ch // arch.unit
                u1 = min((j + 1) * self.col_ch, span.n_in) // arch.unit
                for u in range(u0, max(u1, u0 + 1)):
                    v[off["read"] + layer.reads[u // block.bank_units], j] = 1
            for w in layer.writes:
                v[off["write"] + w] = 1
            v[off["block"] + span.block] = 1
            v[off["units"] + layer.units - 1] = 1
            v[off["bank_units"] + sp.bank_units.index(block.bank_units)] = 1
            v[off["layer_start"], 0] = 1
            for s in range(SLOTS):
                p, c = slot_position(s)
                conv = layer.paths[p][c] if p < len(layer.paths) and c < len(layer.paths[p]) else None
                if conv is None:
                    v[off[f"s{s}_inactive"]] = 1
                    continue
                v[off[f"s{s}_active"]] = 1
                v[off[f"s{s}_kh"] + sp.kernels.index(conv.kernel[0])] = 1
                v[off[f"s{s}_kw"] + sp.kernels.index(conv.kernel[1])] = 1
                v[off[f"s{s}_dh"] + conv.dilation[0] - 1] = 1
                v[off[f"s{s}_dw"] + conv.dilation[1] - 1] = 1
                v[off[f"s{s}_groups"] + sp.groups.index(conv.groups)] = 1
        mask = np.arange(self.n_rows)[:, None] < rows[None, :]
        grid = col[:, None, :] * mask[None, :, :]
        return torch.from_numpy(np.ascontiguousarray(grid)), spans
