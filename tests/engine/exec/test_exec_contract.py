"""One suite over every scoring executor and every record sink: the promises of
engine/exec/contract.py, checked the same way for each implementation."""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from core.executor import ExecutorSpec
from core.space import sample_arch
from engine.data.splits import load_data
from engine.exec.contract import RetrainSink, RowSink, ScoringExecutor
from engine.exec.local import LocalScoring, QueueSink
from engine.exec.ray import RayScoring, apply_event
from engine.model import SmashModel, find_checkpoint
from engine.runtime import checkpoint as ckpt
from engine.scoring.scorer import Scorer
from engine.train.final import StoreSink
from engine.train.hypernet import train_hypernet
from store import BackgroundWriter, Store, store_path
from tests.conftest import tiny_config

CPU = torch.device("cpu")


# ---------------------------------------------------------------- scoring executors

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A trained tiny run: its newest checkpoint, and a Scorer on it to hold executors to."""
    cfg = tiny_config(score={"probe": 0})
    workdir = tmp_path_factory.mktemp("contract")
    run_id = train_hypernet(cfg, workdir, store=Store(store_path(workdir)))["run_id"]
    ck = find_checkpoint(workdir, run_id)
    path, model = ck.path, ck.model(CPU)
    return path, Scorer.for_model(model, load_data(cfg.data, cfg.seed), CPU), cfg


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    yield ExecutorSpec(kind="ray", local_cpus=2, cpus_per_task=1, actors=2)
    ray.shutdown()


def _local(checkpoint, request) -> ScoringExecutor:
    path, scorer, _ = checkpoint
    return LocalScoring(Scorer.for_model(SmashModel.from_checkpoint(ckpt.load(path), CPU), _data(scorer), CPU))


def _ray(checkpoint, request) -> ScoringExecutor:
    return RayScoring(request.getfixturevalue("local_ray"), checkpoint[0])


def _data(scorer: Scorer):
    return load_data(scorer.model.cfg.data, scorer.model.cfg.seed)


EXECUTORS: dict[str, Callable] = {"local": _local, "ray": _ray}


@pytest.fixture(params=sorted(EXECUTORS))
def executor(request, checkpoint, monkeypatch):
    # One thread everywhere, so every float is computed the same way here and in Ray's workers.
    monkeypatch.setenv("SMASH_THREADS", "1")
    ex = EXECUTORS[request.param](checkpoint, request)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def archs(checkpoint):
    rng = np.random.default_rng(7)
    return [sample_arch(checkpoint[2].space, rng) for _ in range(3)]


def test_score_is_the_scorers_score(executor, checkpoint, archs):
    scorer = checkpoint[1]
    for arch in archs[:2]:
        assert executor.score(arch) == scorer.score(arch)
    assert executor.score(archs[0], 10, 4) == scorer.score(archs[0], 10, 4)


def test_score_many_yields_every_entry_once_with_the_scorers_scores(executor, checkpoint, archs):
    scorer = checkpoint[1]
    asked = [archs[0], archs[1], archs[2], archs[0]]  # a repeat is scored again
    got = list(executor.score_many(asked, 20, 2))
    assert sorted(a.id for a, _, _ in got) == sorted(a.id for a in asked)
    for arch, mean, std in got:
        assert (mean, std) == scorer.score(arch, 20, 2)
    if not executor.parallel:
        assert [a.id for a, _, _ in got] == [a.id for a in asked]


def test_score_many_of_nothing_yields_nothing(executor):
    assert list(executor.score_many([])) == []


def test_parallel_is_declared_and_close_may_repeat(executor):
    assert isinstance(executor.parallel, bool)
    executor.close()
    executor.close()


# ---------------------------------------------------------------- record sinks

@dataclass
class Harness:
    """A sink under test, and `settle`: what the owner of the store does to commit what the
    sink handed on (nothing for sinks that write the store themselves)."""

    sink: RowSink
    store: Store
    settle: Callable[[], None]


def _writer(store: Store) -> tuple[RowSink, Callable[[], None], Callable[[], None]]:
    w = BackgroundWriter(store)
    return w, lambda: None, w.close


def _store_sink(store: Store):
    s = StoreSink(store).__enter__()
    return s, lambda: None, lambda: s.__exit__(None, None, None)


def _queue_sink(store: Store):
    """A QueueSink and its receiving end, as retrain_remote runs it."""
    events: queue.Queue = queue.Queue()
    writer = BackgroundWriter(store)

    def settle() -> None:
        while not events.empty():
            apply_event(events.get_nowait(), writer, store, None)
        writer.flush()

    return QueueSink(events), settle, writer.close


SINKS = {"background_writer": _writer, "store_sink": _store_sink, "queue_sink": _queue_sink}
RETRAIN_SINKS = ("store_sink", "queue_sink")


@pytest.fixture(params=sorted(SINKS))
def harness(request, tmp_path):
    store = Store(store_path(tmp_path))
    sink, settle, close = SINKS[request.param](store)
    yield Harness(sink, store, settle)
    close()


def _metric(epoch: int, loss: float) -> dict:
    return {"retrain_id": "r1", "epoch": epoch, "train_loss": loss}


def test_rows_put_then_flushed_are_in_the_store(harness):
    harness.sink.put("retrain_metrics", [_metric(1, 0.5), _metric(2, 0.4)])
    harness.sink.put("retrain_metrics", [])  # allowed; writes nothing
    harness.sink.flush()
    harness.settle()
    assert harness.store.retrain_metrics("r1")["train_loss"].tolist() == [0.5, 0.4]


def test_rows_of_a_table_arrive_in_the_order_put(harness):
    # Metric rows overwrite on their key, so the value left is the one put last.
    for loss in (0.9, 0.8, 0.7):
        harness.sink.put("retrain_metrics", [_metric(1, loss)])
    harness.sink.flush()
    harness.settle()
    assert harness.store.retrain_metrics("r1")["train_loss"].tolist() == [0.7]


def test_resending_rows_is_harmless_and_flush_may_repeat(harness):
    rows = [_metric(1, 0.5)]
    harness.sink.put("retrain_metrics", rows)
    harness.sink.flush()
    harness.sink.put("retrain_metrics", rows)
    harness.sink.flush()
    harness.sink.flush()
    harness.settle()
    assert len(harness.store.retrain_metrics("r1")) == 1


def test_a_bad_row_is_an_error_not_a_silent_loss(harness):
    with pytest.raises(ValueError, match="unknown"):
        harness.sink.put("retrain_metrics", [{**_metric(1, 0.5), "colour": "red"}])
        harness.sink.flush()
        harness.settle()


@pytest.fixture(params=RETRAIN_SINKS)
def retrain_harness(request, tmp_path):
    store = Store(store_path(tmp_path))
    sink, settle, close = SINKS[request.param](store)
    yield Harness(sink, store, settle)
    close()


def test_retrain_sinks_commit_the_rows_put_before_a_record(retrain_harness, monkeypatch):
    h = retrain_harness
    sink: RetrainSink = h.sink  # type: ignore[assignment]
    upsert, seen = h.store.upsert_retrain, []

    def watching(rec: dict) -> None:
        seen.append(len(h.store.retrain_metrics("r1")))  # metrics committed when the record is
        upsert(rec)

    monkeypatch.setattr(h.store, "upsert_retrain", watching)
    sink.upsert_retrain({"retrain_id": "r1", "run_id": "run", "status": "running"})
    sink.put("retrain_metrics", [_metric(1, 0.5), _metric(2, 0.4)])
    sink.upsert_retrain({"retrain_id": "r1", "status": "done", "test_error": 0.25})
    h.settle()
    assert seen == [0, 2]
    rec = h.store.retrains("run").iloc[0]
    assert rec["status"] == "done" and rec["test_error"] == 0.25  # merged field by field
