"""bench/ab.py: one benchmark under several settings, alternated; medians and ratios."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.ab import last_json, numeric, order, parse_env, ratios, summarise
from tests.conftest import ROOT


def test_each_round_rotates_the_settings_so_none_always_runs_first():
    rounds = [order(3, r) for r in range(3)]
    assert rounds == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    assert {r[0] for r in rounds} == {0, 1, 2}


def test_medians_and_ratios_to_the_first_setting():
    rows = [[{"s": 1.0, "mb": 100}, {"s": 3.0, "mb": 100}, {"s": 2.0, "mb": 100}],
            [{"s": 1.0, "mb": 80, "new": 5}, {"s": 1.5, "mb": 80}, {"s": 9.0, "mb": 90}]]
    medians = summarise(rows)
    assert medians == [{"mb": 100, "s": 2.0}, {"mb": 80, "new": 5, "s": 1.5}]
    assert ratios(medians) == [{"mb": 1.0, "s": 1.0}, {"mb": 0.8, "s": 0.75}]  # "new": no base


def test_figures_are_the_numbers_of_the_last_json_line():
    out = last_json('warming up\n{"a": 1, "b": "x", "ok": true, "c": 2.5}\n')
    assert numeric(out, None) == {"a": 1.0, "c": 2.5}
    assert numeric(out, ["c", "missing"]) == {"c": 2.5}
    nested = {"peak_rss_mb": {"runner": 1700, "dashboard": 300}, "all_scored_s": 320.4, "note": "x"}
    assert numeric(nested, None) == {"peak_rss_mb.runner": 1700.0, "peak_rss_mb.dashboard": 300.0,
                                     "all_scored_s": 320.4}
    with pytest.raises(ValueError, match="not a JSON object"):
        last_json("[1, 2]")
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        parse_env("A=1 B")
    assert parse_env("A=1 B=x=y") == {"A": "1", "B": "x=y"} and parse_env("") == {}


def ab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "ab.py"), *args],
                          capture_output=True, text=True, timeout=60)


def test_a_real_run_sets_each_environment_in_a_fresh_process():
    bench = "import json, os; print(json.dumps({'x': int(os.environ.get('X', '2')), 'pid': os.getpid()}))"
    proc = ab("--rounds", "2", "--env", "", "--env", "X=5", "--fields", "x", "--", sys.executable, "-c", bench)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [s["median"] for s in out["settings"]] == [{"x": 2.0}, {"x": 5.0}]
    assert out["settings"][1]["ratio"] == {"x": 2.5} and out["rounds"] == 2


def test_a_failing_benchmark_stops_the_run_with_one_line():
    proc = ab("--env", "", "--", sys.executable, "-c", "import sys; sys.exit('no data here')")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == ["ab.py: round 1, (as it is): exit 1: no data here"]
    assert ab("--env", "", "--rounds", "0", "--", "true").stderr.strip() == "ab.py: --rounds must be at least 1"
