"""The dashboard's pure parts: graph building and labels, arch diffs, charts, the launch command."""

from __future__ import annotations

import ast
import subprocess
import sys

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from app import charts, graph
from cli import dashboard as launch
from core import arch_table
from core.arch import Arch, Block, Conv, Layer
from core.space import mutate, sample_arch
from tests.conftest import ROOT, tiny_space


def conv(k=(3, 3), d=(1, 1), g=1) -> Conv:
    return Conv(kernel=k, dilation=d, groups=g)


def small_arch(units: int = 2, paths=None) -> Arch:
    """Two blocks of two layers; the first layer is 2x[5x3 d2 g4 -> 3x3] unless `paths` says otherwise."""
    paths = paths or ((conv((5, 3), (2, 2), 4), conv()),)
    layers = (Layer(reads=(0,), writes=(0, 2), units=units, paths=paths),
              Layer(reads=(1, 2), writes=(1,), units=1, paths=((conv(),), (conv((5, 5)),))))
    return Arch(unit=4, bottleneck=4, stem_channels=8,
                blocks=(Block(bank_units=1, in_channels=8, layers=layers),
                        Block(bank_units=1, in_channels=16, layers=layers)))


def test_op_label_names_kernels_dilations_groups_and_paths():
    arch = small_arch()
    assert arch_table.op_label(arch.blocks[0].layers[0]) == "2x[5x3 d2 g4 -> 3x3]"
    assert arch_table.op_label(arch.blocks[0].layers[1]) == "1x[3x3 + 5x5]"
    assert arch_table.conv_label(conv((7, 3), (1, 2), 2)) == "7x3 d1x2 g2"


def test_build_graph_has_banks_layers_and_directed_edges():
    arch = small_arch()
    g = graph.build_graph(arch)
    kinds = nx.get_node_attributes(g, "kind")
    assert sum(k == "layer" for k in kinds.values()) == arch.n_layers
    assert sum(k == "bank" for k in kinds.values()) == sum(arch.n_banks(b) for b in range(2))
    assert g.edges["b0:bank0", "b0:L0"]["kind"] == "read"
    assert g.edges["b0:L0", "b0:bank2"]["kind"] == "write"
    assert g.edges["b0:bank1", "t0"]["kind"] == "flow" and g.has_edge("t0", "b1:bank0")
    assert nx.is_directed_acyclic_graph(g.subgraph(n for n in g if kinds[n] != "bank"))
    xs = [g.nodes[n]["pos"][0] for n in ("stem", "b0:L0", "t0", "b1:L0", "head")]
    assert xs == sorted(xs), "blocks run left to right"


@pytest.mark.parametrize("seed", range(5))
def test_sampled_archs_draw(seed):
    space = tiny_space()
    arch = sample_arch(space, np.random.default_rng(seed))
    fig = graph.figure(arch, highlight={(0, 0): "op"})
    assert isinstance(fig, go.Figure)
    layer_trace = next(t for t in fig.data if t.name == "layer")
    assert len(layer_trace.x) == arch.n_layers
    assert any("differs: op" in h for h in layer_trace.hovertext)
    assert len(fig.layout.annotations) == arch.n_layers  # one op label per layer
    table = arch_table.layer_table(arch)
    assert len(table) == arch.n_layers and set(table["op"]) <= {arch_table.op_label(la) for b in arch.blocks
                                                                  for la in b.layers}


def test_diff_layers_marks_exactly_what_changed():
    a = small_arch()
    assert arch_table.diff_layers(a, a) == {}
    b = small_arch(units=1)
    assert arch_table.diff_layers(a, b) == {(0, 0): "width", (1, 0): "width"}
    c = small_arch(paths=((conv(),),))
    assert arch_table.diff_layers(a, c)[(0, 0)] == "op"
    space = tiny_space()
    rng = np.random.default_rng(3)
    x = sample_arch(space, rng)
    y = mutate(x, space, rng)
    assert arch_table.diff_layers(x, y), "a mutation changes some layer"


