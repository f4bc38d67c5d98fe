"""Dashboard pages under Streamlit's AppTest, on a store filled by a real smoke run.

One session-scoped smoke run (the real `smash` CLI: train, score, retrain the best) feeds
every test; tests that write (queue jobs, cancel) work on a copy of its workdir. The app
takes its workdir from SMASH_WORKDIR here, because AppTest cannot pass argv.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from store import Store, store_path
from tests.conftest import ROOT, add_scored_run

TIMEOUT = 60


@pytest.fixture
def workdir(full_smoke_workdir: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the smoke workdir, set as the app's workdir."""
    copy = tmp_path / "w"
    shutil.copytree(full_smoke_workdir, copy)
    monkeypatch.setenv("SMASH_WORKDIR", str(copy))
    return copy


@pytest.fixture
def store(workdir: Path) -> Store:
    return Store(store_path(workdir))


@pytest.fixture
def run_id(store: Store) -> str:
    return store.latest_run_id()


def _app(page: str) -> None:
    # Runs as a script inside AppTest: the real navigation, with `page` as the landing page.
    import streamlit as st

    from app import nav

    st.navigation(nav.pages(default=page)).run()


def open_page(page: str, **query: str) -> AppTest:
    at = AppTest.from_function(_app, args=(page,), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def button(at: AppTest, label_start: str):
    matches = [b for b in at.button if b.label.startswith(label_start)]
    assert matches, f"no button {label_start!r} among {[b.label for b in at.button]}"
    return matches[0]


def test_runs_page_shows_the_run_and_queues_jobs(store: Store, run_id: str):
    at = open_page("runs")
    assert_clean(at)
    assert run_id in at.dataframe[0].value["run_id"].tolist()
    ckpts = store.checkpoints(run_id)
    assert not ckpts.empty
    shown = [df.value for df in at.dataframe if "path" in df.value.columns]
    assert shown and set(shown[0]["step"]) == set(ckpts["step"])
    assert any(m.label == "Status" for m in at.metric)
    # The smoke config re-scores a probe set at every checkpoint: its chart is drawn.
    probe = store.probe_scores(run_id)
    assert not probe.empty
    assert any(s.value == "Probe set" for s in at.subheader)
    # With true errors for the probe archs, the chart adds their correlation over training.
    for i, arch_id in enumerate(sorted(set(probe["arch_id"]))):
        store.upsert_retrain({"retrain_id": f"probe-{i}", "run_id": run_id, "arch_id": arch_id,
                              "epochs": 1, "seed": 0, "status": "done", "val_error": 0.1 + 0.01 * i,
                              "test_error": 0.1 + 0.01 * i})
    at = open_page("runs")
    assert_clean(at)
    assert any("of them retrained" in c.value for c in at.caption)

    at.number_input(key="score_archs").set_value(7)
    at.number_input(key="score_halving").set_value(20)
    button(at, "Queue scoring pass").click().run()
    assert_clean(at)
    at.selectbox(key="new_run_config").set_value(ROOT / "configs" / "smoke.toml")
    button(at, "Queue training job").click().run()
    assert_clean(at)
    jobs = store.jobs()
    score = jobs[jobs["kind"] == "score"]
    assert len(score) == 1 and json.loads(score.iloc[0]["params"]) == {"archs": 7, "halving_min": 20}
    assert score.iloc[0]["run_id"] == run_id
    train = jobs[jobs["kind"] == "train"]
    assert json.loads(train.iloc[0]["params"])["config"].endswith("smoke.toml")


def select_rows(at: AppTest, rows: list[int]) -> AppTest:
    """What ticking rows' boxes does: set the table's selection state and rerun."""
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return at.run()


def select_first_row(at: AppTest) -> AppTest:
    return select_rows(at, [0])


def test_leaderboard_lists_scored_archs_and_retrain_queues_once(store: Store, run_id: str):
    at = open_page("leaderboard")
    assert_clean(at)
    board = at.dataframe[0].value
    expected = store.leaderboard(run_id, limit=50)
    assert board["arch_id"].tolist() == expected["arch_id"].tolist()
    assert len(board) == store.leaderboard_count(run_id) or len(board) == 50

    # A double click: the second click comes from a page drawn before the first one landed.
    first, second = select_first_row(open_page("leaderboard")), select_first_row(at)
    for page in (first, second):
        page.number_input(key="lb-retrain-epochs").set_value(2).run()
        assert not button(page, "Queue final training").disabled
    button(first, "Queue final training").click().run()
    button(second, "Queue final training").click().run()
    for page in (first, second):
        assert_clean(page)
        assert button(page, "Already queued").disabled
    jobs = store.jobs(status=["queued"])
    jobs = jobs[jobs["kind"] == "retrain"]
    assert len(jobs) == 1
    assert jobs.iloc[0]["arch_id"] == expected.iloc[0]["arch_id"]
    assert json.loads(jobs.iloc[0]["params"]) == {"epochs": 2, "seed": 0}


def test_leaderboard_compare_opens_architecture_with_both(store: Store, run_id: str):
    top = store.leaderboard(run_id, limit=2)["arch_id"].tolist()
    at = select_rows(open_page("leaderboard"), [0, 1])
    button(at, "Compare two").click().run()
    assert_clean(at)
    assert at.title[0].value == "Architecture"
    assert (at.query_params["arch"], at.query_params["compare"]) == (top[0], top[1])
    assert len(at.get("plotly_chart")) >= 2


def test_leaderboard_filters_and_pages_in_the_store(store: Store, run_id: str):
    at = open_page("leaderboard")
    everything = store.leaderboard(run_id, limit=1000)
    cut = float(everything["score_mean"].median())
    at.number_input(key="lb-score-hi").set_value(cut).run()
    assert_clean(at)
    shown = at.dataframe[0].value
    assert len(shown) == store.leaderboard_count(run_id, score=(None, cut))
    assert (shown["score_mean"] <= cut).all()
    at.selectbox(key="lb-size").set_value(25)
    at.selectbox(key="lb-sort").set_value("params")
    at.toggle(key="lb-desc").set_value(True).run()
    assert_clean(at)
    assert at.dataframe[0].value["params"].is_monotonic_decreasing


def test_architecture_page_draws_and_compares(store: Store, run_id: str):
    top = store.leaderboard(run_id, limit=2)["arch_id"].tolist()
    at = open_page("architecture", arch=top[0])
    assert_clean(at)
    assert len(at.get("plotly_chart")) >= 1
    labels = [b.label for b in at.get("download_button")]
    assert "Download arch JSON" in labels
    assert {"SVG", "PNG", "PDF", "HTML", "DOT", "GRAPHML"} <= set(labels)  # what `smash graph` writes
    done = store.retrains(run_id)
    done = done[(done["arch_id"] == top[0]) & (done["status"] == "done")]
    assert not done.empty and Path(done.iloc[0]["checkpoint"]).is_file(), "the smoke run retrains the best"
    assert any(label.startswith("Download trained model") for label in labels)

    at.text_input(key="arch-typed").set_value(top[1]).run()  # open another arch by its id
    assert_clean(at)
    assert at.query_params["arch"] == top[1]
    assert at.selectbox(key=f"arch-pick-{top[1]}").value == top[1]

    at = open_page("architecture", arch=top[0], compare=top[1])
    assert_clean(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 2
    assert any(top[1] in str(df.value.columns.tolist()) for df in at.dataframe)


def test_architecture_page_reports_unknown_arch(workdir: Path):
    at = open_page("architecture", arch="0123456789abcdef")
    assert not at.exception
    assert any("0123456789abcdef" in w.value for w in at.warning)


def test_score_vs_truth_shows_retrained_archs_and_stats(store: Store, run_id: str):
    pairs = store.score_vs_truth(run_id)
    assert len(pairs) >= 1, "the smoke run retrains the best arch"
    at = open_page("score-vs-truth")
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 2  # scatter and Pareto view

    # Enough retrained archs for correlations: record more final trainings through the store.
    board = store.leaderboard(run_id, limit=6)
    for i, row in enumerate(board.itertuples()):
        store.upsert_retrain({"retrain_id": f"extra-{i}", "run_id": run_id, "arch_id": row.arch_id,
                              "epochs": 1, "seed": 0, "status": "done",
                              "val_error": float(row.score_mean) * 0.5 + 0.01 * i, "test_error": 0.5})
    at = open_page("score-vs-truth")
    assert_clean(at)
    table = next(df.value for df in at.dataframe if "metric" in df.value.columns)
    assert table["metric"].tolist()[:3] == ["Spearman rho", "Kendall tau", "Pearson r"]
    assert (table["n"] == len(store.score_vs_truth(run_id))).all()

    # Stored studies are listed with their figures: an old one (a list of rows) and one that
    # holds every predictor and the ceiling.
    old = [{"metric": "Spearman rho", "estimate": 0.4, "ci_low": 0.1, "ci_high": 0.7, "n": 6,
            "better": "higher"}]
    store.upsert_study("study-old", run_id=run_id, status="done", epochs=1, seed=0,
                       arch_ids=board["arch_id"].tolist(), metrics=old)
    table = lambda est: [{**old[0], "estimate": est}, {**old[0], "metric": "top-2 precision"}]  # noqa: E731
    new = {"truth": "val_error", "n": 6, "k": 2, "seeds": [0, 1],
           "predictors": {"smash": table(0.7), "params": table(0.2), "naswot": table(0.1)},
           "ceiling": {"spearman": 0.9, "spearman_ci": [0.8, 0.95], "seeds": [0, 1], "of_mean": 0.973},
           "rungs": [{"name": f"{e} epochs", "epochs": e, "ceiling": 0.9, "ceiling_ci": [0.8, 0.95],
                      "ceiling_of_mean": 0.97, "predictors": {"smash": {"spearman": 0.1 * e, "spearman_ci": [0, 0.5]},
                                                              "flops": {"spearman": 0.5, "spearman_ci": [0.2, 0.7]}}}
                     for e in (1, 2)]}
    store.upsert_study("study-new", run_id=run_id, status="done", epochs=1, seed=0,
                       arch_ids=board["arch_id"].tolist(), metrics=new)
    at = open_page("score-vs-truth")
    assert_clean(at)
    assert any(s.value == "Correlation studies" for s in at.subheader)
    shown = next(df.value for df in at.dataframe if "predictor" in df.value.columns)
    assert shown["predictor"].tolist() == ["smash", "params", "naswot"]
    ladders = [c for c in at.get("plotly_chart") if "budget of the truth" in c.proto.spec]
    assert len(ladders) == 1, "the study with a truth ladder draws it"
    assert any("ceiling" in c.value and "about 0.973" in c.value for c in at.caption)


def test_score_vs_truth_form_queues_a_correlate_job(store: Store, run_id: str):
    at = open_page("score-vs-truth")
    form_inputs = {n.label: n for n in at.number_input}
    form_inputs["Architectures (K)"].set_value(8)
    form_inputs["Seeds"].set_value(2)
    form_inputs["Score draws"].set_value(6)
    next(t for t in at.text_input if t.label == "Truth ladder (epochs)").set_value("2, 1")
    button(at, "Queue the study").click().run()
    assert_clean(at)
    jobs = store.jobs(limit=50)
    job = jobs[jobs["kind"] == "correlate"].iloc[0]
    params = json.loads(job["params"])
    assert params["k"] == 8 and params["seeds"] == 2 and "smash" in params["predictors"]
    assert params["score_draws"] == 6 and params["epochs"] == 2 and params["rungs"] == [1, 2]
    assert params["max_steps_per_epoch"] == 0, "whole passes unless asked"
    assert job["run_id"] == run_id
    assert any("study job" in p.text for p in at.get("progress")) or any(
        "Queued study job" in s.value for s in at.success)


def test_clicking_a_point_opens_its_arch(store: Store, run_id: str):
    arch_id = store.score_vs_truth(run_id).iloc[0]["arch_id"]
    at = open_page("score-vs-truth")
    # What a click on the scatter sends back: the point with its customdata.
    at.session_state["svt-scatter"] = {"selection": {"points": [{"customdata": [arch_id]}], "point_indices": [0],
                                                     "box": [], "lasso": []}}
    at.run()
    assert_clean(at)
    assert at.title[0].value == "Architecture"
    assert at.query_params["arch"] == arch_id


def test_runs_page_follows_a_live_run(store: Store, run_id: str):
    run = store.get_run(run_id)
    store.create_run("live-run", name="live", config=run["config"], seed=1, code_version="test",
                     dataset=run["dataset"], num_classes=run["num_classes"], image_shape=run["image_shape"],
                     steps_total=100, status="running")
    store.add_rows({"train_metrics": [{"run_id": "live-run", "step": s, "loss": 2.0 - s / 100, "error": 0.5,
                              "lr": 1e-3, "steps_per_s": 10.0, "elapsed_s": s / 10} for s in (10, 20)]})
    store.update_run("live-run", step=20)
    at = open_page("runs", run="live-run")
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["Step"] == "20 / 100"
    assert len(at.get("plotly_chart")) == 1


def test_jobs_page_queues_selection_once_and_cancels(store: Store, run_id: str):
    arch_id = store.leaderboard(run_id, limit=1).iloc[0]["arch_id"]
    at = AppTest.from_function(_app, args=("jobs",), default_timeout=TIMEOUT)
    at.session_state["selection"] = {"run_id": run_id, "arch_ids": [arch_id]}
    at.run()
    assert_clean(at)
    button(at, "Queue final training").click().run()
    assert_clean(at)
    assert button(at, "Already queued").disabled
    queued = store.jobs(status=["queued"])
    assert len(queued) == 1 and queued.iloc[0]["arch_id"] == arch_id
    job_id = queued.iloc[0]["job_id"]
    assert job_id in at.dataframe[0].value["job_id"].tolist()

    at.button(key=f"cancel-{job_id}").click().run()
    assert_clean(at)
    assert store.get_job(job_id)["status"] == "cancelled"
    assert f"cancel-{job_id}" not in [b.key for b in at.button], "finished jobs offer no cancel"


def test_jobs_page_shows_progress_log_tail_and_flags_running_cancels(store: Store, run_id: str,
                                                                      tmp_path: Path):
    job_id = store.enqueue_job("score", {"archs": 3}, run_id=run_id)
    assert store.claim_job("test-worker")["job_id"] == job_id
    log = tmp_path / "job.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    store.heartbeat(job_id, progress=0.4, message="scored 12 of 30", log_path=str(log))
    at = open_page("jobs")
    assert_clean(at)
    row = at.dataframe[0].value.set_index("job_id").loc[job_id]
    assert row["status"] == "running" and row["progress"] == pytest.approx(0.4)
    assert row["heartbeat_age_s"] >= 0
    tail = at.code[0].value
    assert tail.startswith("line 20\n") and tail.rstrip().endswith("line 49")  # the last 30 lines

    at.button(key=f"cancel-{job_id}").click().run()
    assert_clean(at)
    job = store.get_job(job_id)
    assert job["status"] == "running" and job["cancel_requested"], "the worker stops a running job"
    assert at.button(key=f"cancel-{job_id}").disabled


def test_a_loss_run_shows_its_scores_in_nats_not_percent(tmp_path: Path, monkeypatch):
    """A run whose config says [score] metric = "loss": its scores are nats, plain numbers
    on every page; an error run beside it keeps its percentages."""
    monkeypatch.setenv("SMASH_WORKDIR", str(tmp_path))
    store = Store(store_path(tmp_path))
    add_scored_run(store, "error-run", "error", (0.25, 0.375))
    best = add_scored_run(store, "loss-run", "loss", (0.9312, 1.0456, 1.25))[0]

    at = open_page("runs", run="loss-run")
    assert_clean(at)
    leader = next(m for m in at.metric if m.label == "Leader's SMASH score")
    # The interval shown is the one the board's verdicts judge by (the run's pooled spread),
    # in nats to three places, on the Runs page and the Leaderboard alike.
    top = store.leaderboard("loss-run", limit=1).iloc[0]
    shown = f"[{top['score_lo']:.3f}, {top['score_hi']:.3f}]"
    assert top["score_lo"] < 0.9312 < top["score_hi"] and shown != "[0.911, 0.951]"  # not the arch's own
    assert leader.value == "0.9312" and f"interval {shown}" in leader.proto.help

    at = open_page("leaderboard", run="loss-run")
    assert_clean(at)
    board = at.dataframe[0]
    assert board.value["arch_id"].iloc[0] == best and board.value["interval"].iloc[0] == shown
    columns = json.loads(board.proto.columns)
    assert columns["score_mean"]["type_config"]["format"] == "%.4f"
    assert columns["val_error"]["type_config"]["format"] == "percent"  # a real error stays a percentage

    at = open_page("architecture", run="loss-run", arch=best)
    assert_clean(at)
    score = next(m for m in at.metric if m.label == "SMASH score")
    assert score.value == "0.9312" and score.delta == "± 0.0123"

    at = open_page("runs", run="error-run")  # runs from before the setting: as they always were
    assert_clean(at)
    assert next(m for m in at.metric if m.label == "Leader's SMASH score").value == "25.00%"
    at = open_page("leaderboard", run="error-run")
    assert json.loads(at.dataframe[0].proto.columns)["score_mean"]["type_config"]["format"] == "percent"


@pytest.mark.parametrize("page", ["runs", "leaderboard", "architecture", "score-vs-truth", "jobs"])
def test_pages_without_a_store_explain_instead_of_failing(page: str, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SMASH_WORKDIR", str(tmp_path / "empty"))
    at = open_page(page)
    assert not at.exception
    assert at.info, "the page should say there is no store yet"
    assert not store_path(tmp_path / "empty").exists(), "reading must not create a store"


def test_store_errors_become_messages(tmp_path: Path, monkeypatch):
    bad = tmp_path / "bad"
    bad.mkdir()
    store_path(bad).write_text("not a database")
    monkeypatch.setenv("SMASH_WORKDIR", str(bad))
    at = open_page("leaderboard")
    assert not at.exception
    assert any("not a SMASH Explorer store" in e.value for e in at.error)


def test_leaderboard_decides_recommends_and_learns_from_retrains(store: Store, run_id: str):
    """The verdict sentence instead of a wall of ties; the recommendation with its reasons and
    one button; the ranker learned from retrains offered as a sort once it beats the SMASH
    score; the retrain-to-learn-more suggestion with its button."""
    at = open_page("leaderboard")
    assert_clean(at)
    said = [m.value for m in [*at.info, *at.success]]
    assert any("equivalent within delta" in t or "equivalent to the leader within delta" in t for t in said), said
    picks = store.equivalent_set(run_id)
    shown = " ".join(m.value for m in at.markdown)
    assert picks.iloc[0]["arch_id"] in shown and "best SMASH score" in shown
    assert any("No learned ranker offered" in c.value and "at least 8" in c.value for c in at.caption)
    button(at, "Train the recommended").click().run()
    assert_clean(at)
    queued = store.jobs(status=["queued"])
    assert picks.iloc[0]["arch_id"] in set(queued[queued["kind"] == "retrain"]["arch_id"])
    assert button(at, "Already queued").disabled

    # Retrains whose truth follows FLOPs, not the score: the learned ranker beats the score.
    board = store.board_features(run_id).sort_values("flops").reset_index(drop=True)
    for i, row in board.iloc[:12].iterrows():
        store.upsert_retrain({"retrain_id": f"learn-{i}", "run_id": run_id, "arch_id": row["arch_id"], "epochs": 1,
                              "seed": 0, "status": "done", "val_error": 0.5 - 0.02 * i, "test_error": 0.5})
    at = open_page("leaderboard")
    assert_clean(at)
    assert any("is offered" in c.value and "learned from" in c.value for c in at.caption)
    at.selectbox(key="lb-sort").set_value("predicted").run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert "predicted" in table.columns and table["predicted"].is_monotonic_increasing
    before = set(store.jobs(limit=500)["job_id"])
    button(at, "Retrain to learn more").click().run()
    assert_clean(at)
    new = store.jobs(limit=500)
    added = new[~new["job_id"].isin(before)]
    assert len(added) == 3 and not set(added["arch_id"]) & set(board.iloc[:12]["arch_id"])
    truth_page = open_page("score-vs-truth")
    assert_clean(truth_page)
    bars = [c for c in truth_page.get("plotly_chart") if "leave-one-out" in c.proto.spec]
    assert len(bars) == 1 and any("Offered on the Leaderboard" in c.value for c in truth_page.caption)
