"""A run's checkpoint loaded for scoring: found and read once, its model on the run's
device, the scoring threads tuned, and the data it scores on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.config import Config, ScoreConfig
from engine.data.splits import DataSplits, load_data
from engine.model import SmashModel, find_checkpoint
from engine.runtime.device import pick_device
from engine.scoring.tuning import tune_score_threads


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint loaded for scoring: its step, file, config, model and data."""

    step: int
    path: Path
    cfg: Config
    model: SmashModel
    device: torch.device
    data: DataSplits

    @property
    def sc(self) -> ScoreConfig:
        return self.cfg.score


def val_shard(sc: ScoreConfig, n_val: int) -> int:
    """Validation images one draw scores on: [score].val_images, or all (0)."""
    return min(sc.val_images, n_val) if sc.val_images > 0 else n_val


def load_for_scoring(workdir: Path, run_id: str, step: int | None = None, halving_min: int | None = None,
                     data: DataSplits | None = None) -> LoadedCheckpoint:
    """Run `run_id`'s checkpoint at `step` (default: its newest that loads), with
    `halving_min` overriding the run's [score].halving_min when given."""
    ck = find_checkpoint(workdir, run_id, step)
    cfg = ck.config
    if halving_min is not None:
        cfg = cfg.replace(score={"halving_min": int(halving_min)})
    device = pick_device(cfg.device)
    model = ck.model(device)
    tune_score_threads(model, workdir, device)
    return LoadedCheckpoint(ck.step, ck.path, cfg, model, device, data or load_data(cfg.data, cfg.seed))
