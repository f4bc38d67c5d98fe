"""Final training: one Arch as an ordinary network with freely learned weights.

SGD with Nesterov momentum, a cosine schedule per step, random crop and flip; after
every epoch the validation error (the held-out split, never trained on: what selection
uses) and the test error (the final figure, never selected on); params and FLOPs. A
checkpoint after every epoch lets a killed retrain resume where it stopped.

Laid out like torchvision's reference train.py: load_retrain_data, train_one_epoch,
evaluate, and retrain_arch, the main function whose epoch loop calls them. The network
and its optimizer come from engine.model.
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from core.arch import Arch
from core.config import Config, ConfigError
from core.control import QUIET, Control
from core.ids import retrain_id_for
from core.jobs import RetrainJob
from core.size import count_flops, count_params
from engine.data.batches import (
    augment,
    batch_indices,
    check_batches,
    eval_batches,
    normalize,
    steps_per_epoch,
)
from engine.data.splits import DataSplits, load_data
from engine.model import archnet_state, build_archnet, make_archnet_optimizer
from engine.nets.archnet import ArchNet
from engine.runtime import allocator
from engine.runtime import checkpoint as ckpt
from engine.runtime.device import autocast, memory_format, pick_device, resolve_precision
from engine.runtime.rng import torch_gen
from engine.runtime.workdir import retrain_dir
from engine.train.ending import ended_as_failed
from engine.train.schedule import cosine_lr
from engine.train.tuning import tune_retrain_threads
from store import BackgroundWriter, Store


def train_one_epoch(model: ArchNet, opt: torch.optim.Optimizer, data: DataSplits, cfg: Config,
                    epoch: int, seed: int, step0: int, total: int, device: torch.device,
                    control: Control = QUIET) -> tuple[float, float, int]:
    """One pass (or [retrain].max_steps_per_epoch steps) over the training split; returns
    (loss, error, steps)."""
    r = cfg.retrain
    model.train()
    order = batch_indices(len(data.train_y), r.batch_size, seed, epoch)
    if r.max_steps_per_epoch:
        order = order[:r.max_steps_per_epoch]
    fmt = memory_format(device)
    loss_sum = err_sum = 0.0
    for i, idx in enumerate(order):
        control.check(f"retrain stopped in epoch {epoch + 1}; it resumes from epoch {epoch}")
        step = step0 + i
        lr = cosine_lr(r.lr, step, total)
        for group in opt.param_groups:
            group["lr"] = lr
        x = augment(data.train_x[idx], cfg.data.crop_padding, cfg.data.flip, torch_gen(seed, step, 20))
        x = normalize(x.to(device), data.mean, data.std).contiguous(memory_format=fmt)
        y = data.train_y[idx].to(device)
        with autocast(device, cfg.precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += float(loss.detach())
        err_sum += float((logits.argmax(1) != y).float().mean())
    n = max(len(order), 1)
    return loss_sum / n, err_sum / n, len(order)


@torch.no_grad()
def evaluate(model: ArchNet, x: torch.Tensor, y: torch.Tensor, data: DataSplits,
             device: torch.device, batch_size: int = 500, precision: str = "auto") -> float:
    """Classification error on (x, y), in the precision the model trains in."""
    model.eval()
    wrong = 0
    fmt = memory_format(device)
    for xb, yb in eval_batches(x, y, batch_size):
        xb = normalize(xb.to(device), data.mean, data.std).contiguous(memory_format=fmt)
        with autocast(device, precision):
            wrong += int((model(xb).argmax(1) != yb.to(device)).sum())
    return wrong / max(len(y), 1)


class StoreSink:
    """Where a retrain's records go: the store, through a background writer."""

    def __init__(self, store: Store):
        self.store = store
        self.writer = BackgroundWriter(store)

    def __enter__(self) -> StoreSink:
        self.writer.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.__exit__(*exc)

    def upsert_retrain(self, rec: dict) -> None:
        self.writer.flush()
        self.store.upsert_retrain(rec)

    def put(self, table: str, rows: list[dict]) -> None:
        self.writer.put(table, rows)

    def flush(self) -> None:
        self.writer.flush()


@dataclass(frozen=True)
class RetrainPlan:
    """What one retrain is, settled before anything trains: its config (with the job's
    step cap applied), epochs, seed and id."""

    cfg: Config
    epochs: int
    seed: int
    retrain_id: str


def plan_retrain(cfg: Config, arch: Arch, run_id: str, job: RetrainJob) -> RetrainPlan:
    """The job with the run's [retrain] settings filling what it leaves open; the retrain
    id follows from what is resolved."""
    if job.max_steps_per_epoch is not None:
        cfg = cfg.replace(retrain={"max_steps_per_epoch": int(job.max_steps_per_epoch)})
    r = cfg.retrain
    epochs = job.epochs or r.epochs
    if epochs < 1:
        raise ConfigError(f"retrain epochs = {epochs}; must be >= 1")
    seed = cfg.seed if job.seed is None else job.seed
    return RetrainPlan(cfg, epochs, seed,
                       retrain_id_for(run_id, arch.id, epochs, seed, r.max_steps_per_epoch))


def load_retrain_data(cfg: Config, data: DataSplits | None) -> tuple[DataSplits, int]:
    """The data splits (loaded unless given) and the steps of one epoch over them."""
    data = data or load_data(cfg.data, cfg.seed)
    r = cfg.retrain
    check_batches(len(data.train_y), r.batch_size, "[retrain].batch_size")
    spe = steps_per_epoch(len(data.train_y), r.batch_size)
    if r.max_steps_per_epoch:
        spe = min(spe, r.max_steps_per_epoch)
    return data, spe


