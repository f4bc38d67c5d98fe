"""`smash export`: ONNX from the default install matches eager, and every export writes a model card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from cli.main import main
from cli.model_card import FIELDS, card_path
from engine.model import load_trained
from store import Store, store_path


def export(capsys, w: Path, fmt: str, out: Path) -> dict:
    code = main(["export", "--workdir", str(w), "--arch", "best", "--format", fmt, "--out", str(out),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def best(smoke_workdir) -> dict:
    store = Store(store_path(smoke_workdir))
    run_id = store.latest_run_id()
    arch_id = store.leaderboard(run_id, limit=1).iloc[0]["arch_id"]
    return {"store": store, "run_id": run_id, "rec": store.arch(run_id, arch_id)}


def test_onnx_outputs_equal_eager(capsys, smoke_workdir, best, tmp_path):
    out = export(capsys, smoke_workdir, "onnx", tmp_path / "m.onnx")
    model, state = load_trained(Path(best["rec"]["retrains"][-1]["checkpoint"]))
    x = torch.randn(3, *state["image_shape"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        eager = model(x).numpy()
    onnx.checker.check_model(out["out"])
    got = ReferenceEvaluator(onnx.load(out["out"])).run(None, {"image": x.numpy()})[0]
    assert got.shape == eager.shape
    np.testing.assert_allclose(got, eager, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt, name", [("onnx", "m.onnx"), ("state_dict", "m.pt"), ("json", "arch.json")])
def test_every_export_writes_a_model_card(capsys, smoke_workdir, best, tmp_path, fmt, name):
    out = export(capsys, smoke_workdir, fmt, tmp_path / name)
    assert out["card"] == str(card_path(tmp_path / name))
    card = json.loads(Path(out["card"]).read_text())
    assert set(FIELDS) <= set(card)
    rec, score = best["rec"], best["rec"]["scores"][-1]
    assert card["arch_id"] == rec["arch_id"] and card["arch"] == rec["arch"]
    assert card["model_file"] == name and card["model_format"] == fmt
    assert (card["params"], card["flops"]) == (rec["params"], rec["flops"])
    assert card["smash_score"]["score_mean"] == score["score_mean"]
    assert card["smash_score"]["score_std"] == score["score_std"]
    assert card["test_error"] == rec["retrains"][-1]["test_error"]
    assert card["val_error"] == rec["retrains"][-1]["val_error"] is not None
    assert card["smash_score"]["score_lo"] == score["score_lo"]
    assert card["training_config"]["retrain"]["batch_size"] == 32  # configs/smoke.toml
    assert card["versions"]["torch"] == torch.__version__ and card["versions"]["smash_explorer"]