def test_charts_accept_empty_and_filled_frames():
    assert isinstance(charts.training_curves(pd.DataFrame()), go.Figure)
    assert isinstance(charts.score_vs_truth(pd.DataFrame()), go.Figure)
    assert isinstance(charts.pareto(pd.DataFrame(), "params"), go.Figure)
    metrics = pd.DataFrame({"step": [1, 2], "loss": [2.0, 1.5], "error": [0.9, 0.8]})
    assert len(charts.training_curves(metrics).data) == 2
    pairs = pd.DataFrame({"arch_id": ["a", "b"], "score_mean": [0.3, 0.4], "score_std": [0.01, None],
                          "score_lo": [0.28, None], "score_hi": [0.32, None],
                          "val_error": [0.21, 0.26], "test_error": [0.2, 0.25]})
    fig = charts.score_vs_truth(pairs)
    assert list(fig.data[0].customdata[:, 0]) == ["a", "b"]
    front = pd.DataFrame({"arch_id": list("abcd"), "score_mean": [0.5, 0.4, 0.6, 0.3],
                          "params": [10, 20, 30, 40], "on_front": [True, True, False, True]})
    fig = charts.pareto(front, "params")
    on = next(t for t in fig.data if t.name == "Pareto front")
    assert list(on.customdata[:, 0]) == ["a", "b", "d"]


def test_ladder_chart_keeps_every_estimate_and_the_ceiling_of_the_mean_in_view():
    """A rung far below zero stays on the plot, and a ceiling of the mean known at one rung
    only (its neighbours' ceilings below zero have none) still shows as a point."""
    def rung(name, smash, ceiling, of_mean):
        return {"name": name, "predictors": {"smash": {"spearman": smash, "spearman_ci": [smash - 0.2, smash + 0.2]}},
                "ceiling": ceiling, "ceiling_ci": [ceiling - 0.3, ceiling + 0.2], "ceiling_of_mean": of_mean}
    fig = charts.ladder([rung("1 epoch", 0.3, -0.1, None), rung("4 epochs", -0.86, 0.05, 0.32),
                         rung("8 epochs", 0.5, 0.7, 0.9)])
    low, high = fig.layout.yaxis.range
    assert low <= -0.86 - 0.05 and high == 1
    mean = next(t for t in fig.data if t.name == "perfect predictor vs the seeds' mean")
    assert "markers" in mean.mode and list(mean.y) == [None, 0.32, 0.9]
    assert charts.ladder([rung("8 epochs", 0.5, 0.7, 0.9)]).layout.yaxis.range[0] == -0.6


def test_score_charts_follow_the_score_metric():
    """Error scores are percentages (as always); loss scores are nats, as plain numbers."""
    pairs = pd.DataFrame({"arch_id": ["a", "b"], "score_mean": [0.93, 1.04], "score_std": [0.01, 0.02],
                          "score_lo": [0.91, 1.0], "score_hi": [0.95, 1.08],
                          "val_error": [0.21, 0.26], "test_error": [0.2, 0.25]})
    error, loss = charts.score_vs_truth(pairs), charts.score_vs_truth(pairs, "loss")
    assert error.layout.xaxis.title.text == "SMASH score (validation error, generated weights)"
    assert error.layout.xaxis.tickformat == ".1%" and "%{x:.2%}" in error.data[0].hovertemplate
    assert loss.layout.xaxis.title.text == "SMASH score (validation loss, generated weights)"
    assert loss.layout.xaxis.tickformat == ".3f" and "%{x:.4f}" in loss.data[0].hovertemplate
    assert loss.layout.yaxis.tickformat == ".1%", "the truth is an error rate whatever the score"
    front = pairs.assign(params=[10, 20], on_front=[True, False])
    assert charts.pareto(front, "params").layout.yaxis.tickformat == ".1%"
    pareto = charts.pareto(front, "params", metric="loss")
    assert pareto.layout.yaxis.tickformat == ".3f" and "loss" in pareto.layout.yaxis.title.text
    probe = pd.DataFrame({"arch_id": ["a", "a"], "checkpoint_step": [1, 2], "score_mean": [1.1, 0.9]})
    stability = pd.DataFrame(columns=["step", "kendall_tau"])
    assert charts.probe_stability(probe, stability).layout.yaxis.tickformat == ".0%"
    fig = charts.probe_stability(probe, stability, metric="loss")
    assert fig.layout.yaxis.tickformat == ".3f" and "%{y:.4f}" in fig.data[0].hovertemplate


