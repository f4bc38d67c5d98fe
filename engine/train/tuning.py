"""Training steps as workloads to time: how many threads SMASH training and final training get on the CPU.

A throwaway model of the run's size (for final training: of the arch being retrained),
random batches of the configured batch size: the same convolutions the real steps run,
without touching the real model, optimizer or random streams.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from core.arch import Arch
from core.config import Config
from core.space import sample_arch
from engine.model import SmashModel, build_archnet, make_archnet_optimizer
from engine.runtime.device import autocast, memory_format
from engine.runtime.rng import step_rng, torch_gen
from engine.runtime.threads import tuned_threads

WORKLOAD_ARCHS = 2
"""Archs per timed pass: real steps each meet a new arch, so one arch alone is too kind."""


def train_workload(cfg: Config, image_shape: tuple[int, int, int], num_classes: int) -> dict:
    """What decides the speed of a training step (the cache key of its thread choice)."""
    d = cfg.to_dict()
    return {"kind": "smash-train", "space": d["space"], "hypernet": d["hypernet"],
            "batch_size": cfg.train.batch_size, "image_shape": list(image_shape),
            "num_classes": num_classes, "precision": cfg.precision,
            "memory_format": os.environ.get("SMASH_MEMORY_FORMAT", "")}


def tune_threads(cfg: Config, workdir: Path, image_shape: tuple[int, int, int],
                       num_classes: int, device: torch.device) -> int:
    """Set (and return) the threads for SMASH training on the CPU; on CUDA, leave them."""
    if device.type != "cpu":
        return torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):  # building the model seeds the global generator
        model = SmashModel(cfg, image_shape, num_classes).place(device)
        opt = model.configure_optimizer()
        gen = torch.Generator().manual_seed(cfg.seed)
        x = torch.randn(cfg.train.batch_size, *image_shape, generator=gen)
        x = x.contiguous(memory_format=memory_format(device))
        y = torch.randint(0, num_classes, (cfg.train.batch_size,), generator=gen)
        archs = [sample_arch(cfg.space, step_rng(cfg.seed, i, 40), progress=(i + 0.5) / WORKLOAD_ARCHS)
                 for i in range(WORKLOAD_ARCHS)]

        def one_pass() -> None:
            for i, arch in enumerate(archs):  # what hypernet_step does, less its metrics
                noise = model.noise(arch, torch_gen(cfg.seed, i, 41))
                loss = F.cross_entropy(model(x, arch, noise).float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        return tuned_threads(workdir, train_workload(cfg, image_shape, num_classes), one_pass)


def tune_retrain_threads(cfg: Config, workdir: Path, arch: Arch, image_shape: tuple[int, int, int],
                         num_classes: int, device: torch.device) -> int:
    """Set (and return) the threads for final training on the CPU; on CUDA, leave them.

    Timed on the arch about to be retrained, cached for the space and batch size: the next
    retrain of a run (another arch of the same space) reuses the choice."""
    if device.type != "cpu":
        return torch.get_num_threads()
    r = cfg.retrain
    workload = {"kind": "retrain", "space": cfg.to_dict()["space"], "batch_size": r.batch_size,
                "image_shape": list(image_shape), "num_classes": num_classes, "precision": cfg.precision,
                "memory_format": os.environ.get("SMASH_MEMORY_FORMAT", "")}
    with torch.random.fork_rng(devices=[]):  # build_archnet seeds the global generator
        model = build_archnet(arch, image_shape, num_classes, cfg.seed, device)
        opt = make_archnet_optimizer(model, r)
        gen = torch.Generator().manual_seed(cfg.seed)
        x = torch.randn(r.batch_size, *image_shape, generator=gen).contiguous(memory_format=memory_format(device))
        y = torch.randint(0, num_classes, (r.batch_size,), generator=gen)

        def one_pass() -> None:
            with autocast(device, cfg.precision):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return tuned_threads(workdir, workload, one_pass)
