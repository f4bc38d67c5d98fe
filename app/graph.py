"""An Arch drawn as its memory-bank graph: banks and layers as nodes, reads and writes as edges.

The graph is built with networkx (plain data, testable: node kinds, edge kinds, labels)
and then laid out by hand, because the meaning of the picture is positional: blocks run
left to right joined by transitions; inside a block the banks stand in a column on the
left (bank 0 on top) and the layers follow in execution order, each at the height of the
banks it touches. Read edges (bank -> layer) and write edges (layer -> bank) bend to
opposite sides, so a layer that reads and writes the same bank shows both.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import plotly.graph_objects as go

from core.arch import Arch, Layer
from core.arch_table import conv_label, op_label

READ_COLOR = "#2563eb"
WRITE_COLOR = "#ea580c"
FLOW_COLOR = "#94a3b8"
DIFF_COLOR = "#dc2626"
LAYER_COLOR = "#e0e7ff"
BANK_COLOR = "#f1f5f9"


LABEL_ANGLE = 55
TAP = 0.42
"""Horizontal distance from a layer to where its read and write edges meet the bank lanes."""


def build_graph(arch: Arch) -> nx.DiGraph:
    """Nodes stem, b{b}:bank{k}, b{b}:L{i}, t{b} (transition) and head, each with kind, pos,
    label and hover; edges read, write and flow (block input and output)."""
    g = nx.DiGraph()
    g.add_node("stem", kind="stem", pos=(0.0, -(arch.initial_banks(0) - 1) / 2), label="stem",
               hover=f"stem conv → {arch.stem_channels} ch")
    x, previous = 1.2, "stem"
    for b, block in enumerate(arch.blocks):
        ch, n_banks, initial = arch.bank_channels(b), arch.n_banks(b), arch.initial_banks(b)
        end_x = x + 1.0 + len(block.layers) + 0.4
        reads_of: dict[int, list[int]] = {k: [] for k in range(n_banks)}
        writes_of: dict[int, list[int]] = {k: [] for k in range(n_banks)}
        for i, layer in enumerate(block.layers):
            for k in layer.reads:
                reads_of[k].append(i)
            for k in layer.writes:
                writes_of[k].append(i)
        for k in range(n_banks):
            node = f"b{b}:bank{k}"
            origin = "block input" if k < initial else f"new bank, first written by L{writes_of[k][0]}"
            g.add_node(node, kind="bank", block=b, index=k, pos=(x, -float(k)), lane_end=end_x - 0.3,
                       label=str(k), hover=(f"block {b} · bank {k}<br>{ch} channels · {origin}<br>"
                                            f"read by {_names(reads_of[k])}<br>written by {_names(writes_of[k])}"))
            if k < initial:
                g.add_edge(previous, node, kind="flow")
        for i, layer in enumerate(block.layers):
            node = f"b{b}:L{i}"
            g.add_node(node, kind="layer", block=b, index=i,
                       pos=(x + 1.0 + i, -float(np.mean(layer.reads + layer.writes))),
                       label=op_label(layer), hover=_layer_hover(arch, b, i, layer))
            for k in layer.reads:
                g.add_edge(f"b{b}:bank{k}", node, kind="read")
            for k in layer.writes:
                g.add_edge(node, f"b{b}:bank{k}", kind="write")
        last = b == len(arch.blocks) - 1
        end = "head" if last else f"t{b}"
        out_ch = arch.out_channels(b)
        g.add_node(end, kind="head" if last else "transition", block=b, pos=(end_x, -(n_banks - 1) / 2),
                   label="head" if last else f"T{b}",
                   hover=(f"head: BN-ReLU, global pool, linear on {out_ch} ch" if last else
                          f"transition {b}: BN-ReLU, 1x1 {out_ch} → "
                          f"{arch.blocks[b + 1].in_channels} ch, avg pool"))
        for k in range(n_banks):
            g.add_edge(f"b{b}:bank{k}", end, kind="flow")
        x, previous = end_x + 1.0, end
    return g


def _names(layers: list[int]) -> str:
    return ", ".join(f"L{i}" for i in layers) or "none"


def _layer_hover(arch: Arch, b: int, i: int, layer: Layer) -> str:
    paths = "<br>".join(f"  path {p}: " + " → ".join(conv_label(c) for c in path)
                        for p, path in enumerate(layer.paths))
    return (f"block {b} · layer {i}<br><b>{op_label(layer)}</b><br>"
            f"reads banks {list(layer.reads)} ({arch.layer_in(b, layer)} ch)<br>"
            f"1x1 bottleneck → {arch.layer_bottleneck(b, layer)} ch<br>{paths}<br>"
            f"width {layer.units} units = {arch.layer_out(layer)} ch<br>"
            f"writes (adds into) banks {list(layer.writes)}")


def _segments(g: nx.DiGraph) -> dict[str, tuple[list, list]]:
    """Polyline coordinates per edge kind, None-separated (one trace per kind draws fast).

    Banks are drawn as lanes running through their block, so a read leaves bank k's lane
    just left of the layer and a write lands on it just right of the layer: each layer's
    column then shows at a glance which banks it reads and writes.
    """
    pos = nx.get_node_attributes(g, "pos")
    out: dict[str, tuple[list, list]] = {kind: ([], []) for kind in ("lane", "read", "write", "flow")}
    for _, d in g.nodes(data=True):
        if d["kind"] == "bank":
            (x, y), xs_ys = d["pos"], out["lane"]
            xs_ys[0].extend([x, d["lane_end"], None])
            xs_ys[1].extend([y, y, None])
    for u, v, d in g.edges(data=True):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        if d["kind"] == "read":
            x0 = x1 - TAP
        elif d["kind"] == "write":
            x1 = x0 + TAP
        elif g.nodes[u]["kind"] == "bank":  # block output: from the lane's end
            x0 = g.nodes[u]["lane_end"]
        xs, ys = out[d["kind"]]
        xs.extend([x0, x1, None])
        ys.extend([y0, y1, None])
    return out


EDGE_STYLE = {
    "lane": (None, dict(color="#cbd5e1", width=1)),
    "flow": ("block input / output", dict(color=FLOW_COLOR, width=0.8, dash="dot")),
    "read": ("reads (bank → layer)", dict(color=READ_COLOR, width=1.2)),
    "write": ("writes (layer → bank)", dict(color=WRITE_COLOR, width=1.2)),
}
NODE_STYLE = {
    "bank": dict(symbol="square", size=18, color=BANK_COLOR, line=dict(width=1, color="#475569")),
    "layer": dict(symbol="circle", size=13, color=LAYER_COLOR, line=dict(width=1.5, color=READ_COLOR)),
    "transition": dict(symbol="diamond", size=16, color="#e2e8f0", line=dict(width=1, color="#475569")),
    "stem": dict(symbol="triangle-right", size=16, color="#e2e8f0", line=dict(width=1, color="#475569")),
    "head": dict(symbol="triangle-right", size=16, color="#e2e8f0", line=dict(width=1, color="#475569")),
}


def figure(arch: Arch, highlight: dict[tuple[int, int], str] | None = None,
           title: str | None = None, labels: bool = True) -> go.Figure:
    """The memory-bank graph of `arch`; layers in `highlight` are drawn red with the reason.

    Op labels stand rotated above each layer's column, where long labels of neighbouring
    layers cannot overprint each other.
    """
    highlight = highlight or {}
    g = build_graph(arch)
    fig = go.Figure()
    for kind, (xs, ys) in _segments(g).items():
        name, line = EDGE_STYLE[kind]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=line, name=name or kind,
                                 showlegend=name is not None, hoverinfo="skip"))
    _add_nodes(fig, g, highlight)
    if labels:
        _add_labels(fig, g, highlight)
    n_banks = max(arch.n_banks(b) for b in range(len(arch.blocks)))
    lane_px = 40 if n_banks <= 8 else max(14, 320 // n_banks)
    longest = max((len(d["label"]) + 4 for _, d in g.nodes(data=True) if d["kind"] == "layer"), default=0)
    top = int(30 + 5.3 * longest * np.sin(np.radians(LABEL_ANGLE))) if labels else 40
    fig.update_layout(
        title=dict(text=title, y=0.99, yanchor="top") if title else None,
        height=int(top + 60 + lane_px * n_banks), template="plotly_white", hovermode="closest",
        margin=dict(l=10, r=10, t=top, b=10), dragmode="pan", showlegend=True,
        legend=dict(orientation="h", yanchor="top", y=-0.02, x=0),
        xaxis=dict(visible=False), yaxis=dict(visible=False, range=[-n_banks + 0.4, 0.6]),
    )
    return fig


def _add_nodes(fig: go.Figure, g: nx.DiGraph, highlight: dict[tuple[int, int], str]) -> None:
    for kind, style in NODE_STYLE.items():
        nodes = [d for _, d in g.nodes(data=True) if d["kind"] == kind]
        if not nodes:
            continue
        marker = dict(style)
        diffs = [highlight.get((d.get("block"), d.get("index"))) if kind == "layer" else None for d in nodes]
        if kind == "layer":
            marker["line"] = dict(width=[3 if x else 1.5 for x in diffs],
                                  color=[DIFF_COLOR if x else READ_COLOR for x in diffs])
            marker["color"] = ["#fee2e2" if x else LAYER_COLOR for x in diffs]
        hovers = [d["hover"] + (f"<br><b>differs: {x}</b>" if x else "") for d, x in zip(nodes, diffs, strict=True)]
        fig.add_trace(go.Scatter(
            x=[d["pos"][0] for d in nodes], y=[d["pos"][1] for d in nodes],
            mode="markers" if kind == "layer" else "markers+text",
            text=None if kind == "layer" else [d["label"] for d in nodes],
            textposition="middle center" if kind == "bank" else "top center",
            textfont=dict(size=9, color="#1e293b"), marker=marker, hovertext=hovers, hoverinfo="text",
            name=kind, showlegend=False,
        ))


def _add_labels(fig: go.Figure, g: nx.DiGraph, highlight: dict[tuple[int, int], str]) -> None:
    for _, d in g.nodes(data=True):
        if d["kind"] != "layer":
            continue
        diff = highlight.get((d["block"], d["index"]))
        fig.add_annotation(x=d["pos"][0], y=0.45, yref="y", text=f"L{d['index']} {d['label']}",
                           textangle=-LABEL_ANGLE, showarrow=False, xanchor="left", yanchor="bottom",
                           font=dict(size=10, color=DIFF_COLOR if diff else "#334155"))
