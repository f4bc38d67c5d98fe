"""SMASH training: every step samples an Arch, generates its 1x1 weights, trains both.

The loop (HyperNetTrainer.run) reads top to bottom in phases: schedule, sample, step,
log, checkpoint. Every random choice of step s (architecture, batch order, augmentation,
HyperNet noise) is a pure function of (seed, s), so a run resumed from a checkpoint
follows exactly the trajectory it would have followed uninterrupted.

Under torchrun with several processes (see engine.runtime.distributed) the same loop
runs data parallel: every rank draws the same Arch, batch, augmentation and noise,
trains on its own slice of the batch through DistributedDataParallel, and logs the mean
over ranks; only rank 0 writes the store and the checkpoint files. Which of these a
process is gets decided once, before the loop (Ranks).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from core.arch import Arch
from core.config import Config
from core.control import QUIET, Control
from core.errors import Cancelled
from core.ids import run_id_for
from core.space import sample_arch
from engine.data.batches import augment, batch_indices, check_batches, normalize, steps_per_epoch
from engine.data.splits import DataSplits, load_data
from engine.model import SmashModel
from engine.runtime import allocator, distributed
from engine.runtime import checkpoint as ckpt
from engine.runtime.device import memory_format, pick_device, resolve_precision
from engine.runtime.rng import step_rng, torch_gen
from engine.runtime.workdir import checkpoint_dir, code_version, run_lock
from engine.scoring.probe import score_probe
from engine.scoring.scorer import Scorer
from engine.train.ending import ended_as_failed, run_marker
from engine.train.schedule import cosine_lr
from engine.train.tuning import tune_threads
from store import BackgroundWriter, Store

CheckpointFn = Callable[[int, bool], None]


def hypernet_step(model: nn.Module, opt: torch.optim.Optimizer, arch: Arch, x: torch.Tensor,
                  y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """One SMASH step of `model` (a SmashModel, or DDP around one) with weights generated
    from `noise`; returns [loss, error] of the batch as a tensor on the device (reading it
    back would make the host wait for the device every step)."""
    logits = model(x, arch, noise)
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        err = (logits.argmax(1) != y).float().mean()
        return torch.stack([loss.detach(), err])


def total_steps(cfg: Config, n_train: int) -> int:
    if cfg.train.steps:
        return cfg.train.steps
    return max(1, math.ceil(cfg.train.epochs * steps_per_epoch(n_train, cfg.train.batch_size)))


@dataclass(frozen=True)
class Ranks:
    """This process's part in the run: `ddp` (one rank of a data-parallel run), `master`
    (the process that writes the store and the checkpoint files) and `rows` (its shard
    of every global batch)."""

    ddp: bool
    master: bool
    rows: slice

    @classmethod
    def of(cls, ddp: bool, batch_size: int) -> Ranks:
        if not ddp:
            return cls(ddp=False, master=True, rows=slice(None))
        rank = distributed.rank()
        return cls(ddp=True, master=rank == 0,
                   rows=distributed.shard_rows(batch_size, rank, distributed.world_size()))

    def barrier(self) -> None:
        if self.ddp:
            distributed.barrier()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when `flag` is True on any."""
        return distributed.any_rank(flag, device) if self.ddp else flag


def new_window() -> dict[str, float]:
    """Sums over the steps since the last log row; checkpoints carry it, so a resume logs alike."""
    return {"loss": 0.0, "err": 0.0, "n": 0, "t": 0.0}


def train_hypernet(cfg: Config, workdir: Path, *, store: Store | None, run_id: str | None = None,
                   data: DataSplits | None = None, control: Control = QUIET,
                   on_checkpoint: CheckpointFn | None = None) -> dict[str, Any]:
    """Train (or resume) the run `run_id`; returns a summary.

    `on_checkpoint(step, last)`, if given, is called (on rank 0) once each checkpoint is
    saved and recorded (`last`: the run's final one), instead of scoring the probe set here:
    the caller hands the checkpoint to someone else (the engine's runner queues a job).

    Under torchrun with several processes this trains data parallel, joining (and at the
    end leaving) the process group unless the caller already joined it. Only rank 0 uses
    `store`; the other ranks may pass None. `control.should_stop`, if given, must be given on
    every rank: the run stops when it says so on any.
    """
    run_id = run_id or run_id_for(cfg)
    data = data or load_data(cfg.data, cfg.seed)  # bad data fails before any file is written
    check_batches(len(data.train_y), cfg.train.batch_size, "[train].batch_size")
    ddp = distributed.launched()
    if ddp:
        distributed.shard_size(cfg.train.batch_size, distributed.env_world_size())  # fail before joining
        device, owned = distributed.init(pick_device(cfg.device))
    else:
        device, owned = pick_device(cfg.device), False
        tune_threads(cfg, workdir, data.image_shape, data.num_classes, device)
    try:
        ranks = Ranks.of(ddp, cfg.train.batch_size)
        mark = run_marker(store, run_id) if ranks.master and store is not None else None
        with (run_lock(workdir, run_id) if ranks.master else contextlib.nullcontext(),
              ended_as_failed(mark, f"run {run_id}")):
            trainer = HyperNetTrainer(cfg, workdir, store, device, run_id, data, ranks, on_checkpoint)
            return trainer.run(control)
    finally:
        if owned:
            distributed.destroy()


