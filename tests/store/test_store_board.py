"""The board table (each arch's sizes and latest score) against the rows it is kept from.

Whatever order archs, scores, re-scores at the same checkpoint and racing updates arrive
in, the board the writer keeps must equal the one computed afresh from archs and scores
the way the reads used to (latest checkpoint per arch, archs joined), and a store of
schema version 5 must migrate to it with nothing lost.
"""

from __future__ import annotations

import random

import duckdb
import pandas as pd
import pytest

import store
from store import Store, schema

RUN = "run-1"

# Each arch's score from its latest checkpoint, with its arch's sizes: the old reads' pick.
REFERENCE = """
SELECT coalesce(a.run_id, l.run_id) AS run_id, coalesce(a.arch_id, l.arch_id) AS arch_id,
       a.arch_id IS NOT NULL AS has_arch, a.params, a.flops, a.depth, a.n_layers,
       l.checkpoint_step, l.stage, l.score_mean, l.score_std, l.draws, l.val_images,
       l.score_lo, l.score_hi, coalesce(l.partial, false) AS partial, l.race_rounds
FROM archs a FULL JOIN (
    SELECT * FROM scores
    QUALIFY row_number() OVER (PARTITION BY run_id, arch_id ORDER BY checkpoint_step DESC) = 1
) l ON l.run_id = a.run_id AND l.arch_id = a.arch_id
ORDER BY run_id, arch_id
"""


def assert_board_is_reference(st: Store) -> None:
    kept = st._df("SELECT * FROM board ORDER BY run_id, arch_id")
    pd.testing.assert_frame_equal(kept, st._df(REFERENCE))


def random_batch(rng: random.Random) -> dict[str, list[dict]]:
    ids = [f"a{i:02d}" for i in range(30)]
    archs = [{"run_id": rng.choice([RUN, "other"]), "arch_id": rng.choice(ids),
              "params": rng.randint(1, 9) * 100, "flops": rng.randint(1, 9) * 1000,
              "depth": rng.randint(1, 5), "n_layers": rng.randint(3, 9)}
             for _ in range(rng.randint(0, 6))]
    scores = []
    for _ in range(rng.randint(0, 8)):
        draws = rng.choice([1, 2, 4])
        mean = rng.randint(0, 10) / 10
        scores.append({
            "run_id": rng.choice([RUN, RUN, "other"]), "arch_id": rng.choice(ids),
            "checkpoint_step": rng.choice([100, 200, 300]),
            "stage": rng.choice(["random", "perturb", "chain"]), "score_mean": mean,
            "score_std": 0.01, "draws": draws, "val_images": rng.choice([50, 500]),
            "score_lo": None if draws == 1 else mean - 0.05,
            "score_hi": None if draws == 1 else mean + 0.05,
            "partial": rng.random() < 0.2, "race_rounds": 0,
        })
    raced = [{"run_id": RUN, "arch_id": rng.choice(ids), "checkpoint_step": rng.choice([100, 200, 300]),
              "score_mean": rng.randint(0, 10) / 10, "score_std": 0.02, "draws": 8,
              "score_lo": 0.0, "score_hi": 1.0, "race_rounds": rng.randint(1, 3)}
             for _ in range(rng.randint(0, 3))]
    return {"archs": archs, "scores": scores, "raced": raced}


def test_board_follows_every_write_exactly(tmp_path):
    st = Store(store.store_path(tmp_path))
    rng = random.Random(7)
    for i in range(60):
        batch = random_batch(rng)
        st.add_rows({kind: rows for kind, rows in batch.items() if rows})
        if i == 30:  # a bulk import over archs that already have rows of their own
            st.bulk_add_scored(RUN, pd.DataFrame({
                "arch_id": [f"a{k:02d}" for k in range(0, 40, 3)], "checkpoint_step": 200,
                "stage": "probe", "score_mean": 0.55, "params": 700}))
        assert_board_is_reference(st)
    assert st.score_count(RUN) == st._scalar(
        "SELECT count(DISTINCT arch_id) FROM scores WHERE run_id = ?", [RUN])
    assert st.leaderboard_count(RUN) == st.score_count(RUN)
    whole = st.leaderboard(RUN, limit=1000)
    pages = pd.concat([st.leaderboard(RUN, limit=7, offset=o) for o in range(0, len(whole), 7)])
    pd.testing.assert_frame_equal(whole, pages.reset_index(drop=True))


