"""Export an Arch as JSON, and its trained model as a state_dict, TorchScript or ONNX."""

from __future__ import annotations

import json
import os
import uuid
import warnings
from pathlib import Path

import torch

from core.arch import Arch
from core.errors import BadRequest
from core.exports import FORMATS
from engine.model import load_trained
from store import DB_FILENAME


class ExportError(BadRequest):
    """The export cannot be made (no trained model, an op ONNX lacks, a bad format)."""


PROTECTED_DIRS = ("checkpoints", "retrains", "logs")
"""Workdir folders an export never writes into: they hold what resumes and what was trained."""


def check_out_path(out: Path, workdir: Path, *, force: bool = False) -> Path:
    """`out`, unless writing there could destroy the store, a checkpoint or another file."""
    target = Path(out).expanduser().resolve()
    wd = Path(workdir).expanduser().resolve()
    if target.is_relative_to(wd):
        parts = target.relative_to(wd).parts
        if parts[0].startswith(DB_FILENAME) or parts[0] == "engine.lock" or any(
                p in PROTECTED_DIRS for p in parts[:-1]):
            raise ExportError(f"--out {out} is inside the store or a checkpoint folder of {workdir}; "
                              "choose a path elsewhere")
    if target.is_dir():
        raise ExportError(f"--out {out} is a directory; name a file")
    if target.exists() and not force:
        raise ExportError(f"--out {out} exists; pass --force to replace it")
    return target


def export_arch(arch: Arch, fmt: str, out: Path, model_path: Path | None = None) -> Path:
    """Write `arch` (json) or its trained model to `out` through a temporary file beside it."""
    out = Path(out)
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt != "json" and model_path is None:
        raise ExportError(f"arch {arch.id} has no trained model yet; run `smash retrain --arch {arch.id}` first")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _write(arch, fmt, tmp, model_path)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _write(arch: Arch, fmt: str, out: Path, model_path: Path | None) -> None:
    if fmt == "json":
        out.write_text(json.dumps(arch.to_dict(), indent=2, sort_keys=True) + "\n")
        return
    model, state = load_trained(model_path)
    example = torch.zeros(1, *state["image_shape"])
    if fmt == "state_dict":
        torch.save(model.state_dict(), out)
    elif fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, example)
        traced.save(str(out))
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (example,), str(out), input_names=["image"],
                                  output_names=["logits"], dynamo=False,
                                  dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        except Exception as exc:
            raise ExportError(f"ONNX export of arch {arch.id} failed: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
