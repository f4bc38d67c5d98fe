"""`smash export` on the smoke config: TorchScript and ONNX compute what the eager model does.

A file of the right size proves little; these tests run the exported files on the same
images as the eager model, at batch sizes 1 and 3 (the batch axis is dynamic), and check
that an export replaces a file only when asked and leaves no temporary file behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cli.main import main
from core.arch import Arch
from core.config import load_config
from core.jobs import RetrainJob, ScoreJob
from engine.model import load_trained
from engine.search import score_run
from engine.train.final import retrain_arch
from engine.train.hypernet import train_hypernet
from store import Store, store_path
from tests.conftest import ROOT

FASHION = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """The smoke config trained briefly, scored, and its best arch retrained for a few steps."""
    w = tmp_path_factory.mktemp("export")
    # The smoke config's model and data; a few training steps are enough to compare outputs.
    cfg = load_config(ROOT / "configs" / "smoke.toml").replace(
        train={"steps": 4, "checkpoint_every": 4}, score={"probe": 0})
    store = Store(store_path(w))
    run_id = train_hypernet(cfg, w, store=store)["run_id"]
    score_run(w, store, run_id, ScoreJob(archs=3, perturb=0, chain=0))
    arch_id = str(store.leaderboard(run_id, limit=1).iloc[0]["arch_id"])

    arch = Arch.from_dict(store.arch(run_id, arch_id)["arch"])
    done = retrain_arch(cfg, arch, w, store, RetrainJob(epochs=1, max_steps_per_epoch=5), run_id=run_id)
    return {"w": w, "checkpoint": Path(done["checkpoint"])}


def _export(capsys, w: Path, fmt: str, out: Path, *extra: str) -> int:
    code = main(["export", "--workdir", str(w), "--arch", "best", "--format", fmt, "--out", str(out),
                 "--json", *extra])
    capsys.readouterr()
    return code


def _images(state: dict, n: int) -> torch.Tensor:
    return torch.randn(n, *state["image_shape"], generator=torch.Generator().manual_seed(n))


@pytest.mark.parametrize("batch", [1, 3])
def test_torchscript_equals_eager(capsys, trained, tmp_path, batch):
    out = tmp_path / "m.ts"
    assert _export(capsys, trained["w"], "torchscript", out) == 0
    model, state = load_trained(trained["checkpoint"])
    x = _images(state, batch)
    scripted = torch.jit.load(str(out))
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_equals_eager(capsys, trained, tmp_path, batch):
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    out = tmp_path / "m.onnx"
    assert _export(capsys, trained["w"], "onnx", out) == 0
    onnx.checker.check_model(str(out))
    model, state = load_trained(trained["checkpoint"])
    x = _images(state, batch)
    with torch.no_grad():
        eager = model(x).numpy()
    got = ReferenceEvaluator(onnx.load(str(out))).run(None, {"image": x.numpy()})[0]
    assert got.shape == eager.shape == (batch, eager.shape[1])
    np.testing.assert_allclose(got, eager, rtol=1e-4, atol=1e-5)


def test_export_replaces_only_with_force_and_leaves_no_temp_file(capsys, trained, tmp_path):
    out = tmp_path / "arch.json"
    out.write_text("keep me")
    assert _export(capsys, trained["w"], "json", out) == 2
    assert out.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["arch.json"]
    assert _export(capsys, trained["w"], "json", out, "--force") == 0
    assert json.loads(out.read_text())["blocks"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