def resume_retrain(last: Path, model: ArchNet, opt: torch.optim.Optimizer, data: DataSplits,
                   device: torch.device, precision: str = "auto") -> tuple[int, float, float]:
    """(epochs done, validation error, test error) of the last epoch checkpoint, its weights
    and optimizer state loaded; (0, nan, nan) when there is none."""
    if not last.is_file():
        return 0, float("nan"), float("nan")
    state = ckpt.load(last, map_location=device)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optim"])
    val_err = float(state["val_error"]) if "val_error" in state else evaluate(
        model, data.val_x, data.val_y, data, device, precision=precision)
    return int(state["epoch"]), val_err, float(state["test_error"])


def save_epoch(plan: RetrainPlan, arch: Arch, epoch: int, model: ArchNet,
               opt: torch.optim.Optimizer, sink: Any, folder: Path, row: dict[str, float]) -> None:
    """Record epoch `epoch` (0-based) and checkpoint it, so a killed retrain resumes after it."""
    sink.put("retrain_metrics", [{"retrain_id": plan.retrain_id, "epoch": epoch + 1, **row}])
    sink.flush()
    ckpt.save_atomic({"format": ckpt.FORMAT, "kind": "retrain", "epoch": epoch + 1,
                      "val_error": row["val_error"], "test_error": row["test_error"],
                      "model": model.state_dict(), "optim": opt.state_dict(),
                      "arch": arch.to_json()}, folder / "last.pt")


def _mark_retrain(sink: Any, retrain_id: str, status: str) -> None:
    sink.upsert_retrain({"retrain_id": retrain_id, "status": status})


def retrain_arch(cfg: Config, arch: Arch, workdir: Path, store: Store | None, job: RetrainJob | None = None,
                 control: Control = QUIET, *, run_id: str, job_id: str | None = None,
                 data: DataSplits | None = None, sink: Any = None) -> dict[str, Any]:
    """Train `arch` from scratch (or resume) as `job` asks (None fields: the run's
    [retrain] settings); record per-epoch metrics, validation and test error.

    Records go to `store`, or, when `sink` is given (a retrain on a Ray worker), to the
    sink, which sends them to the process that owns the store.
    """
    if sink is None and store is None:
        raise ValueError("retrain_arch needs a store or a sink")
    with StoreSink(store) if sink is None else contextlib.nullcontext(sink) as sink:
        plan = plan_retrain(cfg, arch, run_id, job or RetrainJob())
        cfg, epochs, rid = plan.cfg, plan.epochs, plan.retrain_id
        folder = retrain_dir(workdir, rid)
        device = pick_device(cfg.device)
        data, spe = load_retrain_data(cfg, data)
        tune_retrain_threads(cfg, workdir, arch, data.image_shape, data.num_classes, device)
        model = build_archnet(arch, data.image_shape, data.num_classes, plan.seed, device)
        opt = make_archnet_optimizer(model, cfg.retrain)
        start_epoch, val_err, test_err = resume_retrain(folder / "last.pt", model, opt, data, device,
                                                      cfg.precision)
        base = {"retrain_id": rid, "run_id": run_id, "arch_id": arch.id, "epochs": epochs,
                "seed": plan.seed, "params": count_params(arch, data.image_shape[0], data.num_classes),
                "flops": count_flops(arch, data.image_shape, data.num_classes), "job_id": job_id}
        sink.upsert_retrain({**base, "status": "running"})
        with ended_as_failed(functools.partial(_mark_retrain, sink, rid), f"retrain {rid}"):
            bar = tqdm(total=epochs, initial=start_epoch, desc=f"retrain {arch.id}", unit="epoch",
                       disable=not control.show_progress, dynamic_ncols=True)
            t_start = time.perf_counter()
            for epoch in range(start_epoch, epochs):
                control.check(f"retrain stopped after epoch {epoch}")
                t0 = time.perf_counter()
                loss, err, _ = train_one_epoch(model, opt, data, cfg, epoch, plan.seed, epoch * spe,
                                               spe * epochs, device, control)
                val_err = evaluate(model, data.val_x, data.val_y, data, device, precision=cfg.precision)
                test_err = evaluate(model, data.test_x, data.test_y, data, device, precision=cfg.precision)
                save_epoch(plan, arch, epoch, model, opt, sink, folder, {
                    "train_loss": loss, "train_error": err, "val_error": val_err,
                    "test_error": test_err, "lr": opt.param_groups[0]["lr"],
                    "elapsed_s": time.perf_counter() - t0})
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", val_err=f"{val_err:.4f}")
                control.progress((epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs} val error {val_err:.4f}")
            bar.close()
            weights = folder / "model.pt"
            ckpt.save_atomic(archnet_state(model, arch, data.image_shape, data.num_classes, cfg),
                             weights)
            sink.upsert_retrain({**base, "status": "done", "val_error": val_err,
                                 "test_error": test_err, "checkpoint": str(weights)})
        return {**base, "val_error": val_err, "test_error": test_err, "checkpoint": str(weights),
                "resumed_from": start_epoch,
                "seconds": round(time.perf_counter() - t_start, 2), "device": str(device),
                "precision": resolve_precision(device, cfg.precision), "allocator": allocator.loaded()}
