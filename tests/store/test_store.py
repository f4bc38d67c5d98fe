"""Contract tests for store.Store: files and schema, runs, checkpoints, metrics, retrains.

SQL appears in these tests only to build files the Store must refuse or migrate (a
foreign database, an old schema, a newer one), never to check results, which go
through the public API.
"""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import store
from store import SCHEMA_VERSION, Store, StoreError, schema

RUN = "run-1"


@pytest.fixture
def st(tmp_path: Path) -> Store:
    return Store(store.store_path(tmp_path))


def make_run(st: Store, run_id: str = RUN, **overrides) -> None:
    fields = dict(
        name="fm-small",
        config={"lr": 1e-3, "blocks": 3},
        seed=7,
        code_version="abc123",
        dataset="fashion-mnist",
        num_classes=10,
        image_shape=(1, 28, 28),
        steps_total=1000,
    )
    st.create_run(run_id, **{**fields, **overrides})


def snapshot(path: Path) -> tuple[bytes, float]:
    return path.read_bytes(), path.stat().st_mtime


# --- files and schema -------------------------------------------------------------


def test_store_path_names_the_file_in_the_workdir(tmp_path):
    assert store.store_path(tmp_path) == tmp_path / "smash.duckdb"


def test_new_store_is_empty_and_reopens(tmp_path):
    path = store.store_path(tmp_path)
    Store(path)
    assert all(n == 0 for n in Store(path).row_counts().values())


def test_migrates_v1_file_keeping_rows(tmp_path):
    path = store.store_path(tmp_path)
    con = duckdb.connect(str(path))
    schema.create_schema(con, version=1)
    con.execute(
        "INSERT INTO runs (run_id, name, status, config, image_shape, step) "
        "VALUES ('old', 'v1 run', 'done', '{\"a\": 1}', '[3, 32, 32]', 5)"
    )
    con.execute("INSERT INTO retrain_metrics VALUES ('r1', 1, 2.0, 0.5, 0.4, 12.5)")
    con.execute(
        "INSERT INTO jobs (job_id, kind, status, params) VALUES ('j1', 'retrain', 'done', '{}')"
    )
    con.close()

    st = Store(path)
    assert st.get_run("old")["config"] == {"a": 1}
    assert st.get_run("old")["image_shape"] == [3, 32, 32]
    metrics = st.retrain_metrics("r1")
    assert metrics.loc[0, ["train_loss", "train_error", "test_error", "elapsed_s"]].tolist() == [
        2.0,
        0.5,
        0.4,
        12.5,
    ]
    assert math.isnan(metrics.loc[0, "lr"])
    job = st.get_job("j1")
    assert job["status"] == "done" and job["log_path"] is None
    st.add_rows({"retrain_metrics": [{"retrain_id": "r1", "epoch": 2, "lr": 0.05}]})
    assert st.retrain_metrics("r1")["lr"].tolist()[1] == 0.05
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    con.close()


def test_studies_round_trip(st):
    st.upsert_study("s1", run_id=RUN, status="running", epochs=2, seed=0, arch_ids=["a", "b"])
    st.upsert_study("s1", run_id=RUN, status="done", epochs=2, seed=0, arch_ids=["a", "b"],
                    metrics=[{"metric": "spearman", "estimate": 0.5}])
    st.upsert_study("s1", run_id=RUN, status="done", epochs=2, seed=0, arch_ids=["a", "b"])
    got = st.get_study("s1")
    assert got["arch_ids"] == ["a", "b"] and got["status"] == "done"
    assert got["metrics"] == [{"metric": "spearman", "estimate": 0.5}]
    assert len(st.studies(RUN)) == 1