def test_same_checkpoint_rescore_and_racing_keep_the_stored_row(tmp_path):
    st = Store(store.store_path(tmp_path))
    row = {"run_id": RUN, "arch_id": "a", "checkpoint_step": 200, "stage": "random",
           "score_mean": 0.4, "score_std": 0.01, "draws": 4, "val_images": 500}
    st.add_scores([row])
    st.add_scores([{**row, "score_mean": 0.1, "stage": "chain"}])  # same checkpoint: kept
    st.add_scores([{**row, "checkpoint_step": 100, "score_mean": 0.05}])  # earlier: not latest
    st.add_rows({"raced": [{"run_id": RUN, "arch_id": "a", "checkpoint_step": 100, "score_mean": 0.01,
                   "score_std": 0.0, "draws": 9, "score_lo": 0.0, "score_hi": 0.02,
                   "race_rounds": 1}]})  # races the earlier checkpoint: the board keeps 200
    top = st.leaderboard(RUN).iloc[0]
    assert (top["score_mean"], top["stage"], top["checkpoint_step"]) == (0.4, "random", 200)
    st.add_rows({"raced": [{"run_id": RUN, "arch_id": "a", "checkpoint_step": 200, "score_mean": 0.3,
                   "score_std": 0.0, "draws": 9, "score_lo": 0.25, "score_hi": 0.35,
                   "race_rounds": 2}]})
    top = st.leaderboard(RUN).iloc[0]
    assert (top["score_mean"], top["draws"], top["race_rounds"]) == (0.3, 9, 2)
    assert pd.isna(top["params"])
    st.add_archs([{"run_id": RUN, "arch_id": "a", "params": 5, "flops": 50}])
    st.add_archs([{"run_id": RUN, "arch_id": "a", "params": 6, "flops": 60}])  # first arch wins
    assert st.leaderboard(RUN).iloc[0]["params"] == 5
    assert_board_is_reference(st)


@pytest.mark.parametrize("version", [3, 5])
def test_old_store_migrates_to_the_board_with_nothing_lost(tmp_path, version):
    path = store.store_path(tmp_path)
    con = duckdb.connect(str(path))
    schema.create_schema(con, version=version)
    con.execute(
        "INSERT INTO archs (run_id, arch_id, params, flops) VALUES "
        "('r', 'a', 10, 100), ('r', 'b', 20, 200), ('r', 'unscored', 5, 50), ('q', 'a', 1, 1)"
    )
    con.execute(
        "INSERT INTO scores (run_id, arch_id, checkpoint_step, stage, score_mean, score_std, "
        "draws, val_images) VALUES ('r', 'a', 5, 'random', 0.3, 0.02, 3, 90), "
        "('r', 'a', 9, 'chain', 0.5, 0.02, 3, 90), ('r', 'b', 5, 'random', 0.2, 0.02, 3, 90), "
        "('r', 'sizeless', 9, 'random', 0.1, 0.02, 3, 90), ('q', 'a', 9, 'random', 0.9, 0.1, 2, 90)"
    )
    before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("archs", "scores")}
    con.close()
    st = Store(path)
    assert {t: st.row_counts()[t] for t in before} == before
    assert_board_is_reference(st)
    frame = st.leaderboard("r")
    assert frame[["arch_id", "score_mean", "checkpoint_step"]].values.tolist() == [
        ["sizeless", 0.1, 9], ["b", 0.2, 5], ["a", 0.5, 9]]
    assert frame["params"].tolist()[1:] == [20, 10]
    assert st.leaderboard_count("r") == 3 and st.score_count("r") == 3
    assert st.pareto("r", front_only=True)["arch_id"].tolist() == ["a", "b"]
    assert st._scalar("SELECT value FROM meta WHERE key = 'schema_version'") == str(
        schema.SCHEMA_VERSION)


