"""Refined scores: a study arch's SMASH score topped up with fresh draws, returned, never stored."""

import numpy as np
import pytest
import torch

from core.arch import Arch
from core.jobs import ScoreJob
from engine.data.splits import load_data
from engine.model import find_checkpoint
from engine.scoring.refine import refine_scores
from engine.scoring.scorer import ScoreError, Scorer
from engine.search import score_run
from engine.train.hypernet import train_hypernet
from store import Store, store_path
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("refine")
    cfg = tiny_config(data={"val_size": 200}, score={"draws": 2, "val_images": 40})
    store = Store(store_path(workdir))
    run_id = train_hypernet(cfg, workdir, store=store)["run_id"]
    score_run(workdir, store, run_id, ScoreJob(archs=4, perturb=0, chain=0))
    board = store.leaderboard(run_id, limit=100)
    return workdir, store, run_id, board


def test_refined_score_is_the_mean_over_all_draws_from_the_first(scored):
    """2 stored draws topped up to 6 pool to exactly what 6 draws from draw 0 give."""
    workdir, store, run_id, board = scored
    ids = list(board["arch_id"])
    refined = refine_scores(workdir, store, run_id, ids, 6)
    assert set(refined) == set(ids) and all(t.n == 6 for t in refined.values())
    model = find_checkpoint(workdir, run_id).model()
    scorer = Scorer.for_model(model, load_data(model.cfg.data, model.cfg.seed), torch.device("cpu"))
    for arch_id in ids:
        errs = scorer.errors(Arch.from_dict(store.arch(run_id, arch_id)["arch"]), draws=6)
        assert refined[arch_id].mean == pytest.approx(np.mean(errs), abs=1e-9)
        assert refined[arch_id].std == pytest.approx(np.std(errs, ddof=1), abs=1e-9)


def test_refining_leaves_the_stored_scores_alone_and_is_repeatable(scored):
    workdir, store, run_id, board = scored
    ids = list(board["arch_id"])
    first = refine_scores(workdir, store, run_id, ids, 4)
    again = refine_scores(workdir, store, run_id, ids, 4)
    assert {a: t.mean for a, t in first.items()} == {a: t.mean for a, t in again.items()}
    after = store.leaderboard(run_id, limit=100)
    assert list(after["score_mean"]) == list(board["score_mean"]) and (after["draws"] == 2).all()


def test_archs_with_enough_draws_or_no_score_are_not_rescored(scored):
    workdir, store, run_id, board = scored
    ids = list(board["arch_id"])[:2]
    kept = refine_scores(workdir, store, run_id, [*ids, "0" * 16], 2)
    assert set(kept) == set(ids)
    assert [kept[a].mean for a in ids] == list(board.set_index("arch_id").loc[ids, "score_mean"])


def test_fewer_than_one_draw_is_refused(scored):
    workdir, store, run_id, board = scored
    with pytest.raises(ScoreError, match="at least 1 draw"):
        refine_scores(workdir, store, run_id, list(board["arch_id"]), 0)