def test_v3_store_migrates_scores_and_retrains_with_nothing_lost(tmp_path):
    path = store.store_path(tmp_path)
    con = duckdb.connect(str(path))
    schema.create_schema(con, version=3)
    con.execute(
        "INSERT INTO scores (run_id, arch_id, checkpoint_step, stage, score_mean, score_std, draws, "
        "val_images) VALUES ('r', 'full', 5, 'random', 0.3, 0.02, 3, 90), "
        "('r', 'stopped', 5, 'random', 0.2, 0.05, 3, 10), ('r', 'one', 5, 'random', 0.4, 0.0, 1, 90)"
    )
    con.execute(
        "INSERT INTO retrains (retrain_id, run_id, arch_id, status, test_error) "
        "VALUES ('rt', 'r', 'full', 'done', 0.25)"
    )
    con.close()
    st = Store(path)
    rows = {r["arch_id"]: r for r in st._records("SELECT * FROM scores")}
    assert rows["stopped"]["partial"] and not rows["full"]["partial"]
    half = 4.303 * 0.02 / 3**0.5  # t(0.975, 2 df)
    assert rows["full"]["score_lo"] == pytest.approx(0.3 - half, abs=1e-6)
    assert rows["full"]["score_hi"] == pytest.approx(0.3 + half, abs=1e-6)
    assert rows["one"]["score_lo"] is None  # one draw has no interval
    assert [r["score_mean"] for r in rows.values()] == [0.3, 0.2, 0.4]
    rt = st.get_retrain("rt")
    assert rt["test_error"] == 0.25 and rt["val_error"] is None
    assert st.score_vs_truth("r").empty  # a test error alone is never the truth


def test_migrated_schema_equals_fresh_schema(tmp_path):
    fresh, old = tmp_path / "fresh.duckdb", tmp_path / "old.duckdb"
    Store(fresh)
    con = duckdb.connect(str(old))
    schema.create_schema(con, version=1)
    con.close()
    Store(old)

    def columns(path):
        con = duckdb.connect(str(path), read_only=True)
        cols = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "ORDER BY table_name, column_index"
        ).fetchall()
        con.close()
        return cols

    assert columns(fresh) == columns(old)


def test_newer_schema_is_refused_unchanged(tmp_path):
    path = store.store_path(tmp_path)
    Store(path)
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    before = snapshot(path)
    with pytest.raises(
        StoreError,
        match=rf"schema version {SCHEMA_VERSION + 1} is newer than this program supports "
        rf"\({SCHEMA_VERSION}\); upgrade smash-explorer",
    ):
        Store(path)
    assert snapshot(path) == before


def test_foreign_duckdb_is_refused_unchanged(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE orders AS SELECT range AS id FROM range(10)")
    con.close()
    before = snapshot(path)
    with pytest.raises(StoreError, match="not a SMASH Explorer store") as err:
        Store(path)
    assert str(path) in str(err.value)
    assert snapshot(path) == before


def test_foreign_meta_table_is_refused(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (k INTEGER)")
    con.close()
    before = snapshot(path)
    with pytest.raises(StoreError, match="not a SMASH Explorer store"):
        Store(path)
    assert snapshot(path) == before


@pytest.mark.parametrize("content", [b"", b"just some notes\n" * 20, "sqlite"])
def test_non_duckdb_file_is_refused_unchanged(tmp_path, content):
    path = tmp_path / "smash.duckdb"
    if content == "sqlite":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE t (a)")
        db.commit()
        db.close()
    else:
        path.write_bytes(content)
    before = snapshot(path)
    with pytest.raises(StoreError, match="not a SMASH Explorer store") as err:
        Store(path)
    assert str(path) in str(err.value)
    assert snapshot(path) == before
    assert sorted(os.listdir(tmp_path)) == ["smash.duckdb"]


def test_empty_duckdb_file_is_initialised(tmp_path):
    path = tmp_path / "smash.duckdb"
    duckdb.connect(str(path)).close()
    make_run(Store(path))
    assert Store(path).latest_run_id() == RUN


def test_missing_directory_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is not a directory"):
        Store(tmp_path / "file" / "smash.duckdb")


def test_unwritable_store_is_refused_unchanged(tmp_path, monkeypatch):
    path = store.store_path(tmp_path)
    Store(path)
    before = snapshot(path)
    # Root ignores permission bits, so simulate what a read-only mount reports.
    monkeypatch.setattr(schema.os, "access", lambda p, mode: mode != os.W_OK)
    with pytest.raises(StoreError, match="read-only"):
        Store(path)
    assert snapshot(path) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="not applicable here: root ignores permissions")
def test_read_only_directory_is_refused(tmp_path):
    path = store.store_path(tmp_path)
    Store(path)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="read-only"):
            Store(path)
    finally:
        tmp_path.chmod(0o755)


