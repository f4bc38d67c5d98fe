"""An architecture as text: each conv and op as a short label, one table row per layer, and
what differs between two archs layer by layer.

What `smash show` prints and the Architecture page's table and comparison show; the
memory-bank drawing (app/graph.py) labels its layer nodes with the same words.
"""

from __future__ import annotations

import pandas as pd

from core.arch import Arch, Conv, Layer


def conv_label(conv: Conv) -> str:
    """5x3 d2 g4: kernel, dilation (omitted when 1, one number when equal), groups (omitted when 1)."""
    (kh, kw), (dh, dw) = conv.kernel, conv.dilation
    text = f"{kh}x{kw}"
    if (dh, dw) != (1, 1):
        text += f" d{dh}" if dh == dw else f" d{dh}x{dw}"
    if conv.groups > 1:
        text += f" g{conv.groups}"
    return text


def op_label(layer: Layer) -> str:
    """Width in units, then the op's paths: `->` chains convs, `+` sums parallel paths."""
    paths = " + ".join(" -> ".join(conv_label(c) for c in path) for path in layer.paths)
    return f"{layer.units}x[{paths}]"


def layer_table(arch: Arch) -> pd.DataFrame:
    """One row per layer: what the graph shows, in a form a table can sort and diff."""
    rows = []
    for b, block in enumerate(arch.blocks):
        for i, layer in enumerate(block.layers):
            rows.append({"block": b, "layer": i, "op": op_label(layer),
                         "reads": ",".join(map(str, layer.reads)),
                         "writes": ",".join(map(str, layer.writes)),
                         "in_ch": arch.layer_in(b, layer),
                         "bottleneck_ch": arch.layer_bottleneck(b, layer),
                         "out_ch": arch.layer_out(layer)})
    return pd.DataFrame(rows)


def diff_layers(a: Arch, b: Arch) -> dict[tuple[int, int], str]:
    """(block, layer) -> what differs between the two archs at that position."""
    out: dict[tuple[int, int], str] = {}
    for blk in range(max(len(a.blocks), len(b.blocks))):
        la = a.blocks[blk].layers if blk < len(a.blocks) else ()
        lb = b.blocks[blk].layers if blk < len(b.blocks) else ()
        same_banks = (blk < len(a.blocks) and blk < len(b.blocks)
                      and a.blocks[blk].bank_units == b.blocks[blk].bank_units)
        for i in range(max(len(la), len(lb))):
            if i >= len(la) or i >= len(lb):
                out[(blk, i)] = "only in " + ("B" if i >= len(la) else "A")
                continue
            x, y = la[i], lb[i]
            what = [name for name, differs in (
                ("bank size", not same_banks), ("op", x.paths != y.paths), ("reads", x.reads != y.reads),
                ("writes", x.writes != y.writes), ("width", x.units != y.units)) if differs]
            if what:
                out[(blk, i)] = ", ".join(what)
    return out
