"""Store benchmark: insert throughput, leaderboard latency by size, lock waits under load.

Run from the repository root: `python -m bench.store` (or `python bench/store.py`).
Prints one line per figure and, last, a JSON object of all figures. Sizes and the
length of the concurrent phase are flags; the defaults finish in a few minutes on 2 cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path and `import store`
# would import this very file; put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import store  # noqa: E402
from store import BackgroundWriter, Store  # noqa: E402

RUN = "bench"


def synthetic(n: int, seed: int = 0, prefix: str = "a") -> pd.DataFrame:
    """n scored archs with plausible sizes; score loosely falls with size, plus noise."""
    rng = np.random.default_rng(seed)
    params = rng.integers(20_000, 5_000_000, n)
    return pd.DataFrame(
        {
            "arch_id": prefix + pd.Series(np.arange(n)).astype(str).str.zfill(8),
            "checkpoint_step": 10_000,
            "stage": "random",
            "score_mean": np.clip(0.6 - 0.05 * np.log10(params) + rng.normal(0, 0.05, n), 0, 1),
            "score_std": rng.uniform(0.001, 0.02, n),
            "draws": 4,
            "val_images": 5000,
            "params": params,
            "flops": params * rng.integers(20, 200, n),
            "depth": rng.integers(3, 30, n),
            "n_layers": rng.integers(3, 40, n),
        }
    )


def score_rows(frame: pd.DataFrame) -> list[dict]:
    cols = ["arch_id", "checkpoint_step", "stage", "score_mean", "score_std", "draws", "val_images"]
    return [{"run_id": RUN, **row} for row in frame[cols].to_dict("records")]


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return round(statistics.median(times) * 1000, 1)


def bench_size(workdir: Path, n: int, repeats: int) -> dict:
    st = Store(workdir / f"size-{n}.duckdb")
    frame = synthetic(n)
    began = time.perf_counter()
    st.bulk_add_scored(RUN, frame)
    bulk_s = time.perf_counter() - began

    lo, hi = np.percentile(frame["params"], [40, 60])
    out = {
        "n": n,
        "bulk_rows_per_s": round(n / bulk_s),
        "leaderboard_ms": median_ms(lambda: st.leaderboard(RUN), repeats),
        "leaderboard_params_filter_ms": median_ms(
            lambda: st.leaderboard(RUN, params=(float(lo), float(hi))), repeats
        ),
        "leaderboard_count_ms": median_ms(lambda: st.leaderboard_count(RUN), repeats),
        "pareto_front_ms": median_ms(lambda: st.pareto(RUN, front_only=True), max(3, repeats // 2)),
        "file_mb": round(st.path.stat().st_size / 1e6, 1),
    }

    # Inserts into a table of this size: 1000-row add_scores calls, then a scoring
    # loop's pace through the background writer (small puts, one commit a second).
    rows = score_rows(synthetic(10_000, seed=1, prefix="d"))
    began = time.perf_counter()
    for i in range(0, len(rows), 1000):
        st.add_scores(rows[i : i + 1000])
    out["add_scores_rows_per_s"] = round(len(rows) / (time.perf_counter() - began))

    rows = score_rows(synthetic(10_000, seed=2, prefix="w"))
    began = time.perf_counter()
    with BackgroundWriter(st, interval=1.0) as writer:
        for i in range(0, len(rows), 100):
            writer.put("scores", rows[i : i + 100])
        put_s = time.perf_counter() - began
    out["writer_rows_per_s"] = round(len(rows) / (time.perf_counter() - began))
    out["writer_put_100_rows_us"] = round(put_s / (len(rows) / 100) * 1e6)  # what the caller pays
    assert st.score_count(RUN) == n + 20_000
    return out


def _writer(path: str, seconds: float, start, out) -> None:
    st = Store(path)
    rows = score_rows(synthetic(int(seconds * 1000) + 1000, seed=3, prefix="c"))
    start.wait()
    store.reset_lock_wait_stats()
    end, i = time.monotonic() + seconds, 0
    with BackgroundWriter(st, interval=1.0) as writer:
        while time.monotonic() < end and i < len(rows):
            writer.put("scores", rows[i : i + 50])
            i += 50
            time.sleep(0.05)
    out.put(("writer", {"rows": i, **store.lock_wait_stats()}))


def _reader(path: str, seconds: float, start, out) -> None:
    st = Store(path)
    start.wait()
    store.reset_lock_wait_stats()
    end, reads, errors = time.monotonic() + seconds, 0, 0
    while time.monotonic() < end:
        try:
            st.leaderboard(RUN)
            reads += 1
        except store.StoreError:
            errors += 1
    out.put(("reader", {"reads": reads, "errors": errors, **store.lock_wait_stats()}))


def bench_concurrent(workdir: Path, n: int, seconds: float) -> dict:
    """One streaming writer and two readers polling the leaderboard as fast as they can."""
    st = Store(workdir / "concurrent.duckdb")
    st.bulk_add_scored(RUN, synthetic(n))
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(3), ctx.Queue()
    targets = [_writer, _reader, _reader]
    procs = [ctx.Process(target=t, args=(str(st.path), seconds, start, out)) for t in targets]
    for p in procs:
        p.start()
    reports = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    writer = next(r for role, r in reports if role == "writer")
    readers = [r for role, r in reports if role == "reader"]
    return {
        "n": n,
        "seconds": seconds,
        "writer_rows": writer["rows"],
        "writer_commits": writer["count"],
        "writer_p99_wait_ms": round(writer["p99_s"] * 1000, 1),
        "writer_max_wait_ms": round(writer["max_s"] * 1000, 1),
        "reads": sum(r["reads"] for r in readers),
        "read_errors": sum(r["errors"] for r in readers),
        "reader_p99_wait_ms": round(max(r["p99_s"] for r in readers) * 1000, 1),
        "reader_max_wait_ms": round(max(r["max_s"] for r in readers) * 1000, 1),
        "rows_seen_after": st.score_count(RUN) - n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=7, help="timings per query (median)")
    parser.add_argument("--concurrent-size", type=int, default=100_000)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="length of the concurrent phase (0: skip it)"
    )
    args = parser.parse_args()

    figures: dict = {"sizes": []}
    with tempfile.TemporaryDirectory(prefix="smash-bench-") as tmp:
        for n in args.sizes:
            result = bench_size(Path(tmp), n, args.repeats)
            figures["sizes"].append(result)
            print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)
        if args.seconds > 0:
            result = bench_concurrent(Path(tmp), args.concurrent_size, args.seconds)
            figures["concurrent"] = result
            print("concurrent " + " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
