"""`smash correlate`: does the SMASH score rank architectures like their true error?

Pick K architectures spread evenly over the run's SMASH-score range, retrain each with
the same short budget (queued as retrain jobs, run by the engine, several at once when
asked), then report Spearman, Kendall, Pearson, top-k precision and regret with
bootstrap 95% intervals. The study and its figures are stored with the run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.config import Config
from engine.rankstats import correlation_table
from engine.retrain import retrain_id_for
from store import Store


class CorrelateError(ValueError):
    """Too few scored architectures for a study."""


def spread_over_scores(board: pd.DataFrame, k: int) -> list[str]:
    """`k` arch ids at evenly spaced ranks from best to worst SMASH score."""
    ranked = board.sort_values(["score_mean", "arch_id"]).reset_index(drop=True)
    if len(ranked) < k:
        raise CorrelateError(f"the run has {len(ranked)} scored architectures; a study of {k} needs at "
                             "least that many (run `smash score` with more --archs)")
    idx = np.unique(np.round(np.linspace(0, len(ranked) - 1, k)).astype(int))
    return [str(a) for a in ranked.loc[idx, "arch_id"]]


def study_id_for(run_id: str, arch_ids: list[str], epochs: int, seed: int) -> str:
    digest = hashlib.sha256(f"{run_id}|{epochs}|{seed}|{','.join(sorted(arch_ids))}".encode()).hexdigest()
    return f"study-{digest[:10]}"


def gather(store: Store, run_id: str, arch_ids: list[str], epochs: int, seed: int,
           steps_per_epoch: int = 0) -> pd.DataFrame:
    """SMASH score and retrained test error of each study arch (NaN where not finished)."""
    rows = []
    for arch_id in arch_ids:
        rec = store.arch(run_id, arch_id) or {"scores": []}
        scores = [s for s in rec["scores"] if s.get("score_mean") is not None]
        score = scores[-1]["score_mean"] if scores else float("nan")
        rt = store.get_retrain(retrain_id_for(run_id, arch_id, epochs, seed, steps_per_epoch))
        done = rt is not None and rt["status"] == "done"
        rows.append({"arch_id": arch_id, "score_mean": score,
                     "test_error": rt["test_error"] if done else float("nan"),
                     "status": rt["status"] if rt else "queued"})
    return pd.DataFrame(rows)


def correlate(workdir: Path, store: Store, run_id: str, *, k: int = 24, epochs: int = 2, seed: int = 0,
              steps_per_epoch: int = 0,
              top_k: int | None = None, jobs: int = 1, wait: bool = True, n_boot: int = 1000,
              timeout_s: float | None = None,
              on_progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise CorrelateError(f"no run {run_id!r}")
    # The cap the retrains will really run with: asked for here, or the run's own setting.
    steps_per_epoch = steps_per_epoch or Config.from_stored(run["config"]).retrain.max_steps_per_epoch
    board = store.leaderboard(run_id, limit=10**9, stages=["random", "perturb", "chain", "evolution", "pareto"])
    arch_ids = spread_over_scores(board, k)
    sid = study_id_for(run_id, arch_ids, epochs, seed) + (f"-m{steps_per_epoch}" if steps_per_epoch else "")
    store.upsert_study(sid, run_id=run_id, status="running", epochs=epochs, seed=seed, arch_ids=arch_ids)
    job_ids = []
    for arch_id in arch_ids:
        done = store.get_retrain(retrain_id_for(run_id, arch_id, epochs, seed, steps_per_epoch))
        if done is None or done["status"] != "done":
            params = {"epochs": epochs, "seed": seed}
            if steps_per_epoch:
                params["steps_per_epoch"] = steps_per_epoch
            job_ids.append(store.enqueue_job("retrain", params, run_id=run_id, arch_id=arch_id))
    summary: dict[str, Any] = {"study_id": sid, "run_id": run_id, "k": len(arch_ids), "epochs": epochs,
                               "steps_per_epoch": steps_per_epoch, "queued": len(job_ids)}
    if not wait:
        return summary
    _run_until_done(workdir, store, job_ids, jobs, timeout_s, on_progress)
    pairs = gather(store, run_id, arch_ids, epochs, seed, steps_per_epoch)
    ok = pairs.dropna(subset=["score_mean", "test_error"])
    table = correlation_table(ok["score_mean"], ok["test_error"], k=top_k or max(1, len(ok) // 4),
                              n_boot=n_boot, seed=seed)
    failed = len(pairs) - len(ok)
    store.upsert_study(sid, run_id=run_id, status="done" if failed == 0 else "failed", epochs=epochs,
                       seed=seed, arch_ids=arch_ids, metrics=table)
    return {**summary, "retrained": len(ok), "failed": failed, "metrics": table}


def _run_until_done(workdir: Path, store: Store, job_ids: list[str], slots: int,
                    timeout_s: float | None, on_progress: Callable[[float, str], None] | None) -> None:
    """Serve the study's jobs with an embedded engine, or wait for the one already serving."""
    from engine.worker import Engine, EngineError

    engine = Engine(workdir, concurrency=slots, poll_s=2.0)
    try:
        engine.acquire()
        engine.recover()
    except EngineError:
        engine = None  # another engine serves this workdir: just wait for it
    start, reported = time.monotonic(), -1
    try:
        while True:
            jobs = store.jobs(limit=max(1000, 2 * len(job_ids)))
            states = jobs[jobs["job_id"].isin(job_ids)]["status"]
            finished = int(states.isin(["done", "failed", "cancelled"]).sum())
            if on_progress is not None and finished != reported:
                reported = finished
                on_progress(finished / max(len(job_ids), 1), f"{finished}/{len(job_ids)} retrains finished")
            if finished == len(job_ids):
                return
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                raise TimeoutError(f"study retrains not finished after {timeout_s:.0f} s")
            if engine is not None:
                engine.tick()
            time.sleep(2.0)
    finally:
        if engine is not None:
            engine.shutdown()
