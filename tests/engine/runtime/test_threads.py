"""Thread choice: a pure function of measured timings, SMASH_THREADS first, cached per workdir."""

import json

import pytest
import torch

from engine.runtime import threads
from engine.runtime.device import cpu_threads
from engine.runtime.threads import (
    MIN_SPEEDUP,
    cache_key,
    cached_choice,
    candidates,
    choose_threads,
    tuned_threads,
)

WORKLOAD = {"kind": "test", "batch": 4}


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    monkeypatch.delenv("SMASH_THREADS", raising=False)
    monkeypatch.delenv("SMASH_MAX_THREADS", raising=False)


@pytest.mark.parametrize(("seconds", "expected"), [
    ({1: 1.0, 2: 0.97}, 1),                   # the demo: a second thread adds nothing
    ({1: 1.0, 2: 1.0 / (MIN_SPEEDUP - 0.01)}, 1),  # just below the bar
    ({1: 1.0, 2: 1.0 / (MIN_SPEEDUP + 0.01)}, 2),  # just above it
    ({1: 1.0, 2: 0.5, 4: 0.45}, 2),           # 4 threads barely beat 2
    ({1: 1.0, 2: 0.5, 4: 0.26}, 4),
    ({1: 1.0, 2: 0.9, 4: 0.2}, 1),            # the walk stops at the first flat step
    ({2: 1.0}, 2),
])
def test_choice_is_a_pure_function_of_the_timings(seconds, expected):
    assert choose_threads(seconds) == expected


def test_no_timings_is_an_error():
    with pytest.raises(ValueError):
        choose_threads({})


def test_candidates_double_up_to_the_allowed_count():
    assert candidates(1) == [1]
    assert candidates(2) == [1, 2]
    assert candidates(6) == [1, 2, 4, 6]
    assert candidates(8) == [1, 2, 4, 8]


def test_smash_threads_wins_and_nothing_is_measured(tmp_path, monkeypatch, four_cores):
    monkeypatch.setenv("SMASH_THREADS", "3")
    monkeypatch.setattr(threads, "measure", lambda *_: pytest.fail("measured despite SMASH_THREADS"))
    assert tuned_threads(tmp_path, WORKLOAD, lambda: None) == 3
    assert torch.get_num_threads() == 3 and cpu_threads() == 3
    assert not (tmp_path / threads.CACHE_FILE).exists()


def test_the_choice_is_measured_once_then_read_back(tmp_path, monkeypatch, four_cores):
    calls = []

    def fake_measure(run, counts):
        calls.append(list(counts))
        return {1: 1.0, 2: 0.5, 4: 0.45}

    monkeypatch.setattr(threads, "measure", fake_measure)
    assert tuned_threads(tmp_path, WORKLOAD, lambda: None) == 2
    assert calls == [[1, 2, 4]]
    saved = json.loads((tmp_path / threads.CACHE_FILE).read_text())[cache_key(WORKLOAD)]
    assert saved["threads"] == 2 and saved["seconds"] == {"1": 1.0, "2": 0.5, "4": 0.45}
    assert cached_choice(tmp_path, WORKLOAD) == 2
    assert tuned_threads(tmp_path, WORKLOAD, lambda: None) == 2  # from the cache
    assert calls == [[1, 2, 4]]
    assert cached_choice(tmp_path, {**WORKLOAD, "batch": 8}) is None  # another size: not cached


def test_the_engines_share_caps_the_choice_and_one_core_measures_nothing(tmp_path, monkeypatch, four_cores):
    monkeypatch.setattr(threads, "measure", lambda *_: {1: 1.0, 2: 0.5, 4: 0.25})
    monkeypatch.setenv("SMASH_MAX_THREADS", "2")
    assert cpu_threads() == 2
    assert tuned_threads(tmp_path, WORKLOAD, lambda: None) == 2  # measured 1 and 2 only
    monkeypatch.setenv("SMASH_MAX_THREADS", "1")
    monkeypatch.setattr(threads, "measure", lambda *_: pytest.fail("measured with one thread allowed"))
    assert tuned_threads(tmp_path / "other", WORKLOAD, lambda: None) == 1


def test_measure_restores_the_thread_count_and_times_each_count(monkeypatch):
    torch.set_num_threads(1)
    seen = []
    seconds = threads.measure(lambda: seen.append(torch.get_num_threads()), [1, 2])
    assert set(seconds) <= {1, 2} and 1 in seconds and all(s >= 0 for s in seconds.values())
    assert torch.get_num_threads() == 1
    assert seen[: 1 + threads.TIMED_PASSES] == [1] * (1 + threads.TIMED_PASSES)


def test_a_corrupt_cache_is_measured_again(tmp_path, monkeypatch, four_cores):
    (tmp_path / threads.CACHE_FILE).write_text("{not json")
    monkeypatch.setattr(threads, "measure", lambda *_: {1: 1.0, 2: 0.9})
    assert tuned_threads(tmp_path, WORKLOAD, lambda: None) == 1
    assert cached_choice(tmp_path, WORKLOAD) == 1


def test_a_choice_held_down_by_a_smaller_share_is_measured_again(tmp_path, monkeypatch, four_cores):
    monkeypatch.setattr(threads, "measure", lambda *_: {1: 1.0, 2: 0.5})
    monkeypatch.setenv("SMASH_MAX_THREADS", "2")
    assert tuned_threads(tmp_path, WORKLOAD, lambda: None) == 2  # all it was allowed
    monkeypatch.delenv("SMASH_MAX_THREADS")
    monkeypatch.setattr(threads, "measure", lambda *_: {1: 1.0, 2: 0.5, 4: 0.25})
    assert tuned_threads(tmp_path, WORKLOAD, lambda: None) == 4
    monkeypatch.setattr(threads, "measure", lambda *_: pytest.fail("measured again"))
    assert tuned_threads(tmp_path, WORKLOAD, lambda: None) == 4
