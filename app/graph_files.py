"""The memory-bank graph as files: SVG, PNG, PDF, HTML of the dashboard's figure; DOT, GraphML.

Pictures are the same Plotly figure the Architecture page shows (`graph.figure`), so a
figure in a paper matches the dashboard. Static images go through Kaleido, which drives
a Chromium already on the machine (Debian's `chromium` on PATH, or BROWSER_PATH); it is
never told to download one, and MathJax (fetched from a CDN by default) is switched off.
HTML carries plotly.js inside, so it opens offline. DOT and GraphML are networkx's
writers over `file_graph`, a copy of `graph.build_graph` with ids and values that both
formats carry unchanged.
"""

from __future__ import annotations

import io
from pathlib import Path

import kaleido
import networkx as nx
from kaleido.errors import ChromeNotFoundError

from app import graph
from core.arch import Arch
from core.errors import BadRequest
from core.exports import GRAPH_FORMATS, GRAPH_SUFFIXES

FORMATS, SUFFIXES = GRAPH_FORMATS, GRAPH_SUFFIXES
MIME = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf", "html": "text/html",
        "dot": "text/vnd.graphviz", "graphml": "application/graphml+xml"}
PX_PER_X = 48
"""Image width per unit of the layout's x axis (one layer column), so deep archs stay legible."""


class GraphFileError(BadRequest):
    """The graph cannot be written in the format asked for (unknown format, no Chromium)."""


def format_for(path: str | Path, fmt: str | None = None) -> str:
    """`fmt` if given, else the format the file name's suffix names."""
    if fmt is None:
        fmt = SUFFIXES.get(Path(path).suffix.lower())
        if fmt is None:
            raise GraphFileError(f"cannot tell the format of {str(path)!r} from its suffix; "
                                 f"use one of {', '.join(SUFFIXES)} or --format")
    if fmt not in FORMATS:
        raise GraphFileError(f"unknown graph format {fmt!r}; allowed: {', '.join(FORMATS)}")
    return fmt


def file_graph(arch: Arch) -> nx.DiGraph:
    """`graph.build_graph` with ids DOT can carry (`b0_bank1`, not `b0:bank1`) and scalar
    attributes: kind, label, block, index and the layout position as x and y."""
    source = graph.build_graph(arch)
    out = nx.DiGraph(name=f"arch {arch.id}")
    for node, d in source.nodes(data=True):
        attrs = {"kind": d["kind"], "label": d["label"], "x": float(d["pos"][0]), "y": float(d["pos"][1])}
        attrs.update({k: int(d[k]) for k in ("block", "index") if k in d})
        out.add_node(node.replace(":", "_"), **attrs)
    for u, v, d in source.edges(data=True):
        out.add_edge(u.replace(":", "_"), v.replace(":", "_"), kind=d["kind"])
    return out


def render(arch: Arch, fmt: str, title: str | None = None) -> bytes:
    """The graph of `arch` as the bytes of a `fmt` file."""
    fmt = format_for("", fmt)
    if fmt == "dot":
        return _dot(file_graph(arch))
    if fmt == "graphml":
        return "\n".join(nx.generate_graphml(file_graph(arch))).encode()
    fig = graph.figure(arch, title=title or f"arch {arch.id}")
    if fmt == "html":
        return fig.to_html(include_plotlyjs=True, full_html=True).encode()
    return _image(fig, fmt, width=_width(arch))


def write(arch: Arch, path: str | Path, fmt: str | None = None) -> Path:
    path = Path(path)
    data = render(arch, format_for(path, fmt))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _width(arch: Arch) -> int:
    xs = [d["pos"][0] for _, d in graph.build_graph(arch).nodes(data=True)]
    return max(700, int(PX_PER_X * (max(xs) - min(xs))) + 120)


def _dot(g: nx.DiGraph) -> bytes:
    buf = io.StringIO()
    nx.nx_pydot.write_dot(g, buf)
    return buf.getvalue().encode()


def _image(fig, fmt: str, width: int) -> bytes:
    try:
        return kaleido.calc_fig_sync(fig.to_dict(), opts={"format": fmt, "width": width,
                                                           "height": fig.layout.height,
                                                           "scale": 2 if fmt == "png" else 1},
                                     kopts={"mathjax": False})
    except ChromeNotFoundError as exc:
        raise GraphFileError(f"{fmt.upper()} export needs Chromium (apt-get install chromium, or set "
                             "BROWSER_PATH); html, dot and graphml need no browser") from exc
