"""SmashModel: the HyperNet and SMASHNet pair, built from a config or a checkpoint, with its optimizer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.arch import Arch
from core.config import Config
from engine.hyper.hypernet import HyperNet
from engine.nets.smashnet import SMASHNet
from engine.runtime import checkpoint as ckpt
from engine.runtime.device import autocast, memory_format

CKPT_FORMAT = 1


@dataclass
class SmashModel:
    """A HyperNet and its SMASH network, with what they were built for."""

    cfg: Config
    hyper: HyperNet
    net: SMASHNet
    image_shape: tuple[int, int, int]
    num_classes: int
    step: int = 0

    def to(self, device: torch.device) -> SmashModel:
        self.hyper.to(device)
        self.net.to(device, memory_format=memory_format(device))
        return self

    def parameters(self):
        return list(self.hyper.parameters()) + list(self.net.parameters())


def build_model(cfg: Config, image_shape: tuple[int, int, int], num_classes: int) -> SmashModel:
    torch.manual_seed(cfg.seed)
    return SmashModel(cfg, HyperNet(cfg.space, cfg.hypernet),
                      SMASHNet(cfg.space, image_shape[0], num_classes),
                      tuple(image_shape), num_classes)


def load_model(path: Path, device: torch.device | str = "cpu") -> SmashModel:
    """Rebuild a SmashModel from a training checkpoint."""
    return model_from_state(ckpt.load(path), device)


def model_from_state(state: dict, device: torch.device | str = "cpu") -> SmashModel:
    """A SmashModel from a loaded checkpoint's contents (its optimizer state not needed)."""
    cfg = Config.from_stored(state["config"])
    model = build_model(cfg, tuple(state["image_shape"]), int(state["num_classes"]))
    model.hyper.load_state_dict(state["hyper"])
    model.net.load_state_dict(state["net"])
    model.step = int(state["step"])
    return model.to(torch.device(device))


def noise_for(model: SmashModel, enc: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    shape = (model.cfg.hypernet.noise_channels, *enc.shape[1:])
    return torch.randn(shape, generator=gen)


def forward_arch(model: SmashModel, arch: Arch, x: torch.Tensor, gen: torch.Generator,
                 device: torch.device) -> torch.Tensor:
    """Logits of `arch` on `x` with weights generated from one noise draw."""
    enc, spans = model.hyper.layout.encode(arch)
    noise = noise_for(model, enc, gen)
    with autocast(device, model.cfg.precision):
        weights = model.hyper.generate(enc.to(device), spans, noise.to(device))
        return model.net(x, arch, weights)


def make_optimizer(model: SmashModel) -> torch.optim.Optimizer:
    t = model.cfg.train
    # No weight decay on the HyperNet: its convs are weight-normalised.
    # Fused: one pass over every tensor instead of a loop of small ops. The shared op
    # weights are large (every kernel size, width and group count at once), and the
    # unfused update of them cost more than the HyperNet itself (bench/step.py).
    return torch.optim.Adam(
        [{"params": list(model.net.parameters()), "weight_decay": t.weight_decay},
         {"params": list(model.hyper.parameters()), "weight_decay": 0.0}],
        lr=t.lr, betas=t.betas, eps=t.eps, fused=True)