def test_pareto_chart_samples_many_dominated_points():
    n = 50_000
    frame = pd.DataFrame({"arch_id": [str(i) for i in range(n)], "score_mean": np.linspace(1, 0, n),
                          "flops": np.arange(n), "on_front": np.arange(n) % 1000 == 0})
    fig = charts.pareto(frame, "flops", max_dominated=1000)
    sizes = {t.name: len(t.x) for t in fig.data}
    assert sizes == {"dominated": 1000, "Pareto front": 50}


def test_dashboard_command_passes_config_and_overrides(tmp_path):
    cmd = launch.dashboard_command(tmp_path, port=9999, address="0.0.0.0", no_auth=True)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4].endswith("app/main.py")
    flags = dict(zip(cmd[5:cmd.index("--"):2], cmd[6:cmd.index("--"):2], strict=True))
    assert flags["--server.port"] == "9999" and flags["--server.address"] == "0.0.0.0"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--theme.base"] == "light"
    assert cmd[cmd.index("--") + 1:] == ["--workdir", str(tmp_path.resolve())]
    default = launch.dashboard_command(tmp_path)
    assert default[default.index("--server.port") + 1] == "8501"
    assert default[default.index("--server.address") + 1] == "127.0.0.1"


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


def test_app_imports_no_torch_no_sql_driver():
    for path in sorted((ROOT / "app").rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in {"duckdb", "torch", "torchvision", "sqlite3"}, f"{path.name} imports {name}"
    code = "import sys, app.nav, cli.dashboard; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "importing the dashboard must not import torch"


def test_probe_chart_draws_scores_and_stability():
    import pandas as pd

    from app import charts

    probe = pd.DataFrame({"arch_id": ["a", "b", "a", "b"], "checkpoint_step": [10, 10, 20, 20],
                          "score_mean": [0.5, 0.6, 0.4, 0.45]})
    stability = pd.DataFrame([{"step": 20, "previous_step": 10, "kendall_tau": 1.0, "n": 2}])
    fig = charts.probe_stability(probe, stability)
    assert len(fig.data) == 3
    truth = pd.DataFrame([{"step": 10, "spearman": 0.5, "n": 3}, {"step": 20, "spearman": 0.8, "n": 3}])
    assert len(charts.probe_stability(probe, stability, truth).data) == 4
    assert charts.probe_stability(probe.iloc[:0], stability.iloc[:0]).layout.annotations


def test_leaderboard_marks_verdicts_and_partial_scores():
    from app.views.leaderboard import with_marks

    board = pd.DataFrame({"verdict": ["leader", "equivalent", "partial", None, "separated", "unresolved"],
                          "score_lo": [0.1, 0.12, None, float("nan"), 0.3, 0.11],
                          "score_hi": [0.2, 0.22, None, 0.3, 0.4, 0.25]})
    marked = with_marks(board)
    assert marked["mark"].tolist() == ["leader", "equivalent", "partial", "", "", "unresolved"]
    assert marked["interval"].tolist() == ["[10.0%, 20.0%]", "[12.0%, 22.0%]", "–", "–", "[30.0%, 40.0%]",
                                           "[11.0%, 25.0%]"]
    assert with_marks(board, "loss")["interval"].tolist()[0] == "[0.100, 0.200]"
