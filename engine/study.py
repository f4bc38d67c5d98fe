"""`smash correlate`: does the SMASH score rank architectures like their true error?

Pick K architectures spread evenly over the run's SMASH-score range (full scores only),
retrain each with the same budget and one or more seeds (queued as retrain jobs, or one
after another inside an engine `correlate` job), then report, for the SMASH score and for
trivial predictors beside it (params, FLOPs, a training-free proxy), Spearman, Kendall,
Pearson, top-k precision and regret with bootstrap 95% intervals against the validation
error, and the truth's own seed-to-seed Spearman as the ceiling (core/study.py does the
arithmetic). With a ladder of epochs (1, 2, 4, 8) the same retrains give the truth after
each, and every predictor is reported at every rung beside the rank average of SMASH and
FLOPs, the SMASH score's partial Spearman given each size, and the ranker learned from
the retrains. The study and its figures are stored with the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.arch import Arch
from core.config import Config
from core.control import QUIET, Control
from core.ids import retrain_id_for, study_id_for
from core.jobs import CorrelateError, CorrelateJob, RetrainJob
from core.search import SEARCH_STAGES
from core.study import predictor_values, rung_metrics, study_metrics
from engine.data.splits import load_data
from engine.scoring.proxy import naswot
from engine.scoring.refine import refine_scores
from engine.train.final import retrain_arch
from store import Store


def spread_over_scores(board: pd.DataFrame, k: int) -> list[str]:
    """`k` arch ids at evenly spaced ranks from best to worst SMASH score."""
    ranked = board.sort_values(["score_mean", "arch_id"]).reset_index(drop=True)
    if len(ranked) < k:
        raise CorrelateError(f"the run has {len(ranked)} fully scored architectures; a study of {k} "
                             "needs at least that many (run `smash score` with more --archs)")
    idx = np.unique(np.round(np.linspace(0, len(ranked) - 1, k)).astype(int))
    return [str(a) for a in ranked.loc[idx, "arch_id"]]


def pick_archs(store: Store, run_id: str, k: int, include_partial: bool = False) -> list[str]:
    """The study's archs: spread over the score range of the run's searched archs. Partial
    (halving-stopped) scores are too noisy to place an arch, so they are left out by default."""
    if k < 2:
        raise CorrelateError(f"--k {k}: a study needs at least 2 architectures")
    board = store.leaderboard(run_id, limit=10**9, stages=list(SEARCH_STAGES))
    if not include_partial:
        board = board[~board["partial"].fillna(False).astype(bool)]
    return spread_over_scores(board, k)


def gather(store: Store, run_id: str, arch_ids: list[str], epochs: int, seeds: list[int] | int,
           max_steps_per_epoch: int = 0, rungs: tuple[int, ...] = ()) -> pd.DataFrame:
    """Per study arch: SMASH score, size, and each seed's retrained validation and test error
    (NaN where not finished); val_error / test_error are the means over the seeds. For each
    epoch r of `rungs`, the truth after r epochs of the same retrains: `val_error_s{seed}_e{r}`
    and the seconds of training it took, `seconds_s{seed}_e{r}` (final training records
    every epoch, so one long retrain gives every rung)."""
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    rows = []
    for arch_id in arch_ids:
        rec = store.arch(run_id, arch_id) or {"scores": []}
        scores = [s for s in rec["scores"] if s.get("score_mean") is not None]
        row = {"arch_id": arch_id, "score_mean": scores[-1]["score_mean"] if scores else float("nan"),
               "params": rec.get("params"), "flops": rec.get("flops"), "status": "done"}
        for seed in seeds:
            rid = retrain_id_for(run_id, arch_id, epochs, seed, max_steps_per_epoch)
            rt = store.get_retrain(rid)
            done = rt is not None and rt["status"] == "done" and rt.get("val_error") is not None
            row[f"val_error_s{seed}"] = rt["val_error"] if done else float("nan")
            row[f"test_error_s{seed}"] = rt["test_error"] if done else float("nan")
            if not done:
                row["status"] = rt["status"] if rt else "queued"
            if rungs:
                row.update(_rung_truths(store.retrain_metrics(rid), seed, rungs))
        rows.append(row)
    frame = pd.DataFrame(rows)
    for side in ("val_error", "test_error"):
        frame[side] = frame[[f"{side}_s{s}" for s in seeds]].mean(axis=1, skipna=False)
    return frame


def _rung_truths(metrics: pd.DataFrame, seed: int, rungs: tuple[int, ...]) -> dict[str, float]:
    """One retrain's validation error after each rung's epoch, and its training seconds so far."""
    by_epoch = metrics.set_index("epoch") if len(metrics) else pd.DataFrame(columns=["val_error", "elapsed_s"])
    out = {}
    for r in rungs:
        done = r in by_epoch.index
        out[f"val_error_s{seed}_e{r}"] = float(by_epoch.loc[r, "val_error"]) if done else float("nan")
        spent = by_epoch.loc[by_epoch.index <= r, "elapsed_s"].sum() if done else float("nan")
        out[f"seconds_s{seed}_e{r}"] = float(spent)
    return out


def rung_frame(frame: pd.DataFrame, seeds: list[int], rung: int) -> pd.DataFrame:
    """`frame` with the truth after `rung` epochs as its val_error columns."""
    out = frame.copy()
    for s in seeds:
        out[f"val_error_s{s}"] = frame[f"val_error_s{s}_e{rung}"]
    out["val_error"] = out[[f"val_error_s{s}" for s in seeds]].mean(axis=1, skipna=False)
    return out


def ladder(frame: pd.DataFrame, predictors: list[str], seeds: list[int], rungs: tuple[int, ...],
           top_k: int | None = None, n_boot: int = 1000) -> list[dict[str, Any]]:
    """Every predictor at every rung of the truth ladder (core/study.py's rung_metrics), with
    what each rung cost: the mean training seconds of one retrain up to it."""
    out = []
    for r in rungs:
        rf = rung_frame(frame, seeds, r)
        seconds = frame[[f"seconds_s{s}_e{r}" for s in seeds]].to_numpy(float)
        out.append({"name": f"{r} epoch{'s' if r > 1 else ''}", "epochs": r,
                    "seconds_per_retrain": round(float(np.nanmean(seconds)), 1) if np.isfinite(seconds).any() else None,
                    **rung_metrics(rf, predictors, seeds, top_k, n_boot, seeds[0])})
    return out


@dataclass(frozen=True)
class StudyPlan:
    """What a study retrains: its id, its run, its archs, seeds and budget."""

    sid: str
    run: dict
    arch_ids: list[str]
    epochs: int
    seeds: list[int]
    max_steps_per_epoch: int
    rungs: tuple[int, ...] = ()
    """Epochs after which the truth is read (a ladder); () or one: after the last only."""

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    def retrain_job(self, seed: int) -> RetrainJob:
        return RetrainJob(epochs=self.epochs, seed=seed, max_steps_per_epoch=self.max_steps_per_epoch)

    def summary(self) -> dict[str, Any]:
        return {"study_id": self.sid, "run_id": self.run_id, "k": len(self.arch_ids), "epochs": self.epochs,
                "rungs": list(self.rungs), "seeds": self.seeds, "max_steps_per_epoch": self.max_steps_per_epoch}


def plan_study(store: Store, run_id: str, job: CorrelateJob) -> StudyPlan:
    """Pick the job's archs and record the study as running."""
    run = _study_run(store, run_id)
    cap = job.max_steps_per_epoch or Config.from_stored(run["config"]).retrain.max_steps_per_epoch
    arch_ids = pick_archs(store, run_id, job.k, bool(job.include_partial))
    seed = job.seed_list[0]
    sid = study_id_for(run_id, arch_ids, job.epochs, seed, job.seeds, cap)
    store.upsert_study(sid, run_id=run_id, status="running", epochs=job.epochs, seed=seed, arch_ids=arch_ids)
    return StudyPlan(sid, run, arch_ids, job.epochs, job.seed_list, cap, job.ladder)


def queue_retrains(store: Store, plan: StudyPlan) -> list[str]:
    """One retrain job per (seed, arch) not already retrained; equal queued jobs are reused."""
    job_ids = []
    for s in plan.seeds:
        for arch_id in plan.arch_ids:
            done = store.get_retrain(retrain_id_for(plan.run_id, arch_id, plan.epochs, s, plan.max_steps_per_epoch))
            if done is None or done["status"] != "done":
                job_ids.append(store.enqueue_job(RetrainJob.kind, plan.retrain_job(s).to_params(),
                                                 run_id=plan.run_id, arch_id=arch_id))
    return job_ids


def correlate(workdir: Path, store: Store, run_id: str, job: CorrelateJob, control: Control = QUIET, *,
              run_jobs: Callable[[list[str]], None] | None = None) -> dict[str, Any]:
    """Queue the study's retrains as jobs, let `run_jobs` run them to their end (the caller's
    engine, or waiting for one that serves the workdir), refine the study archs' scores to
    the job's `score_draws` draws (0: as the search left them), then store and return the
    study's figures. Without `run_jobs`, return once the jobs are queued."""
    plan = plan_study(store, run_id, job)
    job_ids = queue_retrains(store, plan)
    summary = {**plan.summary(), "queued": len(job_ids)}
    if run_jobs is None:
        return summary
    run_jobs(job_ids)
    refined = refine_study_scores(workdir, store, plan, job.score_draws, control)
    return {**summary, **finish_study(store, plan, job, refined)}


def finish_study(store: Store, plan: StudyPlan, job: CorrelateJob, refined: dict[str, float] | None = None,
                 n_boot: int = 1000) -> dict[str, Any]:
    """Gather the finished retrains, compute every predictor's figures (the SMASH score from
    `refined` where given: arch id -> score), store the study."""
    frame = gather(store, plan.run_id, plan.arch_ids, plan.epochs, plan.seeds, plan.max_steps_per_epoch,
                   plan.rungs)
    if refined:
        frame["score_mean"] = [refined.get(a, s) for a, s in zip(frame["arch_id"], frame["score_mean"], strict=True)]
    predictors = list(job.predictors)
    if "naswot" in predictors:
        frame["naswot"] = [_naswot_fn(store, plan.run)(a) for a in frame["arch_id"]]
    metrics = study_metrics(frame, predictor_values(frame, predictors), plan.seeds, job.top_k, n_boot,
                            plan.seeds[0])
    metrics["score_draws"] = job.score_draws or None  # None: the search's own draws
    if len(plan.rungs) > 1:
        metrics["rungs"] = ladder(frame, predictors, plan.seeds, plan.rungs, job.top_k, n_boot)
    failed = int(frame["val_error"].isna().sum())
    store.upsert_study(plan.sid, run_id=plan.run_id, status="done" if failed == 0 else "failed",
                       epochs=plan.epochs, seed=plan.seeds[0], arch_ids=plan.arch_ids, metrics=metrics)
    return {"retrained": metrics["n"], "failed": failed, "metrics": metrics}


def run_study(workdir: Path, store: Store, run_id: str, job: CorrelateJob, control: Control = QUIET, *,
              job_id: str | None = None) -> dict[str, Any]:
    """The whole study in this process (the engine's `correlate` job): retrains one after
    another, each resumable from its checkpoints, so a cancelled or killed study continues,
    then the study archs' scores refined to the job's `score_draws` draws."""
    plan = plan_study(store, run_id, job)
    cfg = Config.from_stored(plan.run["config"])
    data = load_data(cfg.data, cfg.seed)
    todo = [(s, a) for s in plan.seeds for a in plan.arch_ids]
    for i, (s, arch_id) in enumerate(todo):
        control.progress(i / len(todo), f"retrain {i + 1}/{len(todo)} ({arch_id}, seed {s})")
        arch = Arch.from_dict(store.arch(run_id, arch_id)["arch"])
        retrain_arch(cfg, arch, workdir, store, plan.retrain_job(s), control, run_id=run_id, job_id=job_id,
                     data=data)
    refined = refine_study_scores(workdir, store, plan, job.score_draws, control)
    return {**plan.summary(), **finish_study(store, plan, job, refined)}


def refine_study_scores(workdir: Path, store: Store, plan: StudyPlan, score_draws: int,
                        control: Control = QUIET) -> dict[str, float]:
    """Each study arch's SMASH score over `score_draws` draws (arch id -> score), to compare
    with the truth (engine/scoring/refine.py): a search's few draws cannot order archs whose
    scores lie within their noise. 0 keeps the scores as the search left them."""
    if score_draws <= 0:
        return {}
    quiet_bar = Control(on_progress=lambda _, msg: control.progress(0.99, msg), should_stop=control.should_stop)
    out = refine_scores(workdir, store, plan.run_id, plan.arch_ids, score_draws, quiet_bar)
    return {a: t.mean for a, t in out.items()}


def _study_run(store: Store, run_id: str) -> dict:
    run = store.get_run(run_id)
    if run is None:
        raise CorrelateError(f"no run {run_id!r}")
    return run


def _naswot_fn(store: Store, run: dict) -> Callable[[str], float]:
    cfg = Config.from_stored(run["config"])
    data = load_data(cfg.data, cfg.seed)
    return lambda arch_id: naswot(Arch.from_dict(store.arch(run["run_id"], arch_id)["arch"]), data)
