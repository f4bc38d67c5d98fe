import numpy as np
import torch

from engine.retrain import load_trained, retrain_arch
from engine.search_space import sample_arch
from store import Store, store_path


def test_retrain_reports_error_and_resumes(tmp_path, cfg):
    arch = sample_arch(cfg.space, np.random.default_rng(0))
    store = Store(store_path(tmp_path))
    one = retrain_arch(cfg, arch, tmp_path, store, run_id="r", epochs=2, show_progress=False)
    assert 0 <= one["test_error"] <= 1 and one["params"] > 0 and one["flops"] > 0
    rec = store.get_retrain(one["retrain_id"])
    assert rec["status"] == "done" and rec["test_error"] == one["test_error"]
    assert list(store.retrain_metrics(one["retrain_id"])["epoch"]) == [1, 2]
    # Running it again resumes from the last epoch: nothing is trained twice.
    two = retrain_arch(cfg, arch, tmp_path, store, run_id="r", epochs=2, show_progress=False)
    assert two["test_error"] == one["test_error"]
    assert len(store.retrain_metrics(one["retrain_id"])) == 2
    model, state = load_trained(one["checkpoint"])
    out = model(torch.zeros(2, *state["image_shape"]))
    assert out.shape == (2, state["num_classes"])
