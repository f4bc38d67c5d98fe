"""The model card written beside every export: what the file is, how it was made, how good it is.

A model file that leaves the tool loses its context; the card keeps it in plain JSON:
the arch, its size, its SMASH score (mean, spread, draws), the validation and test error
of the final training the weights come from, that training's config, and the versions
of this project and of torch.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import torch

from cli import archref as lookup
from cli.tables import plain
from core.arch import Arch
from engine.runtime import checkpoint as ckpt
from engine.runtime.workdir import code_version
from store import Store

CARD_FORMAT = "smash-model-card/1"
FIELDS = ("card_format", "model_file", "model_format", "arch_id", "arch", "run_id", "dataset",
          "image_shape", "num_classes", "params", "flops", "depth", "n_layers", "smash_score",
          "val_error", "test_error", "retrain", "training_config", "versions", "created_at")


def card_path(model_file: Path) -> Path:
    """`model.onnx` -> `model.onnx.card.json`: one card per file, whatever else shares the folder."""
    return model_file.with_name(model_file.name + ".card.json")


def latest_retrain(store: Store, run_id: str, arch_id: str) -> dict | None:
    """The arch's most recently finished final training in the run (the one exports use)."""
    done = store.retrains(run_id)
    if done.empty:
        return None
    done = done[(done["arch_id"] == arch_id) & (done["status"] == "done")]
    return None if done.empty else plain(done.sort_values("finished_at").iloc[-1].to_dict())


def training_config(store: Store, run_id: str, retrain: dict | None) -> dict:
    """The config the weights were trained with (saved in the model file), else the run's."""
    path = Path(retrain["checkpoint"]) if retrain and retrain.get("checkpoint") else None
    if path is not None and path.is_file():
        return ckpt.load(path).get("config") or store.get_run(run_id)["config"]
    return store.get_run(run_id)["config"]


def build_card(store: Store, run_id: str, arch: Arch, model_file: Path, fmt: str,
               retrain: dict | None) -> dict:
    known = store.arch(run_id, arch.id) or {}
    rec = {**known, "model": arch}
    run = store.get_run(run_id)
    card = {
        "card_format": CARD_FORMAT, "model_file": model_file.name, "model_format": fmt,
        "arch_id": arch.id, "arch": arch.to_dict(), "run_id": run_id, "dataset": run["dataset"],
        "image_shape": run["image_shape"], "num_classes": run["num_classes"],
        **lookup.sizes(store, run_id, rec),
        "smash_score": lookup.latest_score(known),
        "val_error": (retrain or {}).get("val_error"), "test_error": (retrain or {}).get("test_error"),
        "retrain": None if retrain is None else {k: retrain.get(k) for k in
                                                 ("retrain_id", "epochs", "seed", "finished_at")},
        "training_config": training_config(store, run_id, retrain),
        "versions": {"smash_explorer": code_version(), "torch": torch.__version__},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return plain(card)


def write_card(store: Store, run_id: str, arch: Arch, model_file: Path, fmt: str,
               retrain: dict | None) -> Path:
    path = card_path(Path(model_file))
    card = build_card(store, run_id, arch, Path(model_file), fmt, retrain)
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path
