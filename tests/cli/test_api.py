"""cli.api on a smoke workdir, and docs/api.ipynb run top to bottom."""

from __future__ import annotations

import nbformat
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from nbclient import NotebookClient

from cli import api
from core.arch import Arch
from core.errors import NotFound
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wd(smoke_workdir) -> api.Workdir:
    return api.open_workdir(smoke_workdir)


def test_listings_are_the_stores(wd):
    runs = wd.runs()
    assert isinstance(runs, pd.DataFrame) and runs["run_id"].tolist() == [wd.run_id()]
    top = wd.top(limit=2, page=2)
    assert top["arch_id"].tolist() == wd.store.leaderboard(wd.run_id(), limit=2, offset=2)["arch_id"].tolist()
    assert top["rank"].tolist() == [3, 4]


def test_arch_model_and_graph(wd):
    arch = wd.arch("best")
    assert isinstance(arch, Arch) and arch.id == wd.top(limit=1).iloc[0]["arch_id"]
    assert wd.arch(arch.id) == arch
    shape = wd.store.get_run(wd.run_id())["image_shape"]
    for model in (wd.model("best"), wd.model("best", trained=False)):
        assert isinstance(model, torch.nn.Module) and not model.training
        with torch.no_grad():
            assert model(torch.zeros(2, *shape)).shape == (2, 10)
    fig = wd.graph("best")
    assert isinstance(fig, go.Figure) and arch.id in fig.layout.title.text
    assert wd.show("best")["score"]["score_mean"] == wd.top(limit=1).iloc[0]["score_mean"]


def test_missing_things_say_what_is_missing(wd, tmp_path):
    with pytest.raises(NotFound, match="no SMASH store"):
        api.open_workdir(tmp_path)
    unscored = wd.top(sort="score_mean", descending=True, limit=1).iloc[0]["arch_id"]
    with pytest.raises(NotFound, match="no finished final training"):
        wd.model(unscored)


def test_example_notebook_runs(smoke_workdir, monkeypatch):
    monkeypatch.setenv("SMASH_WORKDIR", str(smoke_workdir))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.read(ROOT / "docs" / "api.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any("SMASH score" in o.get("text", "") for cell in nb.cells for o in cell.get("outputs", []))


def test_the_entry_points_draw_without_streamlit():
    """The CLI and the notebook API use the app's figure code, never its pages."""
    import subprocess
    import sys

    code = "import sys, cli.main, cli.api; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
