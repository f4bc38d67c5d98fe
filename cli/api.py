"""The notebook API: a workdir's runs, ranking, architectures, models and drawings as Python objects.

    from cli import api
    wd = api.open_workdir("runs")
    wd.runs()                       # DataFrame, as `smash runs`
    wd.top(sort="params", limit=10) # DataFrame, one leaderboard page, as `smash top`
    wd.arch("best")                 # Arch
    wd.model("best")                # nn.Module with the weights of its final training
    wd.graph("best")                # the dashboard's Plotly figure

Everything reads through the store's public methods, the same ones the dashboard and
the `smash` listing commands use; nothing here keeps a connection open, so a notebook
can sit beside a running engine. Like the CLI, this sits above both the engine and the app.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from torch import nn

from app import graph
from cli import archref as lookup
from cli.arch_view import show_doc
from cli.decide import recommendation
from cli.listing import runs_listing
from cli.model_card import latest_retrain
from core.arch import Arch
from engine.model import load_trained
from engine.nets.archnet import ArchNet

Range = tuple[float | None, float | None] | None


class Workdir:
    """One work directory's results. Methods take `run=None` for the latest run."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.store = lookup.open_store(self.path)

    def __repr__(self) -> str:
        return f"Workdir({str(self.path)!r})"

    def run_id(self, run: str | None = None) -> str:
        return lookup.run_id(self.store, run)

    def runs(self) -> pd.DataFrame:
        """Every run with its status, step, data set and best SMASH score."""
        return runs_listing(self.store).frame

    def top(self, run: str | None = None, *, sort: str = "score_mean", descending: bool = False,
            params: Range = None, flops: Range = None, score: Range = None,
            stages: Sequence[str] | None = None, limit: int = 25, page: int = 1) -> pd.DataFrame:
        """One page of the leaderboard (ranges inclusive, either end None), as the dashboard pages it."""
        return self.store.leaderboard(self.run_id(run), sort=sort, descending=descending,
                                      params=params, flops=flops, score=score, stages=stages,
                                      limit=limit, offset=(page - 1) * limit)

    def recommend(self, run: str | None = None) -> dict:
        """What to train, as the Leaderboard and `smash top --recommend` say: the verdicts
        against the leader, the recommended archs with their reasons, and the learned ranker's
        standing (offered or not, and why)."""
        return recommendation(self.store, self.run_id(run))

    def jobs(self, limit: int = 50) -> pd.DataFrame:
        return self.store.jobs(limit=limit)

    def record(self, ref: str = "best", run: str | None = None) -> dict:
        run_id = self.run_id(run)
        return lookup.arch_record(self.store, run_id, ref)

    def arch(self, ref: str = "best", run: str | None = None) -> Arch:
        """The Arch `ref` names: an arch id, `best`, or an arch JSON file."""
        return self.record(ref, run)["model"]

    def show(self, ref: str = "best", run: str | None = None) -> dict:
        """What `smash show --json` prints: sizes, score with spread, true errors, blocks, layers."""
        run_id = self.run_id(run)
        return show_doc(self.store, run_id, lookup.arch_record(self.store, run_id, ref))

    def model(self, ref: str = "best", run: str | None = None, trained: bool = True) -> nn.Module:
        """The arch as an nn.Module in eval mode: with the weights of its latest finished
        final training, or (trained=False) freshly initialised for the run's images."""
        run_id = self.run_id(run)
        arch = self.arch(ref, run_id)
        if not trained:
            meta = self.store.get_run(run_id)
            return ArchNet(arch, int(meta["image_shape"][0]), int(meta["num_classes"])).eval()
        retrain = latest_retrain(self.store, run_id, arch.id)
        if retrain is None or not retrain.get("checkpoint"):
            raise lookup.NotFound(f"arch {arch.id} has no finished final training in run {run_id}; "
                                  f"run `smash retrain --arch {arch.id}`, or pass trained=False")
        return load_trained(Path(retrain["checkpoint"]))[0]

    def graph(self, ref: str = "best", run: str | None = None) -> go.Figure:
        """The memory-bank drawing of the Architecture page."""
        arch = self.arch(ref, run)
        return graph.figure(arch, title=f"arch {arch.id}")


def open_workdir(path: str | Path) -> Workdir:
    """The results in `path` (a workdir made by `smash train`); a missing store is an error."""
    return Workdir(path)