def test_store_imports_no_torch_streamlit_or_engine():
    code = (
        "import sys, store; bad = [m for m in ('torch', 'streamlit', 'engine') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# --- runs, checkpoints, metrics ---------------------------------------------------


def test_run_round_trip_and_resume(st):
    make_run(st)
    run = st.get_run(RUN)
    assert run["config"] == {"lr": 1e-3, "blocks": 3} and run["image_shape"] == [1, 28, 28]
    assert (run["status"], run["step"], run["seed"], run["num_classes"]) == ("running", 0, 7, 10)
    st.update_run(RUN, step=250)
    make_run(st, status="running", name="ignored on resume")
    again = st.get_run(RUN)
    assert again["created_at"] == run["created_at"] and again["name"] == "fm-small"
    assert again["step"] == 250 and again["updated_at"] >= run["updated_at"]
    st.update_run(RUN, status="done")
    assert st.get_run(RUN)["status"] == "done"
    assert st.get_run("nope") is None
    with pytest.raises(KeyError):
        st.update_run("nope", step=1)
    with pytest.raises(ValueError, match="status must be one of"):
        st.update_run(RUN, status="finished")


def test_runs_newest_first(st):
    for run_id in ("r-a", "r-b", "r-c"):
        make_run(st, run_id)
    assert st.runs()["run_id"].tolist() == ["r-c", "r-b", "r-a"]
    assert st.latest_run_id() == "r-c"


def test_checkpoints_and_train_metrics(st):
    make_run(st)
    st.add_checkpoint(RUN, 200, Path("/ckpt/200.pt"))
    st.add_checkpoint(RUN, 100, "/ckpt/100.pt")
    st.add_checkpoint(RUN, 100, "/ckpt/100-rewritten.pt")
    assert st.checkpoints(RUN)[["step", "path"]].values.tolist() == [
        [100, "/ckpt/100-rewritten.pt"],
        [200, "/ckpt/200.pt"],
    ]
    rows = [
        {
            "run_id": RUN,
            "step": s,
            "loss": 2.0 / (s + 1),
            "error": 0.5,
            "lr": 1e-3,
            "steps_per_s": 9.5,
            "elapsed_s": s / 9.5,
        }
        for s in (3, 1, 2)
    ]
    st.add_rows({"train_metrics": rows})
    frame = st.train_metrics(RUN)
    assert frame["step"].tolist() == [1, 2, 3]
    assert frame.loc[0, "loss"] == 1.0
    # A resumed run recomputes a step: the newer value wins, the count stays.
    st.add_rows({"train_metrics": [{"run_id": RUN, "step": 2, "loss": 0.1}]})
    assert st.train_metrics(RUN)["loss"].tolist()[1] == 0.1
    assert len(st.train_metrics(RUN)) == 3


# --- retrains ---------------------------------------------------------------------


def test_retrain_upserts_merge_fields(st):
    st.upsert_retrain(
        {
            "retrain_id": "rt",
            "run_id": RUN,
            "arch_id": "a01",
            "epochs": 30,
            "seed": 1,
            "status": "queued",
            "job_id": "j1",
        }
    )
    first = st.get_retrain("rt")
    st.upsert_retrain({"retrain_id": "rt", "status": "running"})
    st.upsert_retrain(
        {
            "retrain_id": "rt",
            "status": "done",
            "test_error": 0.07,
            "params": 123,
            "flops": 456,
            "checkpoint": "/w/rt.pt",
        }
    )
    done = st.get_retrain("rt")
    assert (done["run_id"], done["arch_id"], done["epochs"], done["job_id"]) == (
        RUN,
        "a01",
        30,
        "j1",
    )
    assert (done["status"], done["test_error"], done["params"], done["checkpoint"]) == (
        "done",
        0.07,
        123,
        "/w/rt.pt",
    )
    assert done["created_at"] == first["created_at"] and done["finished_at"] is not None
    assert first["finished_at"] is None
    assert st.get_retrain("none") is None
    with pytest.raises(ValueError, match="unknown fields"):
        st.upsert_retrain({"retrain_id": "rt", "accuracy": 0.9})


def test_retrains_listing_and_metrics(st):
    for rid, run in (("x1", RUN), ("x2", "other"), ("x3", RUN)):
        st.upsert_retrain({"retrain_id": rid, "run_id": run, "arch_id": "a"})
    assert st.retrains()["retrain_id"].tolist() == ["x3", "x2", "x1"]
    assert st.retrains(RUN)["retrain_id"].tolist() == ["x3", "x1"]
    st.add_rows({"retrain_metrics":
        [
            {
                "retrain_id": "x1",
                "epoch": e,
                "train_loss": 1 / (e + 1),
                "train_error": 0.5,
                "test_error": 0.4,
                "lr": 0.1 * (3 - e),
                "elapsed_s": 10.0 * e,
            }
            for e in (2, 0, 1)
        ]
    })
    frame = st.retrain_metrics("x1")
    assert frame["epoch"].tolist() == [0, 1, 2]
    assert frame["lr"].round(6).tolist() == [0.3, 0.2, 0.1]


def test_numpy_scalars_are_accepted_as_run_fields(st):
    np = pytest.importorskip("numpy")
    make_run(st, seed=np.int64(3), num_classes=np.int32(10), image_shape=np.array([1, 28, 28]))
    st.update_run(RUN, step=np.int64(7))
    run = st.get_run(RUN)
    assert (run["seed"], run["step"], run["image_shape"]) == (3, 7, [1, 28, 28])


FROZEN = Path(__file__).resolve().parent / "frozen"


def _columns(con) -> list[tuple]:
    return con.execute("SELECT table_name, column_name, data_type FROM duckdb_columns() "
                       "ORDER BY table_name, column_index").fetchall()


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_frozen_old_store_migrates_to_the_fresh_schema_with_every_row(tmp_path, version):
    """Files written by schema versions 1-5 and committed as they were (tests/store/frozen):
    each opens, migrates to a schema equal to a fresh store's, and keeps every row and value
    it held. An old migration edited in place would build a different schema from them."""
    import gzip

    path = tmp_path / "old.duckdb"
    with gzip.open(FROZEN / f"v{version}.duckdb.gz", "rb") as src:
        path.write_bytes(src.read())
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(version)
    before = {t: con.execute(f"SELECT * FROM {t}").df() for (t,) in
              con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name != 'meta'").fetchall()}
    con.close()
    st = Store(path)
    Store(tmp_path / "fresh.duckdb")
    old = duckdb.connect(str(path), read_only=True)
    fresh = duckdb.connect(str(tmp_path / "fresh.duckdb"), read_only=True)
    try:
        assert _columns(old) == _columns(fresh)
        for table, rows in before.items():
            after = old.execute(f"SELECT {', '.join(rows.columns)} FROM {table}").df()
            pd.testing.assert_frame_equal(after, rows, check_dtype=False, obj=table)
    finally:
        old.close()
        fresh.close()
    run = st.get_run("run_id-x")
    assert run is not None and run["config"] == {"name": "frozen"}
    assert st.leaderboard("run_id-x", limit=5)["arch_id"].tolist() == ["arch_id-x"]
