"""`smash correlate`: does the SMASH score rank architectures like their true error?

Pick K architectures spread evenly over the run's SMASH-score range (full scores only),
retrain each with the same short budget and one or more seeds (queued as retrain jobs,
or one after another inside an engine `correlate` job), then report, for the SMASH score
and for trivial predictors beside it (params, FLOPs, a training-free proxy), Spearman,
Kendall, Pearson, top-k precision and regret with bootstrap 95% intervals against the
validation error, and the truth's own seed-to-seed Spearman as the ceiling. The study and
its figures are stored with the run.
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
from core.jobs import CorrelateError, CorrelateJob, RetrainJob, check_predictors
from core.rankstats import bootstrap_ci, ceiling_of_mean, correlation_table, spearman
from core.search import SEARCH_STAGES
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
           max_steps_per_epoch: int = 0) -> pd.DataFrame:
    """Per study arch: SMASH score, size, and each seed's retrained validation and test error
    (NaN where not finished); val_error / test_error are the means over the seeds."""
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    rows = []
    for arch_id in arch_ids:
        rec = store.arch(run_id, arch_id) or {"scores": []}
        scores = [s for s in rec["scores"] if s.get("score_mean") is not None]
        row = {"arch_id": arch_id, "score_mean": scores[-1]["score_mean"] if scores else float("nan"),
               "params": rec.get("params"), "flops": rec.get("flops"), "status": "done"}
        for seed in seeds:
            rt = store.get_retrain(retrain_id_for(run_id, arch_id, epochs, seed, max_steps_per_epoch))
            done = rt is not None and rt["status"] == "done" and rt.get("val_error") is not None
            row[f"val_error_s{seed}"] = rt["val_error"] if done else float("nan")
            row[f"test_error_s{seed}"] = rt["test_error"] if done else float("nan")
            if not done:
                row["status"] = rt["status"] if rt else "queued"
        rows.append(row)
    frame = pd.DataFrame(rows)
    for side in ("val_error", "test_error"):
        frame[side] = frame[[f"{side}_s{s}" for s in seeds]].mean(axis=1, skipna=False)
    return frame


def predictor_values(frame: pd.DataFrame, names: list[str],
                     proxy: Callable[[str], float] | None = None) -> dict[str, np.ndarray]:
    """Each named predictor's value per row of `frame`, oriented so that lower predicts lower
    error: the SMASH score; minus params and minus FLOPs (bigger predicts better); minus the
    NASWOT log-determinant, a training-free proxy (engine/scoring/proxy.py) that costs one
    forward pass per architecture (`proxy`: arch id -> its value)."""
    check_predictors(names)
    out = {}
    for name in names:
        if name == "smash":
            out[name] = frame["score_mean"].to_numpy(float)
        elif name in ("params", "flops"):
            out[name] = -frame[name].to_numpy(float)
        else:
            if proxy is None:
                raise CorrelateError("the naswot predictor needs the run's data (a proxy function)")
            out[name] = -np.array([proxy(a) for a in frame["arch_id"]], dtype=float)
    return out


def study_metrics(frame: pd.DataFrame, predictors: dict[str, np.ndarray], seeds: list[int],
                  top_k: int | None = None, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Each predictor against the truth (mean validation error over seeds) with bootstrap 95%
    intervals, and the truth's own seed-to-seed Spearman (the ceiling any predictor faces)."""
    ok = frame["val_error"].notna().to_numpy()
    truth = frame["val_error"].to_numpy(float)[ok]
    k = top_k or max(1, int(ok.sum()) // 4)
    tables = {name: correlation_table(values[ok], truth, k=k, n_boot=n_boot, seed=seed)
              for name, values in predictors.items()}
    ceiling = None
    if len(seeds) >= 2:
        a = frame[f"val_error_s{seeds[0]}"].to_numpy(float)[ok]
        b = frame[f"val_error_s{seeds[1]}"].to_numpy(float)[ok]
        est, lo, hi = bootstrap_ci(spearman, a, b, n_boot=n_boot, seed=seed)
        ceiling = {"spearman": est, "spearman_ci": [lo, hi], "seeds": seeds[:2],
                   "of_mean": ceiling_of_mean(est, len(seeds))}
    return {"truth": "val_error", "n": int(ok.sum()), "k": k, "seeds": seeds,
            "predictors": tables, "ceiling": ceiling}


@dataclass(frozen=True)
class StudyPlan:
    """What a study retrains: its id, its run, its archs, seeds and budget."""

    sid: str
    run: dict
    arch_ids: list[str]
    epochs: int
    seeds: list[int]
    max_steps_per_epoch: int

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    def retrain_job(self, seed: int) -> RetrainJob:
        return RetrainJob(epochs=self.epochs, seed=seed, max_steps_per_epoch=self.max_steps_per_epoch or None)

    def summary(self) -> dict[str, Any]:
        return {"study_id": self.sid, "run_id": self.run_id, "k": len(self.arch_ids), "epochs": self.epochs,
                "seeds": self.seeds, "max_steps_per_epoch": self.max_steps_per_epoch}


def plan_study(store: Store, run_id: str, job: CorrelateJob) -> StudyPlan:
    """Pick the job's archs and record the study as running."""
    run = _study_run(store, run_id)
    cap = job.max_steps_per_epoch or Config.from_stored(run["config"]).retrain.max_steps_per_epoch
    arch_ids = pick_archs(store, run_id, job.k, bool(job.include_partial))
    seed = job.seed_list[0]
    sid = study_id_for(run_id, arch_ids, job.epochs, seed, job.seeds, cap)
    store.upsert_study(sid, run_id=run_id, status="running", epochs=job.epochs, seed=seed, arch_ids=arch_ids)
    return StudyPlan(sid, run, arch_ids, job.epochs, job.seed_list, cap)


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
    frame = gather(store, plan.run_id, plan.arch_ids, plan.epochs, plan.seeds, plan.max_steps_per_epoch)
    if refined:
        frame["score_mean"] = [refined.get(a, s) for a, s in zip(frame["arch_id"], frame["score_mean"], strict=True)]
    predictors = list(job.predictors)
    proxy = _naswot_fn(store, plan.run) if "naswot" in predictors else None
    metrics = study_metrics(frame, predictor_values(frame, predictors, proxy), plan.seeds, job.top_k, n_boot,
                            plan.seeds[0])
    metrics["score_draws"] = job.score_draws or None  # None: the search's own draws
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
