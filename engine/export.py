"""Export an Arch as JSON, and its trained model as a state_dict, TorchScript or ONNX."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from engine.retrain import load_trained
from engine.search_space import Arch

FORMATS = ("json", "state_dict", "torchscript", "onnx")


class ExportError(ValueError):
    """The export cannot be made (no trained model, an op ONNX lacks, a bad format)."""


def export_arch(arch: Arch, fmt: str, out: Path, model_path: Path | None = None) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        out.write_text(json.dumps(arch.to_dict(), indent=2, sort_keys=True) + "\n")
        return out
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if model_path is None:
        raise ExportError(f"arch {arch.id} has no trained model yet; run `smash retrain --arch {arch.id}` first")
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
            raise ExportError(f"ONNX export of arch {arch.id} failed: {type(exc).__name__}: {exc}") from exc
    return out
