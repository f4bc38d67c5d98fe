"""The model API: how every network the engine trains is built, saved, loaded and optimised.

Two kinds: the SmashModel (a HyperNet and its SMASH network, one nn.Module trained by
SMASH training and scored afterwards) and the ArchNet of one architecture with freely
learned weights (final training). Training code only loops; what the networks are, how
their optimizers are set up, what their checkpoint files hold and where a run's
checkpoint is found is decided here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.arch import Arch
from core.config import Config, RetrainConfig
from engine.hyper.hypernet import HyperNet
from engine.nets.archnet import ArchNet
from engine.nets.generated import Generated
from engine.nets.smashnet import SMASHNet
from engine.runtime import checkpoint as ckpt
from engine.runtime.device import autocast, memory_format
from engine.runtime.workdir import checkpoint_dir, code_version


class SmashModel(nn.Module):
    """A HyperNet and the SMASH network it generates weights for, trained as one module.

    `forward(x, arch, noise)` is the one place the generated weights meet the network:
    SMASH training, scoring, probes, thread tuning and refining all call it, and
    DistributedDataParallel wraps the module itself. The model also makes its optimizer
    and its checkpoint, and rebuilds itself from one."""

    def __init__(self, cfg: Config, image_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        torch.manual_seed(cfg.seed)  # the same initial weights for the same config
        self.cfg = cfg
        self.hyper = HyperNet(cfg.space, cfg.hypernet)
        self.net = SMASHNet(cfg.space, image_shape[0], num_classes)
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.step = 0

    def place(self, device: torch.device) -> SmashModel:
        """Move to `device`, the network's convolutions in the engine's memory format."""
        self.hyper.to(device)
        self.net.to(device, memory_format=memory_format(device))
        return self

    # -- the forward pass ------------------------------------------------------------------

    def noise(self, arch: Arch, gen: torch.Generator) -> torch.Tensor:
        """One draw of HyperNet noise for `arch`, on the CPU from `gen` (so a draw is the
        same on every device)."""
        rows, cols = self.hyper.layout.grid_shape(arch)
        return torch.randn((self.cfg.hypernet.noise_channels, rows, cols), generator=gen)

    def generate(self, arch: Arch, noise: torch.Tensor) -> Generated:
        """The weights the HyperNet generates for `arch` from one noise draw."""
        device = next(self.hyper.parameters()).device
        enc, spans = self.hyper.layout.encode(arch)
        with autocast(device, self.cfg.precision):
            return self.hyper.generate(enc.to(device), spans, noise.to(device))

    def forward(self, x: torch.Tensor, arch: Arch, noise: torch.Tensor | None = None, *,
                weights: Generated | None = None) -> torch.Tensor:
        """Logits of `arch` on `x` with generated weights: from `noise`, or `weights` already
        generated (scoring reuses one draw's weights over several batches)."""
        if weights is None:
            weights = self.generate(arch, noise)
        with autocast(x.device, self.cfg.precision):
            return self.net(x, arch, weights)

    # -- optimizer and checkpoints ---------------------------------------------------------

    def configure_optimizer(self) -> torch.optim.Optimizer:
        t = self.cfg.train
        # No weight decay on the HyperNet: its convs are weight-normalised.
        # Fused: one pass over every tensor instead of a loop of small ops. The shared op
        # weights are large (every kernel size, width and group count at once), and the
        # unfused update of them cost more than the HyperNet itself (bench/step.py).
        return torch.optim.Adam(
            [{"params": list(self.net.parameters()), "weight_decay": t.weight_decay},
             {"params": list(self.hyper.parameters()), "weight_decay": 0.0}],
            lr=t.lr, betas=t.betas, eps=t.eps, fused=True)

    def checkpoint(self, opt: torch.optim.Optimizer, run_id: str, step: int, window: dict[str, float],
                   precision: str) -> dict[str, Any]:
        """What a SMASH training checkpoint holds: enough to rebuild the model, for a resume
        the optimizer and the running metrics `window` too, and the `precision` the steps
        ran in (the config may say "auto", which resolves per machine)."""
        return {
            "format": ckpt.FORMAT, "kind": "hypernet", "run_id": run_id, "step": step,
            "config": self.cfg.to_dict(), "image_shape": list(self.image_shape),
            "num_classes": self.num_classes, "hyper": self.hyper.state_dict(),
            "net": self.net.state_dict(), "optim": opt.state_dict(), "window": window,
            "precision": precision,
        }

    def load_checkpoint(self, state: dict[str, Any], opt: torch.optim.Optimizer | None = None) -> dict[str, float]:
        """Take a checkpoint's weights (and, given `opt`, its optimizer state); returns the
        running metrics window it carried."""
        self.hyper.load_state_dict(state["hyper"])
        self.net.load_state_dict(state["net"])
        self.step = int(state["step"])
        if opt is not None:
            opt.load_state_dict(state["optim"])
        return dict(state.get("window") or {})

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any], device: torch.device | str = "cpu") -> SmashModel:
        """The model a loaded checkpoint holds, on `device`."""
        model = cls(Config.from_stored(state["config"]), tuple(state["image_shape"]), int(state["num_classes"]))
        model.load_checkpoint(state)
        return model.place(torch.device(device))


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode for the block, then back in the mode it was in."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


@dataclass(frozen=True)
class Checkpoint:
    """A run's SMASH checkpoint, found and loaded once: its step, file and contents."""

    step: int
    path: Path
    state: dict[str, Any]

    @property
    def config(self) -> Config:
        return Config.from_stored(self.state["config"])

    def model(self, device: torch.device | str = "cpu") -> SmashModel:
        return SmashModel.from_checkpoint(self.state, device)


def find_checkpoint(workdir: Path, run_id: str, step: int | None = None) -> Checkpoint:
    """Run `run_id`'s checkpoint at `step`, or its newest that loads (a corrupt last file
    must not stop scoring), loaded once."""
    found = ckpt.step_checkpoints(checkpoint_dir(workdir, run_id))
    if not found:
        raise ckpt.CheckpointError(f"run {run_id} has no checkpoint in {checkpoint_dir(workdir, run_id)}; "
                                   "train it first with `smash train`")
    if step is None:
        s, path, state = ckpt.newest_loadable(found)
        return Checkpoint(s, path, state)
    for s, path in found:
        if s == step:
            return Checkpoint(s, path, ckpt.load(path))
    raise ckpt.CheckpointError(f"run {run_id} has no checkpoint at step {step}; "
                               f"available: {', '.join(str(s) for s, _ in found)}")


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
