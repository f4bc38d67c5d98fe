import numpy as np
import torch

from core.jobs import RetrainJob
from core.space import sample_arch
from engine.model import load_trained
from engine.train.final import retrain_arch
from store import Store, store_path


def test_retrain_reports_error_and_resumes(tmp_path, cfg):
    arch = sample_arch(cfg.space, np.random.default_rng(0))
    store = Store(store_path(tmp_path))
    one = retrain_arch(cfg, arch, tmp_path, store, RetrainJob(epochs=2), run_id='r')
    assert 0 <= one["test_error"] <= 1 and one["params"] > 0 and one["flops"] > 0
    rec = store.get_retrain(one["retrain_id"])
    assert rec["status"] == "done" and rec["test_error"] == one["test_error"]
    assert 0 <= one["val_error"] <= 1 and rec["val_error"] == one["val_error"]
    metrics = store.retrain_metrics(one["retrain_id"])
    assert list(metrics["epoch"]) == [1, 2] and metrics["val_error"].between(0, 1).all()
    # Running it again resumes from the last epoch: nothing is trained twice.
    two = retrain_arch(cfg, arch, tmp_path, store, RetrainJob(epochs=2), run_id='r')
    assert (two["val_error"], two["test_error"]) == (one["val_error"], one["test_error"])
    assert len(store.retrain_metrics(one["retrain_id"])) == 2
    model, state = load_trained(one["checkpoint"])
    out = model(torch.zeros(2, *state["image_shape"]))
    assert out.shape == (2, state["num_classes"])


def test_validation_error_is_measured_on_the_held_out_split(tmp_path, cfg, monkeypatch):
    """The validation figure comes from data.val_x (never trained on), the test figure from
    data.test_x; the two are told apart by the images each evaluation sees."""
    from engine.train import final as retrain_module

    seen = []
    real = retrain_module.evaluate

    def spy(model, x, y, data, device, **kw):
        seen.append("val" if x is data.val_x else "test" if x is data.test_x else "other")
        return real(model, x, y, data, device, **kw)

    monkeypatch.setattr(retrain_module, "evaluate", spy)
    arch = sample_arch(cfg.space, np.random.default_rng(1))
    retrain_arch(cfg, arch, tmp_path, Store(store_path(tmp_path)), RetrainJob(epochs=1), run_id='r')
    assert seen == ["val", "test"]


def test_a_stopped_retrain_resumes_after_its_last_epoch_and_ends_as_an_unbroken_one(tmp_path, cfg):
    """Stopped after its first epoch, a retrain run again starts at epoch 2 (not 0), leaves
    epoch 1's row exactly as it was, and ends with the very numbers of a retrain never
    stopped."""
    import pytest

    from core.control import Control
    from core.errors import Cancelled

    arch = sample_arch(cfg.space, np.random.default_rng(2))
    (tmp_path / "whole").mkdir()
    (tmp_path / "cut").mkdir()
    whole = retrain_arch(cfg, arch, tmp_path / "whole", Store(store_path(tmp_path / "whole")),
                         RetrainJob(epochs=3), run_id="r")
    store = Store(store_path(tmp_path / "cut"))
    epochs_done = []
    stop_after_first = Control(on_progress=lambda f, m: epochs_done.append(f), should_stop=lambda: bool(epochs_done))
    with pytest.raises(Cancelled):
        retrain_arch(cfg, arch, tmp_path / "cut", store, RetrainJob(epochs=3), stop_after_first, run_id="r")
    first = store.retrain_metrics(whole["retrain_id"])
    assert first["epoch"].tolist() == [1]
    again = retrain_arch(cfg, arch, tmp_path / "cut", store, RetrainJob(epochs=3), run_id="r")
    assert again["resumed_from"] == 1 and whole["resumed_from"] == 0
    rows = store.retrain_metrics(whole["retrain_id"])
    assert rows["epoch"].tolist() == [1, 2, 3]
    assert rows.iloc[:1].equals(first), "epoch 1's row is the one written before the stop"
    unbroken = Store(store_path(tmp_path / "whole")).retrain_metrics(whole["retrain_id"])
    cols = ["train_loss", "train_error", "val_error", "test_error", "lr"]
    assert rows[cols].equals(unbroken[cols])
    assert (again["val_error"], again["test_error"]) == (whole["val_error"], whole["test_error"])
