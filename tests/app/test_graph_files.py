"""`smash graph` and app.graph_files: the memory-bank drawing as SVG, PNG, PDF, HTML, DOT, GraphML."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections import Counter

import networkx as nx
import numpy as np
import pytest
from plotly.io.json import to_json_plotly

from app import graph, graph_files
from cli.main import main
from core import arch_table
from core.space import sample_arch
from tests.conftest import tiny_space

needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None,
                                    reason="static export needs Chromium (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def arch():
    return sample_arch(tiny_space(), np.random.default_rng(3))


@pytest.fixture
def arch_file(arch, tmp_path):
    path = tmp_path / "arch.json"
    path.write_text(arch.to_json())
    return path


def draw(capsys, arch_file, out, *extra) -> dict:
    code = main(["graph", str(arch_file), "--out", str(out), "--workdir", str(out.parent / "none"),
                 "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def layer_labels(arch) -> Counter:
    return Counter(f"L{i} {arch_table.op_label(layer)}" for block in arch.blocks
                   for i, layer in enumerate(block.layers))


@needs_chromium
def test_svg_parses_and_names_every_layer(capsys, arch, arch_file, tmp_path):
    out = tmp_path / "g.svg"
    assert draw(capsys, arch_file, out) == {"arch_id": arch.id, "out": str(out), "format": "svg"}
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    texts = Counter("".join(t.itertext()) for t in root.iter() if t.tag.endswith("text"))
    assert not layer_labels(arch) - texts, "a layer's label is missing from the SVG"


@needs_chromium
def test_png_and_pdf_have_their_magic_bytes(capsys, arch_file, tmp_path):
    draw(capsys, arch_file, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    draw(capsys, arch_file, tmp_path / "g.bin", "--format", "pdf")
    assert (tmp_path / "g.bin").read_bytes()[:5] == b"%PDF-"


def test_html_is_the_dashboard_figure_and_opens_offline(capsys, arch, arch_file, tmp_path):
    draw(capsys, arch_file, tmp_path / "g.html")
    html = (tmp_path / "g.html").read_text()
    assert 'src="http' not in html and "Plotly.newPlot" in html  # plotly.js is inside
    for label in layer_labels(arch):
        assert to_json_plotly(label)[1:-1] in html  # as plotly writes it: \u003e for >


def same_graph(expected: nx.DiGraph, got: nx.DiGraph, as_text: bool) -> None:
    def norm(value):
        return str(value).strip('"') if as_text else value

    assert set(got.nodes) == set(expected.nodes)
    assert set(got.edges) == set(expected.edges)
    for node, attrs in expected.nodes(data=True):
        assert {k: norm(v) for k, v in got.nodes[node].items()} == {
            k: str(v) if as_text else v for k, v in attrs.items()}, node
    for u, v, attrs in expected.edges(data=True):
        assert {k: norm(x) for k, x in got.edges[u, v].items()} == attrs


def test_dot_and_graphml_round_trip_through_networkx(capsys, arch, arch_file, tmp_path):
    expected = graph_files.file_graph(arch)
    assert expected.number_of_nodes() == graph.build_graph(arch).number_of_nodes()
    draw(capsys, arch_file, tmp_path / "g.dot")
    draw(capsys, arch_file, tmp_path / "g.graphml")
    same_graph(expected, nx.DiGraph(nx.nx_pydot.read_dot(tmp_path / "g.dot")), as_text=True)
    same_graph(expected, nx.read_graphml(tmp_path / "g.graphml"), as_text=False)


def test_graph_of_a_scored_arch_in_a_workdir(capsys, smoke_workdir, tmp_path):
    code = main(["graph", "best", "--workdir", str(smoke_workdir), "--out", str(tmp_path / "b.dot")])
    assert code == 0 and "wrote" in capsys.readouterr().out
    assert nx.nx_pydot.read_dot(tmp_path / "b.dot").number_of_nodes() > 0


@pytest.mark.parametrize("name, extra, needle", [
    ("g.txt", [], "cannot tell the format"),
])
def test_bad_output_is_one_line_and_exit_2(capsys, arch_file, tmp_path, name, extra, needle):
    code = main(["graph", str(arch_file), "--out", str(tmp_path / name), *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err


def test_no_chromium_is_a_clear_error(arch, monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-browser"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(graph_files.GraphFileError, match="needs Chromium"):
        graph_files.render(arch, "svg")
