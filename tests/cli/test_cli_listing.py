"""`smash runs`, `top`, `show`, `jobs`, `cancel`: table, --json and --csv on a smoke workdir.

The JSON must carry the store's numbers exactly; the CSV must read back to the same rows.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from cli.listing import JOB_COLUMNS, RUN_COLUMNS
from cli.main import main
from core.arch import Arch
from store import Store, store_path
from tests.conftest import add_scored_run


def smash(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def run_ok(capsys, *argv: str) -> str:
    code, out, err = smash(capsys, *argv)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def w(smoke_workdir) -> str:
    return str(smoke_workdir)


@pytest.fixture(scope="module")
def store(w) -> Store:
    return Store(store_path(w))


def test_runs_table_json_csv(capsys, w, store):
    run = store.runs().iloc[0]
    best = store.leaderboard(run["run_id"], limit=1).iloc[0]
    table = run_ok(capsys, "runs", "--workdir", w)
    assert run["run_id"] in table and "best_score" in table.splitlines()[0]
    doc = json.loads(run_ok(capsys, "runs", "--workdir", w, "--json"))
    [row] = doc["runs"]
    assert row["run_id"] == run["run_id"] and row["step"] == run["step"] == 20
    assert row["best_score"] == best["score_mean"] and row["best_arch"] == best["arch_id"]
    assert row["scored"] == store.score_count(run["run_id"])
    csv = pd.read_csv(io.StringIO(run_ok(capsys, "runs", "--workdir", w, "--csv")))
    assert list(csv.columns) == RUN_COLUMNS and csv.loc[0, "best_score"] == best["score_mean"]


@pytest.mark.parametrize("extra, query", [
    ([], {}),
    (["--sort", "params", "--desc"], {"sort": "params", "descending": True}),
    (["--stage", "random", "--params", "1000:"], {"stages": ["random"], "params": (1000.0, None)}),
])
def test_top_json_equals_the_store(capsys, w, store, extra, query):
    run_id = store.latest_run_id()
    doc = json.loads(run_ok(capsys, "top", "--workdir", w, "--json", "--limit", "3", *extra))
    board = store.leaderboard(run_id, limit=3, **query)
    assert doc["total"] == store.leaderboard_count(run_id, **{k: v for k, v in query.items()
                                                            if k not in ("sort", "descending")})
    assert [r["arch_id"] for r in doc["rows"]] == board["arch_id"].tolist()
    for row, (_, expected) in zip(doc["rows"], board.iterrows(), strict=True):
        for col in ("rank", "score_mean", "score_std", "params", "flops", "draws", "checkpoint_step"):
            assert row[col] == expected[col], col
        for col in ("val_error", "test_error", "score_lo", "score_hi"):
            assert row[col] == (None if pd.isna(expected[col]) else expected[col]), col
        assert row["tied"] == expected["tied"] and row["partial"] == expected["partial"]
        assert row["verdict"] == expected["verdict"]
    assert doc["verdicts"] == store.verdict_counts(run_id) and doc["delta"] == store.score_delta(run_id)


def test_top_pages_like_the_dashboard(capsys, w, store):
    run_id = store.latest_run_id()
    doc = json.loads(run_ok(capsys, "top", "--workdir", w, "--json", "--limit", "2", "--page", "2"))
    assert doc["offset"] == 2 and [r["rank"] for r in doc["rows"]] == [3, 4]
    assert [r["arch_id"] for r in doc["rows"]] == store.leaderboard(run_id, limit=2, offset=2)["arch_id"].tolist()
    table = run_ok(capsys, "top", "--workdir", w, "--limit", "2", "--page", "2")
    assert "page 2 of" in table.splitlines()[0] and doc["rows"][0]["arch_id"] in table
    assert "equivalent" in table.splitlines()[1]  # the verdicts against the leader, in a sentence
    # The marks on the page are explained under the sentence, and only those on the page.
    marked = {r["verdict"] for r in doc["rows"]} - {"separated", None}
    assert ("mark: " in table) == bool(marked)
    first = run_ok(capsys, "top", "--workdir", w, "--limit", "2")
    assert "mark: leader = the best score" in first
    csv = pd.read_csv(io.StringIO(run_ok(capsys, "top", "--workdir", w, "--csv", "--limit", "2", "--page", "2")),
                      dtype={"arch_id": str})
    assert csv["arch_id"].tolist() == [r["arch_id"] for r in doc["rows"]]
    assert csv["score_mean"].tolist() == [r["score_mean"] for r in doc["rows"]]


def test_show_best_names_every_layer_and_carries_the_store_numbers(capsys, w, store):
    run_id = store.latest_run_id()
    best = store.leaderboard(run_id, limit=1).iloc[0]
    rec = store.arch(run_id, best["arch_id"])
    arch = Arch.from_dict(rec["arch"])
    doc = json.loads(run_ok(capsys, "show", "best", "--workdir", w, "--json"))
    assert doc["arch_id"] == arch.id and doc["params"] == rec["params"] and doc["flops"] == rec["flops"]
    assert doc["score"]["score_mean"] == rec["scores"][-1]["score_mean"]
    assert doc["score"]["score_std"] == rec["scores"][-1]["score_std"]
    assert doc["true_error"]["test_error"] == rec["retrains"][-1]["test_error"]
    assert doc["true_error"]["val_error"] == rec["retrains"][-1]["val_error"] is not None
    assert doc["score"]["score_lo"] == rec["scores"][-1]["score_lo"]
    assert len(doc["layers"]) == arch.n_layers and len(doc["blocks"]) == len(arch.blocks)
    table = run_ok(capsys, "show", arch.id, "--workdir", w)
    assert "SMASH score" in table and "95% interval" in table and "validation error" in table
    for layer in doc["layers"]:
        assert layer["op"] in table
    csv = pd.read_csv(io.StringIO(run_ok(capsys, "show", "best", "--workdir", w, "--csv")))
    assert len(csv) == arch.n_layers and {"block", "op", "reads", "writes"} <= set(csv.columns)


def test_show_reads_an_arch_json_file(capsys, w, store, tmp_path):
    run_id = store.latest_run_id()
    arch_id = store.leaderboard(run_id, limit=1).iloc[0]["arch_id"]
    path = tmp_path / "a.json"
    path.write_text(Arch.from_dict(store.arch(run_id, arch_id)["arch"]).to_json())
    doc = json.loads(run_ok(capsys, "show", str(path), "--workdir", w, "--json"))
    assert doc["arch_id"] == arch_id and doc["score"] is not None


def test_jobs_and_cancel(capsys, w, store):
    run_id = store.latest_run_id()
    job_id = store.enqueue_job("score", {"archs": 3, "tag": "listing-test"}, run_id=run_id)
    doc = json.loads(run_ok(capsys, "jobs", "--workdir", w, "--json", "--status", "queued"))
    [job] = [j for j in doc["jobs"] if j["job_id"] == job_id]
    assert job["params"] == {"archs": 3, "tag": "listing-test"} and job["status"] == "queued"
    assert job_id in run_ok(capsys, "jobs", "--workdir", w)
    csv = pd.read_csv(io.StringIO(run_ok(capsys, "jobs", "--workdir", w, "--csv")))
    assert list(csv.columns) == JOB_COLUMNS and job_id in csv["job_id"].tolist()
    cancel = json.loads(run_ok(capsys, "cancel", job_id, "--workdir", w, "--json"))
    assert cancel["status"] == "cancelled" == store.get_job(job_id)["status"]
    code, _, err = smash(capsys, "cancel", job_id, "--workdir", w)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "already finished" in err


@pytest.mark.parametrize("argv, needle", [
    (["top", "--params", "lots"], "--params"),
    (["top", "--score", "0.9:0.1"], "low end"),
    (["top", "--page", "999"], "past the last page"),
    (["show", "deadbeefdeadbeef"], "no architecture"),
    (["cancel", "no-such-job"], "no job"),
    (["jobs", "--limit", "0"], "--limit"),
    (["top", "--run", "nope"], "no run 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, w, argv, needle):
    code, out, err = smash(capsys, *argv, "--workdir", w)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err


def test_a_missing_store_is_not_created(capsys, tmp_path):
    code, _, err = smash(capsys, "runs", "--workdir", str(tmp_path / "none"))
    assert code == 2 and "no SMASH store" in err and not (tmp_path / "none").exists()


def test_show_counts_the_sizes_of_an_arch_the_run_never_scored(capsys, w, store, tmp_path):
    from core.config import load_config
    from core.space import sample_arch
    from tests.conftest import ROOT

    space = load_config(ROOT / "configs" / "smoke.toml").space
    arch = next(a for a in (sample_arch(space, np.random.default_rng(s)) for s in range(50))
                if store.arch(store.latest_run_id(), a.id) is None)
    path = tmp_path / "new.json"
    path.write_text(arch.to_json())
    doc = json.loads(run_ok(capsys, "show", str(path), "--workdir", w, "--json"))
    assert doc["arch_id"] == arch.id and doc["score"] is None and doc["true_error"] is None
    assert doc["params"] > 0 and doc["flops"] > 0 and doc["n_layers"] == arch.n_layers


def test_a_loss_run_prints_its_scores_in_nats_not_percent(capsys, tmp_path):
    """[score] metric = "loss": the table shows nats (0.9312), never 93.12%; JSON keeps the
    raw numbers; an error run beside it keeps its percentages."""
    st = Store(store_path(tmp_path))
    add_scored_run(st, "error-run", "error", (0.25, 0.375))
    best = add_scored_run(st, "loss-run", "loss", (0.9312, 1.0456, 1.25))[0]
    w = str(tmp_path)

    runs = run_ok(capsys, "runs", "--workdir", w)
    assert "0.9312" in runs and "93.12%" not in runs
    assert "25.00%" in runs  # the error run's best, as always
    doc = json.loads(run_ok(capsys, "runs", "--workdir", w, "--json"))
    assert {r["run_id"]: r["best_score"] for r in doc["runs"]} == {"error-run": 0.25, "loss-run": 0.9312}

    top = run_ok(capsys, "top", "--run", "loss-run", "--workdir", w)
    assert "validation loss" in top
    rows = [line for line in top.splitlines() if best in line]
    lead = st.leaderboard("loss-run", limit=1).iloc[0]  # the interval the verdicts judge by
    shown = f"[{lead['score_lo']:.3f}, {lead['score_hi']:.3f}]"
    assert rows and "0.9312" in rows[0] and "0.0123" in rows[0] and shown in rows[0], top
    assert "%" not in rows[0], rows[0]
    doc = json.loads(run_ok(capsys, "top", "--run", "loss-run", "--workdir", w, "--json"))
    assert [r["score_mean"] for r in doc["rows"]] == [0.9312, 1.0456, 1.25]
    csv = pd.read_csv(io.StringIO(run_ok(capsys, "top", "--run", "loss-run", "--workdir", w, "--csv")))
    assert csv.loc[0, "score_mean"] == 0.9312

    show = run_ok(capsys, "show", "best", "--run", "loss-run", "--workdir", w)
    assert "SMASH score (loss, nats) 0.9312 ± 0.0123, 95% interval [0.911, 0.951]" in show, show
    error_top = run_ok(capsys, "top", "--run", "error-run", "--workdir", w)
    lead = st.leaderboard("error-run", limit=1).iloc[0]
    assert "25.00%" in error_top and f"[{lead['score_lo']:.1%}, {lead['score_hi']:.1%}]" in error_top
    assert "validation loss" not in error_top


def test_top_recommends_what_to_train_as_the_leaderboard_does(capsys, w, store):
    from cli import api

    run_id = store.latest_run_id()
    doc = json.loads(run_ok(capsys, "top", "--workdir", w, "--recommend", "--json"))
    equivalent = store.equivalent_set(run_id)
    picks = doc["recommended"]
    assert picks[0]["arch_id"] == equivalent.iloc[0]["arch_id"] and picks[0]["reasons"][0] == "best SMASH score"
    assert {p["arch_id"] for p in picks} <= set(equivalent["arch_id"])
    assert len({p["arch_id"] for p in picks}) == len(picks), "each arch once, with all its reasons"
    assert doc["verdicts"] == store.verdict_counts(run_id)
    assert not doc["learned_ranker"]["offered"] and "at least 8" in doc["learned_ranker"]["reason"]
    assert api.open_workdir(w).recommend() == doc
    table = run_ok(capsys, "top", "--workdir", w, "--recommend")
    assert "recommended for final training" in table and picks[0]["arch_id"] in table
    code, out, err = smash(capsys, "top", "--workdir", w, "--sort", "predicted")
    assert code == 2 and "not offered" in err and "at least 8" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--help"], ["runs"], ["top", "--limit", "50"], ["show", "best"], ["jobs"],
                                  ["completion", "bash"], ["cancel", "no-such-job"]])
def test_the_shells_read_commands_never_load_torch(w, argv):
    """What a person types most answers without loading torch (or the engine): seen in the
    real process, not only in the import graph tests/test_layers.py reads."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys; from cli.main import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'engine.model' in sys.modules, file=sys.stderr)")
    extra = [] if argv == ["--help"] or argv[0] == "completion" else ["--workdir", w]
    proc = subprocess.run([sys.executable, "-c", code, *argv, *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == "False False", proc.stderr[-500:]