@pytest.mark.parametrize("x", ["params", "flops"])
def test_pareto_over_wide_sizes_matches_brute_force(tmp_path, x):
    """Sizes far apart, so that the front's span pruning has many sizes per span."""
    st = Store(store.store_path(tmp_path))
    rng = random.Random(11)
    pts = {f"a{i:04d}": (rng.randint(1, 10**7) // rng.choice([1, 1000]) + 1, rng.randint(0, 40) / 40)
           for i in range(3000)}
    st.add_archs([{"run_id": RUN, "arch_id": a, x: size} for a, (size, _) in pts.items()])
    st.add_scores([{"run_id": RUN, "arch_id": a, "checkpoint_step": 1, "stage": "random",
                    "score_mean": s} for a, (_, s) in pts.items()])
    best = {}
    for size, s in pts.values():
        best[size] = min(s, best.get(size, 2.0))
    front = set()
    running = 2.0
    for size in sorted(best):
        if best[size] < running:
            front.add((size, best[size]))
            running = best[size]
    expect = sorted((size, s, a) for a, (size, s) in pts.items())
    frame = st.pareto(RUN, x=x)
    assert list(zip(frame[x], frame["score_mean"], frame["arch_id"], strict=True)) == expect
    assert frame["on_front"].tolist() == [(size, s) in front for size, s, _ in expect]
    only = st.pareto(RUN, x=x, front_only=True)
    assert only["arch_id"].tolist() == [a for size, s, a in expect if (size, s) in front]


def test_every_arch_is_judged_against_the_leader_with_the_runs_delta(tmp_path):
    """leader; equivalent (its interval, from the run's pooled per-draw spread, within delta
    of the leader's score); unresolved (overlapping, not inside the zone); separated (wholly
    above the leader's interval); partial. The same rule as core/racing.py's verdicts, and
    without a zone the older rule of each arch's own interval."""
    from core.config import Config
    from core.racing import Tally, verdicts
    from core.rankstats import mean_interval

    rows = {"lead": (1.00, 0.02), "near": (1.03, 0.04), "wide": (1.15, 0.15), "far": (1.50, 0.05),
            "cut": (0.50, 0.01)}

    def filled(name: str, delta: float | None) -> Store:
        st = Store(tmp_path / f"{name}.duckdb")
        cfg = Config().replace(score={"metric": "loss", "delta": delta})
        st.create_run(RUN, name="x", config=cfg.to_dict(), seed=0, code_version="t", dataset="d",
                      num_classes=10, image_shape=[1, 8, 8], steps_total=1, status="done")
        st.add_archs([{"run_id": RUN, "arch_id": a, "params": 10 * i + 5, "flops": 100 - i}
                      for i, a in enumerate(rows)])
        st.add_scores([{"run_id": RUN, "arch_id": a, "checkpoint_step": 1, "stage": "random", "score_mean": m,
                        "score_std": sd, "draws": 4, "val_images": 500 if a != "cut" else 50,
                        "score_lo": mean_interval(m, sd, 4)[0], "score_hi": mean_interval(m, sd, 4)[1],
                        "partial": a == "cut"} for a, (m, sd) in rows.items()])
        return st

    st = filled("zone", 0.2)
    board = st.leaderboard(RUN, limit=10).set_index("arch_id")["verdict"].to_dict()
    assert board == {"lead": "leader", "near": "equivalent", "wide": "unresolved", "far": "separated",
                     "cut": "partial"}
    assert st.verdict_counts(RUN) == {"leader": 1, "equivalent": 1, "unresolved": 1, "separated": 1, "partial": 1}
    assert st.equivalent_set(RUN)["arch_id"].tolist() == ["lead", "near"]
    tallies = {a: Tally(4, m, sd) for a, (m, sd) in rows.items() if a != "cut"}
    assert verdicts(tallies, 0.2) == {a: v for a, v in board.items() if a != "cut"}
    # The board shows the interval its verdicts judge by: the equivalent row's lies within
    # delta of the leader's score, as the sentence above the table says; a partial row keeps its own.
    shown = st.leaderboard(RUN, limit=10).set_index("arch_id")
    assert 1.00 - 0.2 <= shown.loc["near", "score_lo"] < 1.03 < shown.loc["near", "score_hi"] <= 1.00 + 0.2
    own = mean_interval(1.03, 0.04, 4)
    assert shown.loc["near", "score_hi"] - shown.loc["near", "score_lo"] != pytest.approx(own[1] - own[0])
    assert (shown.loc["cut", "score_lo"], shown.loc["cut", "score_hi"]) == pytest.approx(mean_interval(0.50, 0.01, 4))
    # Without a zone nothing is equivalent: the near arch is merely unresolved (tied).
    st = filled("none", 0)
    assert st.verdict_counts(RUN) == {"leader": 1, "unresolved": 2, "separated": 1, "partial": 1}
    assert verdicts(tallies, None) == {"lead": "leader", "near": "unresolved", "wide": "unresolved",
                                       "far": "separated"}
