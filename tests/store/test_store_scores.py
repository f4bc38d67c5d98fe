"""Contract tests for archs and scores: idempotent row batches, leaderboard, Pareto front."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

import store
from store import Store

RUN = "run-1"


@pytest.fixture
def st(tmp_path: Path) -> Store:
    return Store(store.store_path(tmp_path))


def arch_row(i: int, run_id: str = RUN, **kw) -> dict:
    row = {
        "run_id": run_id,
        "arch_id": f"a{i:02d}",
        "arch": {"layers": i},
        "params": 1000 * i,
        "flops": 10_000 * i,
        "depth": i % 5 + 1,
        "n_layers": i + 2,
    }
    return {**row, **kw}


def score_row(
    i: int, score: float, step: int = 100, stage: str = "random", run_id: str = RUN
) -> dict:
    return {
        "run_id": run_id,
        "arch_id": f"a{i:02d}",
        "checkpoint_step": step,
        "stage": stage,
        "score_mean": score,
        "score_std": 0.01,
        "draws": 4,
        "val_images": 500,
    }


BATCHES = {
    "archs": [arch_row(i) for i in range(5)],
    "scores": [score_row(i, 0.1 * i) for i in range(5)],
    "train_metrics": [{"run_id": RUN, "step": s, "loss": 1.0} for s in range(5)],
    "retrain_metrics": [
        {"retrain_id": "rt", "epoch": e, "test_error": 0.3, "lr": 0.1} for e in range(5)
    ],
    "checkpoints": [{"run_id": RUN, "step": s, "path": f"/c/{s}"} for s in range(5)],
}


@pytest.mark.parametrize("kind", sorted(BATCHES))
def test_rewriting_a_batch_is_idempotent(st, kind):
    batch = BATCHES[kind]
    st.add_rows({kind: batch})
    first = st.row_counts()
    st.add_rows({kind: batch})
    st.add_rows({kind: batch + batch})  # duplicates inside one batch too
    assert st.row_counts() == first
    assert first[kind] == len(batch)


def test_add_rows_is_one_transaction(st, monkeypatch):
    from store import rows as rows_module

    real_insert = rows_module.insert

    def failing_insert(con, kind, columns):
        if kind == "scores":
            raise RuntimeError("disk on fire")
        real_insert(con, kind, columns)

    monkeypatch.setattr("store.runs.insert", failing_insert)
    with pytest.raises(RuntimeError, match="disk on fire"):
        st.add_rows({"archs": BATCHES["archs"], "scores": BATCHES["scores"]})
    assert st.row_counts()["archs"] == 0


@pytest.mark.parametrize(
    ("kind", "row", "message"),
    [
        ("scores", {**score_row(1, 0.5), "stage": "lucky"}, "stage must be one of"),
        ("scores", {**score_row(1, 0.5), "score": 0.5}, "unknown fields"),
        ("train_metrics", {"run_id": RUN, "loss": 1.0}, "lacks its key"),
        ("archs", {**arch_row(1), "arch_json": "{}"}, "both"),
        ("archs", {"run_id": RUN, "arch_id": "a1", "arch_json": "not json"}, "Expecting value"),
        ("nonsense", {}, "row kind must be one of"),
    ],
)
def test_bad_rows_are_rejected_before_writing(st, kind, row, message):
    with pytest.raises(ValueError, match=message):
        st.add_rows({kind: [row]})
    assert sum(st.row_counts().values()) == 0


def test_numpy_scalars_are_accepted_in_rows(st):
    np = pytest.importorskip("numpy")
    st.add_scores([{**score_row(1, np.float32(0.25)), "draws": np.int64(4)}])
    st.add_archs([{**arch_row(1), "params": np.int64(123)}])
    row = st.leaderboard(RUN).iloc[0]
    assert (row["score_mean"], row["draws"], row["params"]) == (0.25, 4, 123)


# --- archs, scores, leaderboard, pareto -------------------------------------------


def test_arch_round_trip(st):
    st.add_archs([arch_row(1)])
    st.add_scores([score_row(1, 0.4, step=100), score_row(1, 0.3, step=200, stage="perturb")])
    st.upsert_retrain(
        {"retrain_id": "rt1", "run_id": RUN, "arch_id": "a01", "status": "done", "test_error": 0.08}
    )
    arch = st.arch(RUN, "a01")
    assert arch["arch"] == {"layers": 1}
    assert (arch["params"], arch["flops"], arch["depth"], arch["n_layers"]) == (1000, 10_000, 2, 3)
    assert [(s["checkpoint_step"], s["stage"], s["score_mean"]) for s in arch["scores"]] == [
        (100, "random", 0.4),
        (200, "perturb", 0.3),
    ]
    assert [r["retrain_id"] for r in arch["retrains"]] == ["rt1"]
    assert st.arch(RUN, "missing") is None
    assert st.arch("other-run", "a01") is None


def test_first_stage_to_score_an_arch_wins(st):
    st.add_scores([score_row(1, 0.4, stage="random")])
    st.add_scores([score_row(1, 0.1, stage="chain")])
    assert [(s["stage"], s["score_mean"]) for s in st.arch(RUN, "a01")["scores"]] == [
        ("random", 0.4)
    ]


def test_score_count(st):
    st.add_scores([score_row(i, 0.5, step=100) for i in range(3)] + [score_row(0, 0.4, step=200)])
    st.add_scores([score_row(9, 0.5, run_id="other")])
    assert set(st.run_scores(RUN, 200)) == {"a00"}
    assert st.score_count(RUN) == 3
    assert st.score_count("nobody") == 0


@pytest.fixture
def board(st) -> Store:
    """Ten archs; a03 rescored later (0.95 supersedes 0.03); retrains for a01 and a02."""
    st.add_archs([arch_row(i) for i in range(10)] + [arch_row(1, run_id="other")])
    st.add_scores(
        [score_row(i, 0.1 * i, stage="random" if i < 5 else "perturb") for i in range(10)]
    )
    st.add_scores([score_row(3, 0.95, step=200, stage="chain"), score_row(1, 0.0, run_id="other")])
    st.upsert_retrain(
        {"retrain_id": "old", "run_id": RUN, "arch_id": "a01", "status": "done", "val_error": 0.31,
         "test_error": 0.30}
    )
    st.upsert_retrain(
        {"retrain_id": "new", "run_id": RUN, "arch_id": "a01", "status": "done", "val_error": 0.21,
         "test_error": 0.20}
    )
    st.upsert_retrain(
        {
            "retrain_id": "crashed",
            "run_id": RUN,
            "arch_id": "a01",
            "status": "failed",
            "val_error": 0.9,
            "test_error": 0.9,
        }
    )
    st.upsert_retrain(
        {"retrain_id": "r2", "run_id": RUN, "arch_id": "a02", "status": "done", "val_error": 0.26,
         "test_error": 0.25}
    )
    # Retrained before validation error was recorded: its test error never becomes the truth.
    st.upsert_retrain(
        {"retrain_id": "r4", "run_id": RUN, "arch_id": "a04", "status": "done", "test_error": 0.01}
    )
    st.upsert_retrain({"retrain_id": "r5", "run_id": RUN, "arch_id": "a05", "status": "running"})
    return st


def test_leaderboard_uses_latest_checkpoint_and_finished_retrains(board):
    frame = board.leaderboard(RUN)
    assert list(frame.columns) == [
        "rank",
        "arch_id",
        "score_mean",
        "score_std",
        "score_lo",
        "score_hi",
        "draws",
        "val_images",
        "partial",
        "tied",
        "verdict",
        "race_rounds",
        "params",
        "flops",
        "depth",
        "n_layers",
        "stage",
        "checkpoint_step",
        "val_error",
        "test_error",
    ]
    assert frame["arch_id"].tolist() == [
        "a00",
        "a01",
        "a02",
        "a04",
        "a05",
        "a06",
        "a07",
        "a08",
        "a09",
        "a03",
    ]
    assert frame["rank"].tolist() == list(range(1, 11))
    a03 = frame.set_index("arch_id").loc["a03"]
    assert (a03["score_mean"], a03["checkpoint_step"], a03["stage"]) == (0.95, 200, "chain")
    truth = frame.set_index("arch_id")[["val_error", "test_error"]]
    assert truth.loc["a01"].tolist() == [0.21, 0.20] and truth.loc["a02"].tolist() == [0.26, 0.25]
    assert truth.drop(["a01", "a02"]).isna().all().all()


def test_leaderboard_sorts(board):
    assert board.leaderboard(RUN, sort="score_mean", descending=True)["arch_id"].tolist()[:2] == [
        "a03",
        "a09",
    ]
    assert board.leaderboard(RUN, sort="params", descending=True)["params"].tolist()[:3] == [
        9000,
        8000,
        7000,
    ]
    by_truth = board.leaderboard(RUN, sort="val_error")["arch_id"].tolist()
    assert by_truth[:2] == ["a01", "a02"]  # NULLs last
    assert board.leaderboard(RUN, sort="val_error", descending=True)["arch_id"].tolist()[:2] == [
        "a02",
        "a01",
    ]
    with pytest.raises(ValueError, match="sort must be one of"):
        board.leaderboard(RUN, sort="test_error")  # nothing selects on the test split
    depth = board.leaderboard(RUN, sort="depth")
    assert depth["depth"].is_monotonic_increasing
    assert depth.groupby("depth")["arch_id"].apply(lambda s: s.is_monotonic_increasing).all()


def test_leaderboard_filters_and_count(board):
    def ids(**filters):
        frame = board.leaderboard(RUN, **filters)
        assert board.leaderboard_count(RUN, **filters) == len(frame)
        return set(frame["arch_id"])

    assert ids(params=(2000, 4000)) == {"a02", "a03", "a04"}
    assert ids(params=(None, 1000)) == {"a00", "a01"}
    assert ids(flops=(85_000, None)) == {"a09"}
    assert ids(score=(0.35, 0.65)) == {"a04", "a05", "a06"}
    assert ids(stages=["perturb"]) == {"a05", "a06", "a07", "a08", "a09"}
    assert ids(stages=["chain", "random"]) == {"a00", "a01", "a02", "a03", "a04"}
    assert ids(stages=[]) == set()
    assert ids(params=(0, 5000), score=(None, 0.2), stages=["random"]) == {"a00", "a01", "a02"}
    assert board.leaderboard_count(RUN) == 10
    assert board.leaderboard_count("other") == 1


def test_leaderboard_pages(board):
    pages = [board.leaderboard(RUN, limit=3, offset=o) for o in range(0, 12, 3)]
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert pd.concat(pages)["arch_id"].tolist() == board.leaderboard(RUN)["arch_id"].tolist()
    assert pages[1]["rank"].tolist() == [4, 5, 6]


@pytest.mark.parametrize("sort", ["score", "params; DROP TABLE scores", "run_id", ""])
def test_leaderboard_rejects_unknown_sort(board, sort):
    with pytest.raises(
        ValueError, match="sort must be one of score_mean, score_std, params, flops"
    ):
        board.leaderboard(RUN, sort=sort)
    assert board.leaderboard_count(RUN) == 10


def test_leaderboard_rejects_unknown_stage(board):
    with pytest.raises(ValueError, match="stage must be one of"):
        board.leaderboard(RUN, stages=["best"])


def test_score_vs_truth(board):
    frame = board.score_vs_truth(RUN)
    assert frame[["arch_id", "score_mean", "val_error", "test_error", "params"]].values.tolist() == [
        ["a01", 0.1, 0.21, 0.20, 1000],
        ["a02", 0.2, 0.26, 0.25, 2000],
    ]


def partial_board(st) -> Store:
    """Four archs: a00 and a01 full scores with intervals, a02 partial (halving), a03 far."""
    st.add_archs([arch_row(i) for i in range(4)])
    rows = [
        {**score_row(0, 0.30), "score_lo": 0.28, "score_hi": 0.32},
        {**score_row(1, 0.31), "score_lo": 0.29, "score_hi": 0.33},
        {**score_row(2, 0.10), "score_lo": 0.0, "score_hi": 0.5, "val_images": 50, "partial": True},
        {**score_row(3, 0.50), "score_lo": 0.45, "score_hi": 0.55},
    ]
    st.add_scores(rows)
    for i in range(4):
        st.upsert_retrain({"retrain_id": f"r{i}", "run_id": RUN, "arch_id": f"a{i:02d}",
                           "status": "done", "val_error": 0.2 + i / 100, "test_error": 0.2})
    return st


def test_partial_scores_rank_last_and_stay_out_of_truth_and_pareto_by_default(st):
    partial_board(st)
    board = st.leaderboard(RUN).set_index("arch_id")
    assert board.index.tolist() == ["a00", "a01", "a03", "a02"]
    assert board["partial"].tolist() == [False, False, False, True]
    assert set(st.score_vs_truth(RUN)["arch_id"]) == {"a00", "a01", "a03"}
    assert set(st.score_vs_truth(RUN, include_partial=True)["arch_id"]) == {"a00", "a01", "a02", "a03"}
    assert "a02" not in set(st.pareto(RUN)["arch_id"])
    assert "a02" in set(st.pareto(RUN, include_partial=True)["arch_id"])


def test_ties_with_the_leader_are_marked(st):
    partial_board(st)
    tied = st.leaderboard(RUN).set_index("arch_id")["tied"]
    # a01's interval overlaps the leader a00's; a03's does not; a partial score is never tied.
    assert tied.to_dict() == {"a00": True, "a01": True, "a03": False, "a02": False}


def test_racing_updates_replace_a_score_and_land_after_it_in_one_batch(st):
    st.add_rows({
        "raced": [{"run_id": RUN, "arch_id": "a00", "checkpoint_step": 100, "score_mean": 0.2,
                   "score_std": 0.01, "draws": 9, "score_lo": 0.19, "score_hi": 0.21,
                   "race_rounds": 2}],
        "archs": [arch_row(0)],
        "scores": [score_row(0, 0.3)],
    })
    row = st.leaderboard(RUN).iloc[0]
    assert (row["score_mean"], row["draws"], row["race_rounds"], row["stage"]) == (0.2, 9, 2, "random")


def test_pareto_known_points(st):
    points = {  # arch: (params, score)
        "p1": (1, 0.9),
        "p2": (2, 0.5),
        "p2-worse": (2, 0.6),  # same size, worse
        "p3-tie": (3, 0.5),  # same score, bigger
        "p4": (4, 0.2),
        "p4-twin": (4, 0.2),  # equal points do not dominate each other
        "p5": (5, 0.3),
        "p6": (6, 0.1),
    }
    st.add_archs(
        [
            {"run_id": RUN, "arch_id": a, "params": p, "flops": 10 - p}
            for a, (p, _) in points.items()
        ]
        + [{"run_id": RUN, "arch_id": "unsized"}]
    )
    st.add_scores(
        [
            {"run_id": RUN, "arch_id": a, "checkpoint_step": 1, "stage": "random", "score_mean": s}
            for a, (_, s) in list(points.items()) + [("unsized", (0, 0.0))]
        ]
    )
    frame = st.pareto(RUN, x="params")
    assert list(frame.columns) == ["arch_id", "score_mean", "params", "on_front"]
    assert set(frame["arch_id"]) == set(points)
    assert set(frame.loc[frame["on_front"], "arch_id"]) == {"p1", "p2", "p4", "p4-twin", "p6"}
    assert set(st.pareto(RUN, x="params", front_only=True)["arch_id"]) == {
        "p1",
        "p2",
        "p4",
        "p4-twin",
        "p6",
    }
    # Against flops = 10 - params the best-scoring small-flops arch is p6 alone.
    assert set(st.pareto(RUN, x="flops", front_only=True)["arch_id"]) == {"p6"}
    with pytest.raises(ValueError, match="x must be one of params, flops"):
        st.pareto(RUN, x="depth")


def test_pareto_matches_brute_force(st):
    rng = random.Random(3)
    pts = {f"a{i}": (rng.randint(1, 40), rng.randint(0, 30) / 30) for i in range(300)}
    st.add_archs([{"run_id": RUN, "arch_id": a, "params": p} for a, (p, _) in pts.items()])
    st.add_scores(
        [
            {"run_id": RUN, "arch_id": a, "checkpoint_step": 1, "stage": "random", "score_mean": s}
            for a, (_, s) in pts.items()
        ]
    )

    def dominated(a):
        pa, sa = pts[a]
        return any(p <= pa and s <= sa and (p < pa or s < sa) for p, s in pts.values())

    frame = st.pareto(RUN)
    assert set(frame.loc[frame["on_front"], "arch_id"]) == {a for a in pts if not dominated(a)}


def test_bulk_add_scored_matches_row_api(st):
    frame = pd.DataFrame(
        {
            "arch_id": ["a00", "a01"],
            "checkpoint_step": [5, 5],
            "stage": ["random", "random"],
            "score_mean": [0.3, 0.2],
            "params": [10, 20],
        }
    )
    st.bulk_add_scored(RUN, frame)
    st.bulk_add_scored(RUN, frame)
    assert st.leaderboard(RUN)[["arch_id", "params"]].values.tolist() == [["a01", 20], ["a00", 10]]
    assert st.row_counts()["scores"] == 2
    with pytest.raises(ValueError, match="score_mean"):
        st.bulk_add_scored(RUN, frame.drop(columns="score_mean"))
