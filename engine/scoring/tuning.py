"""Scoring as a workload to time: how many threads a scoring process gets on the CPU.

Forward passes of the loaded model at the score batch size on random images, in eval
mode without gradients, so the model is left exactly as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from core.space import sample_arch
from engine.model import SmashModel, evaluating
from engine.runtime.device import memory_format
from engine.runtime.rng import step_rng, torch_gen
from engine.runtime.threads import tuned_threads

WORKLOAD_ARCHS = 1
"""Archs per timed pass: one forward of a whole score batch is already a large workload
(about 0.3 s at the demo size on one core), and the measurement must stay short."""


def score_workload(model: SmashModel, batch: int) -> dict:
    """What decides the speed of scoring (the cache key of its thread choice)."""
    d = model.cfg.to_dict()
    return {"kind": "smash-score", "space": d["space"], "hypernet": d["hypernet"], "batch": batch,
            "image_shape": list(model.image_shape), "num_classes": model.num_classes,
            "precision": model.cfg.precision, "memory_format": os.environ.get("SMASH_MEMORY_FORMAT", "")}


def tune_score_threads(model: SmashModel, workdir: Path, device: torch.device) -> int:
    """Set (and return) the threads for scoring with `model` on the CPU; on CUDA, leave them."""
    if device.type != "cpu":
        return torch.get_num_threads()
    cfg = model.cfg
    batch = max(1, min(cfg.score.batch_size, cfg.score.val_images or cfg.score.batch_size))
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(batch, *model.image_shape, generator=gen).contiguous(memory_format=memory_format(device))
    archs = [sample_arch(cfg.space, step_rng(cfg.seed, i, 42), progress=1.0) for i in range(WORKLOAD_ARCHS)]

    @torch.no_grad()
    def one_pass() -> None:
        for i, arch in enumerate(archs):
            model(x, arch, model.noise(arch, torch_gen(cfg.seed, i, 43)))

    with evaluating(model):
        return tuned_threads(workdir, score_workload(model, batch), one_pass)
