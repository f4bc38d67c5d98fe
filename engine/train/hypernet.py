"""SMASH training: every step samples an Arch, generates its 1x1 weights, trains both.

The loop reads top to bottom in phases: schedule, sample, step, log, checkpoint. Every
random choice of step s (architecture, batch order, augmentation, HyperNet noise) is a
pure function of (seed, s), so a run resumed from a checkpoint follows exactly the
trajectory it would have followed uninterrupted.

Under torchrun with several processes (see engine.distributed) the same loop runs data
parallel: every rank draws the same Arch, batch, augmentation and noise, trains on its
own slice of the batch through DistributedDataParallel, and logs the mean over ranks;
only rank 0 writes the store and the checkpoint files.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from core.arch import Arch
from core.config import Config
from core.errors import Cancelled
from core.ids import run_id_for
from core.space import sample_arch
from engine.data.batches import augment, batch_indices, check_batches, normalize, steps_per_epoch
from engine.data.splits import DataSplits, load_data
from engine.hyper.hypernet import HyperNet
from engine.model import (
    CKPT_FORMAT,
    SmashModel,
    build_model,
    forward_arch,
    make_optimizer,
    noise_for,
)
from engine.nets.smashnet import SMASHNet
from engine.runtime import checkpoint as ckpt
from engine.runtime import distributed
from engine.runtime.device import autocast, memory_format, pick_device
from engine.runtime.rng import step_rng, torch_gen
from engine.runtime.workdir import checkpoint_dir, code_version, run_lock
from engine.train.schedule import cosine_lr
from store import BackgroundWriter, Store

ProgressFn = Callable[[float, str], None]


def hypernet_step(model: SmashModel, opt: torch.optim.Optimizer, arch: Arch, x: torch.Tensor,
                  y: torch.Tensor, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """One SMASH step; returns [loss, error] of the batch as a tensor on the device (reading
    it back would make the host wait for the device every step)."""
    return _update(opt, forward_arch(model, arch, x, gen, device), y)


def _update(opt: torch.optim.Optimizer, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy backward and an optimizer step; [loss, error] of the batch, on the device."""
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        err = (logits.argmax(1) != y).float().mean()
        return torch.stack([loss.detach(), err])


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


def ddp_step(step_module: nn.Module, model: SmashModel, opt: torch.optim.Optimizer, arch: Arch,
             x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
             device: torch.device) -> torch.Tensor:
    """hypernet_step on this rank's shard through DDP; returns [loss, error], the mean over ranks."""
    enc, spans = model.hyper.layout.encode(arch)
    noise = noise_for(model, enc, gen)
    logits = step_module(x, arch, enc.to(device), spans, noise.to(device))
    return distributed.mean_over_ranks(_update(opt, logits, y))


def total_steps(cfg: Config, n_train: int) -> int:
    if cfg.train.steps:
        return cfg.train.steps
    return max(1, math.ceil(cfg.train.epochs * steps_per_epoch(n_train, cfg.train.batch_size)))


@contextlib.contextmanager
def ended_as_failed(store: Store | None, run_id: str) -> Iterator[None]:
    """A run that stops on an error is marked failed, one that is stopped cancelled (a
    resume marks it running again), so no row says "running" for a run nobody trains."""
    try:
        yield
    except BaseException as exc:
        if store is not None:
            mark_ended(store, run_id, "cancelled" if isinstance(exc, Cancelled | KeyboardInterrupt)
                       else "failed")
        raise


def mark_ended(store: Store, run_id: str, status: str) -> None:
    try:
        if (store.get_run(run_id) or {}).get("status") == "running":
            store.update_run(run_id, status=status)
    except Exception as exc:  # the error that ended the run matters more than this one
        print(f"warning: could not mark run {run_id} {status}: {exc}", file=sys.stderr, flush=True)