class HyperNetTrainer:
    """One process's share of one run: the model, its optimizer, the data on the device,
    and the running state of the loop (window of metrics, batch order, last step's metrics)."""

    def __init__(self, cfg: Config, workdir: Path, store: Store | None, device: torch.device,
                 run_id: str, data: DataSplits, ranks: Ranks, on_checkpoint: CheckpointFn | None = None):
        if ranks.master and store is None:
            raise ValueError("train_hypernet: a store is required (on rank 0 under torchrun)")
        self.cfg, self.store, self.device, self.run_id, self.data, self.ranks = (
            cfg, store, device, run_id, data, ranks)
        self.n_train = len(data.train_y)
        self.spe = steps_per_epoch(self.n_train, cfg.train.batch_size)
        self.total = total_steps(cfg, self.n_train)
        self.folder = checkpoint_dir(workdir, run_id)
        self.precision = resolve_precision(device, cfg.precision)  # what "auto" means here, reported
        self.model = SmashModel(cfg, data.image_shape, data.num_classes).place(device)
        self.train_x, self.train_y = data.train_x.to(device), data.train_y.to(device)
        self.opt = self.model.configure_optimizer()
        self.window = new_window()
        self.start, self.resume_path = 0, None
        self.stepper: nn.Module = self.model  # DDP around it under torchrun (join)
        self.writer: BackgroundWriter | None = None
        self.scorer: Scorer | None = None  # for the probe set, built at its first checkpoint
        self.order, self.order_epoch = None, -1
        self.pending = torch.zeros(2, dtype=torch.float64, device=device)  # loss, error sums
        self.last: torch.Tensor | None = None
        self.on_checkpoint = on_checkpoint  # None: the probe set is scored here

    # -- setup -----------------------------------------------------------------------------

    def resume(self) -> None:
        """Continue from the newest readable checkpoint, if any (every rank reads the same
        one: the workdir is shared)."""
        existing = ckpt.step_checkpoints(self.folder)
        if not existing:
            return
        _, self.resume_path, state = ckpt.newest_loadable(existing, map_location=self.device)
        self.window = self.model.load_checkpoint(state, self.opt)
        self.start = self.model.step

    def join(self) -> None:
        """Under DDP: wait until every rank has read its checkpoint (before rank 0 writes a
        new one), and step through DistributedDataParallel from now on."""
        if not self.ranks.ddp:
            return
        self.ranks.barrier()
        # Sampled archs leave parameters unused; every rank leaves the same ones.
        self.stepper = nn.parallel.DistributedDataParallel(
            self.model, find_unused_parameters=True,
            device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def register(self) -> None:
        """The run's row says running, with what it trains on."""
        if not self.ranks.master:
            return
        cfg, data = self.cfg, self.data
        self.store.create_run(self.run_id, name=cfg.name, config=cfg.to_dict(), seed=cfg.seed,
                              code_version=code_version(), dataset=data.name,
                              num_classes=data.num_classes, image_shape=list(data.image_shape),
                              steps_total=self.total, status="running")

    # -- the loop --------------------------------------------------------------------------

    def run(self, control: Control) -> dict[str, Any]:
        """Train from the resumed step to the last; returns the summary."""
        self.resume()
        self.join()
        self.register()
        t, master = self.cfg.train, self.ranks.master
        self.model.train()
        bar = tqdm(total=self.total, initial=self.start, desc=f"train {self.run_id}", unit="step",
                   disable=not (control.show_progress and master), dynamic_ncols=True)
        last_path = self.resume_path
        # Ranks other than 0 never open the store: they get no writer at all.
        with BackgroundWriter(self.store) if master else contextlib.nullcontext() as self.writer:
            step = self.start
            while step < self.total:
                if control.should_stop is not None and self.ranks.any(control.stop_requested(), self.device):
                    self.settle()
                    self.save(step)
                    raise Cancelled(f"stopped at step {step}")
                lr = self.schedule(step)
                arch, x, y = self.sample(step)
                self.train_step(step, arch, x, y)
                step += 1
                bar.update(1)
                if step % t.log_every == 0 or step == self.total:
                    self.log(step, lr, bar, control)
                if step % t.checkpoint_every == 0 or step == self.total:
                    self.settle()
                    last_path = self.save(step)
            bar.close()
        return self.finish(last_path)

    def schedule(self, step: int) -> float:
        """Set and return the learning rate of `step`."""
        lr = cosine_lr(self.cfg.train.lr, step, self.total)
        for group in self.opt.param_groups:
            group["lr"] = lr
        return lr

    def sample(self, step: int) -> tuple[Arch, torch.Tensor, torch.Tensor]:
        """The Arch and this rank's shard of the augmented batch of `step` (under DDP every
        rank draws the same Arch and global batch)."""
        cfg = self.cfg
        arch = sample_arch(cfg.space, step_rng(cfg.seed, step, 1), progress=step / self.total)
        epoch, i = divmod(step, self.spe)
        if epoch != self.order_epoch:
            self.order = batch_indices(self.n_train, cfg.train.batch_size, cfg.seed,
                                       epoch).to(self.device)
            self.order_epoch = epoch
        idx = self.order[i]
        x = augment(self.train_x[idx], cfg.data.crop_padding, cfg.data.flip,
                    torch_gen(cfg.seed, step, 2))
        rows = self.ranks.rows
        x = normalize(x[rows], self.data.mean, self.data.std)
        return arch, x.contiguous(memory_format=memory_format(self.device)), self.train_y[idx][rows]

    def train_step(self, step: int, arch: Arch, x: torch.Tensor, y: torch.Tensor) -> None:
        """One optimizer step; its metrics stay on the device until the next log or checkpoint."""
        t0 = time.perf_counter()
        noise = self.model.noise(arch, torch_gen(self.cfg.seed, step, 3))
        metrics = hypernet_step(self.stepper, self.opt, arch, x, y, noise)
        if self.ranks.ddp:
            metrics = distributed.mean_over_ranks(metrics)
        self.pending += metrics.double()
        self.last = metrics
        self.window["n"] += 1
        self.window["t"] += time.perf_counter() - t0

    def settle(self) -> None:
        """Fold the device-side sums into the window (one read-back)."""
        loss_sum, err_sum = self.pending.tolist()
        self.window["loss"] += loss_sum
        self.window["err"] += err_sum
        self.pending.zero_()

    def log(self, step: int, lr: float, bar: tqdm, control: Control) -> None:
        """One train_metrics row: the means over the window, which then starts afresh."""
        self.settle()
        w = self.window
        n = max(w["n"], 1)
        row = {"run_id": self.run_id, "step": step, "loss": w["loss"] / n, "error": w["err"] / n,
               "lr": lr, "steps_per_s": n / max(w["t"], 1e-9), "elapsed_s": w["t"]}
        bar.set_postfix(loss=f"{row['loss']:.3f}", err=f"{row['error']:.3f}")
        self.window = new_window()
        if self.ranks.master:
            self.writer.put("train_metrics", [row])
            control.progress(step / self.total, f"step {step}/{self.total} loss {row['loss']:.3f}")

    # -- checkpoints -----------------------------------------------------------------------

    def save(self, step: int) -> Path:
        """The checkpoint of `step`: rank 0 writes it, and no rank goes on before it exists."""
        path = ckpt.step_path(self.folder, step)
        if self.ranks.master:
            self.probe(step)
            self.writer.flush()  # metrics (and probe scores) up to this step land before the checkpoint
            ckpt.save_atomic(self.model.checkpoint(self.opt, self.run_id, step, self.window, self.precision),
                             path)
            self.store.add_checkpoint(self.run_id, step, str(path))
            self.store.update_run(self.run_id, step=step)
            if self.on_checkpoint is not None:
                self.on_checkpoint(step, step == self.total)
        self.ranks.barrier()
        return path

    def probe(self, step: int) -> None:
        """Score the run's probe set with this checkpoint's weights (when [score].probe asks)."""
        if not self.cfg.score.probe or self.on_checkpoint is not None:
            return
        if self.scorer is None:
            self.scorer = Scorer.for_model(self.model, self.data, self.device)
        score_probe(self.scorer, self.cfg, self.run_id, step, self.writer)

    def finish(self, last_path: Path | None) -> dict[str, Any]:
        """The run is done in the store before any rank returns its summary."""
        summary = {"run_id": self.run_id, "steps": self.total, "resumed_from": self.start,
                   "checkpoint": str(last_path),
                   "last_loss": float(self.last[0]) if self.last is not None else float("nan"),
                   "device": str(self.device), "precision": self.precision, "allocator": allocator.loaded()}
        if self.ranks.master:
            self.store.update_run(self.run_id, status="done", step=self.total)
        if not self.ranks.ddp:
            return summary
        self.dump_weights()
        self.ranks.barrier()
        return {**summary, "world_size": distributed.world_size()}

    def dump_weights(self) -> None:
        """Under DDP, with SMASH_DDP_DUMP_DIR set, every rank saves its final weights (tests
        compare them across ranks)."""
        dump = os.environ.get(distributed.DUMP_ENV)
        if not dump:
            return
        Path(dump).mkdir(parents=True, exist_ok=True)
        model = self.model
        torch.save({"hyper": {k: v.cpu() for k, v in model.hyper.state_dict().items()},
                    "net": {k: v.cpu() for k, v in model.net.state_dict().items()}},
                   Path(dump) / f"rank{distributed.rank()}.pt")
