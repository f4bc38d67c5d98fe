"""The model API: how every network the engine trains is built, saved, loaded and optimised.

Two kinds: the SmashModel (a HyperNet and its SMASH network, trained together by SMASH
training and scored afterwards) and the ArchNet of one architecture with freely learned
weights (final training). Training code only loops; what the networks are, how their
optimizers are set up and what their checkpoint files hold is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.arch import Arch
from core.config import Config, RetrainConfig
from engine.hyper.hypernet import HyperNet
from engine.nets.archnet import ArchNet
from engine.nets.smashnet import SMASHNet
from engine.runtime import checkpoint as ckpt
from engine.runtime.device import autocast, memory_format
from engine.runtime.workdir import code_version


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


def training_state(model: SmashModel, opt: torch.optim.Optimizer, run_id: str, step: int,
                   window: dict[str, float], precision: str) -> dict[str, Any]:
    """What a SMASH training checkpoint holds: enough for model_from_state, for a resume
    the optimizer and the running metrics `window` too, and the `precision` the steps ran in
    (the config may say "auto", which resolves per machine)."""
    return {
        "format": ckpt.FORMAT, "kind": "hypernet", "run_id": run_id, "step": step,
        "config": model.cfg.to_dict(), "image_shape": list(model.image_shape),
        "num_classes": model.num_classes, "hyper": model.hyper.state_dict(),
        "net": model.net.state_dict(), "optim": opt.state_dict(), "window": window,
        "precision": precision,
    }


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


def build_archnet(arch: Arch, image_shape: tuple[int, ...], num_classes: int, seed: int,
                  device: torch.device) -> ArchNet:
    """`arch` as an ordinary network, its weights initialised from `seed`, on `device`."""
    torch.manual_seed(seed)
    return ArchNet(arch, image_shape[0], num_classes).to(device, memory_format=memory_format(device))


def make_archnet_optimizer(model: ArchNet, r: RetrainConfig) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum; the schedule sets the learning rate every step."""
    return torch.optim.SGD(model.parameters(), lr=r.lr, momentum=r.momentum, nesterov=True,
                           weight_decay=r.weight_decay)


def archnet_state(model: ArchNet, arch: Arch, image_shape: tuple[int, ...], num_classes: int,
                  cfg: Config) -> dict[str, Any]:
    """What a finished retrain's model file holds: the weights and what load_trained needs."""
    return {"format": ckpt.FORMAT, "kind": "model", "arch": arch.to_json(),
            "image_shape": list(image_shape), "num_classes": num_classes,
            "config": cfg.to_dict(), "code_version": code_version(),
            "state_dict": model.state_dict()}


def load_trained(path: Path) -> tuple[ArchNet, dict[str, Any]]:
    """An ArchNet with the weights of a finished retrain."""
    state = ckpt.load(path)
    if state.get("kind") != "model":
        raise ckpt.CheckpointError(f"{path}: not a trained-model file")
    arch = Arch.from_json(state["arch"])
    model = ArchNet(arch, int(state["image_shape"][0]), int(state["num_classes"]))
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model, state


class SmashStep(nn.Module):
    """The HyperNet and its SMASH net as one module, so DistributedDataParallel can wrap both."""

    def __init__(self, hyper: HyperNet, net: SMASHNet, precision: str = "auto"):
        super().__init__()
        self.hyper, self.net, self.precision = hyper, net, precision

    def forward(self, x: torch.Tensor, arch: Arch, enc: torch.Tensor, spans: list,
                noise: torch.Tensor) -> torch.Tensor:
        """Logits of `arch` on `x` (all tensors on x's device), as forward_arch computes them."""
        with autocast(x.device, self.precision):
            return self.net(x, arch, self.hyper.generate(enc, spans, noise))