def train_hypernet(cfg: Config, workdir: Path, *, store: Store | None, run_id: str | None = None,
                   data: DataSplits | None = None, show_progress: bool = True,
                   on_progress: ProgressFn | None = None,
                   should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Train (or resume) the run `run_id`; returns a summary.

    Under torchrun with several processes this trains data parallel, joining (and at the
    end leaving) the process group unless the caller already joined it. Only rank 0 uses
    `store`; the other ranks may pass None. `should_stop`, if given, must be given on
    every rank: the run stops when it says so on any.
    """
    run_id = run_id or run_id_for(cfg)
    data = data or load_data(cfg.data, cfg.seed)  # bad data fails before any file is written
    check_batches(len(data.train_y), cfg.train.batch_size, "[train].batch_size")
    if not distributed.launched():
        with run_lock(workdir, run_id), ended_as_failed(store, run_id):
            return _train(cfg, workdir, store, pick_device(cfg.device), run_id, data, show_progress,
                          on_progress, should_stop, ddp=False)
    distributed.shard_size(cfg.train.batch_size, distributed.env_world_size())  # fail before joining
    device, owned = distributed.init(pick_device(cfg.device))
    try:
        main = distributed.is_main()
        with (run_lock(workdir, run_id) if main else contextlib.nullcontext(),
              ended_as_failed(store if main else None, run_id)):
            return _train(cfg, workdir, store, device, run_id, data, show_progress, on_progress,
                          should_stop, ddp=True)
    finally:
        if owned:
            distributed.destroy()


def _train(cfg: Config, workdir: Path, store: Store | None, device: torch.device,
           run_id: str | None, data: DataSplits | None, show_progress: bool,
           on_progress: ProgressFn | None, should_stop: Callable[[], bool] | None,
           *, ddp: bool) -> dict[str, Any]:
    """The training loop; with `ddp`, one rank of a data-parallel run."""
    run_id = run_id or run_id_for(cfg)
    main = not ddp or distributed.is_main()
    if main and store is None:
        raise ValueError("train_hypernet: a store is required (on rank 0 under torchrun)")
    data = data or load_data(cfg.data, cfg.seed)
    t = cfg.train
    n_train = len(data.train_y)
    check_batches(n_train, t.batch_size, "[train].batch_size")
    spe = steps_per_epoch(n_train, t.batch_size)
    total = total_steps(cfg, n_train)
    folder = checkpoint_dir(workdir, run_id)

    model = build_model(cfg, data.image_shape, data.num_classes).to(device)
    opt = make_optimizer(model)
    window = {"loss": 0.0, "err": 0.0, "n": 0, "t": 0.0}
    start = 0
    existing = ckpt.step_checkpoints(folder)  # the workdir is shared: every rank resumes alike
    resume_path = None
    if existing:
        _, resume_path, state = ckpt.newest_loadable(existing, map_location=device)
        model.hyper.load_state_dict(state["hyper"])
        model.net.load_state_dict(state["net"])
        opt.load_state_dict(state["optim"])
        window = dict(state["window"])
        start = int(state["step"])

    step_module: nn.Module | None = None
    rows = slice(None)
    if ddp:
        distributed.barrier()  # every rank has read its checkpoint before rank 0 writes a new one
        rows = distributed.shard_rows(t.batch_size, distributed.rank(), distributed.world_size())
        # Sampled archs leave parameters unused; every rank leaves the same ones.
        step_module = nn.parallel.DistributedDataParallel(
            SmashStep(model.hyper, model.net, cfg.precision), find_unused_parameters=True,
            device_ids=[device.index] if device.type == "cuda" else None)

    if main:
        store.create_run(run_id, name=cfg.name, config=cfg.to_dict(), seed=cfg.seed,
                         code_version=code_version(), dataset=data.name,
                         num_classes=data.num_classes, image_shape=list(data.image_shape),
                         steps_total=total, status="running")
    mean, std = data.mean, data.std
    train_x = data.train_x.to(device)
    train_y = data.train_y.to(device)
    fmt = memory_format(device)

    probe: dict[str, Any] = {}

    def save(step: int) -> Path:
        path = ckpt.step_path(folder, step)
        if main:
            write_checkpoint(step, path)
        if ddp:
            distributed.barrier()  # no rank goes on before the checkpoint file exists
        return path

    def write_checkpoint(step: int, path: Path) -> None:
        if cfg.score.probe:
            from engine.scoring.probe import score_probe
            from engine.scoring.scorer import Scorer

            if "scorer" not in probe:
                probe["scorer"] = Scorer.for_model(model, data, device)
            score_probe(probe["scorer"], cfg, run_id, step, writer)
        writer.flush()  # metrics (and probe scores) up to this step land before the checkpoint
        ckpt.save_atomic({
            "format": CKPT_FORMAT, "kind": "hypernet", "run_id": run_id, "step": step,
            "config": cfg.to_dict(), "image_shape": list(data.image_shape),
            "num_classes": data.num_classes, "hyper": model.hyper.state_dict(),
            "net": model.net.state_dict(), "optim": opt.state_dict(), "window": window,
        }, path)
        store.add_checkpoint(run_id, step, str(path))
        store.update_run(run_id, step=step)

    model.hyper.train()
    model.net.train()
    bar = tqdm(total=total, initial=start, desc=f"train {run_id}", unit="step",
               disable=not (show_progress and main), dynamic_ncols=True)
    order, order_epoch = None, -1
    pending = torch.zeros(2, dtype=torch.float64, device=device)  # loss and error sums on the device
    last = None

    def settle() -> None:
        """Fold the device-side sums into the window (one read-back)."""
        loss_sum, err_sum = pending.tolist()
        window["loss"] += loss_sum
        window["err"] += err_sum
        pending.zero_()
    # Ranks other than 0 never open the store: they get no writer at all.
    with BackgroundWriter(store) if main else contextlib.nullcontext() as writer:
        step = start
        while step < total:
            stop = should_stop is not None and should_stop()
            if ddp and should_stop is not None:
                stop = distributed.any_rank(stop, device)
            if stop:
                settle()
                save(step)
                raise Cancelled(f"stopped at step {step}")
            # schedule
            lr = cosine_lr(t.lr, step, total)
            for group in opt.param_groups:
                group["lr"] = lr
            # sample an architecture and a batch (under DDP: the same on every rank)
            arch = sample_arch(cfg.space, step_rng(cfg.seed, step, 1), progress=step / total)
            epoch, i = divmod(step, spe)
            if epoch != order_epoch:
                order, order_epoch = batch_indices(n_train, t.batch_size, cfg.seed, epoch).to(device), epoch
            idx = order[i]
            x = augment(train_x[idx], cfg.data.crop_padding, cfg.data.flip, torch_gen(cfg.seed, step, 2))
            y = train_y[idx]
            if ddp:
                x, y = x[rows], y[rows]  # this rank's shard of the global batch
            x = normalize(x, mean, std).contiguous(memory_format=fmt)
            # step
            t0 = time.perf_counter()
            if ddp:
                metrics = ddp_step(step_module, model, opt, arch, x, y,
                                   torch_gen(cfg.seed, step, 3), device)
            else:
                metrics = hypernet_step(model, opt, arch, x, y, torch_gen(cfg.seed, step, 3), device)
            step += 1
            pending += metrics.double()  # read back once per log window, not per step
            last = metrics
            window["n"] += 1
            window["t"] += time.perf_counter() - t0
            bar.update(1)
            # log
            if step % t.log_every == 0 or step == total:
                settle()
                n = max(window["n"], 1)
                row = {"run_id": run_id, "step": step, "loss": window["loss"] / n,
                       "error": window["err"] / n, "lr": lr,
                       "steps_per_s": n / max(window["t"], 1e-9), "elapsed_s": window["t"]}
                if main:
                    writer.put("train_metrics", [row])
                bar.set_postfix(loss=f"{row['loss']:.3f}", err=f"{row['error']:.3f}")
                window = {"loss": 0.0, "err": 0.0, "n": 0, "t": 0.0}
                if on_progress is not None and main:
                    on_progress(step / total, f"step {step}/{total} loss {row['loss']:.3f}")
            # checkpoint
            if step % t.checkpoint_every == 0 or step == total:
                settle()
                last_path = save(step)
        bar.close()
    if start >= total:
        last_path = resume_path
    summary = {"run_id": run_id, "steps": total, "resumed_from": start, "checkpoint": str(last_path),
               "last_loss": float(last[0]) if last is not None else float("nan"), "device": str(device)}
    if not ddp:
        store.update_run(run_id, status="done", step=total)
        return summary
    if main:
        store.update_run(run_id, status="done", step=total)
    dump = os.environ.get(distributed.DUMP_ENV)
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
        torch.save({"hyper": {k: v.cpu() for k, v in model.hyper.state_dict().items()},
                    "net": {k: v.cpu() for k, v in model.net.state_dict().items()}},
                   Path(dump) / f"rank{distributed.rank()}.pt")
    distributed.barrier()  # the run is done in the store before any rank returns
    return {**summary, "world_size": distributed.world_size()}
