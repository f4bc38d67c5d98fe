"""score_run: rank a run's architectures at one checkpoint, as a ScoreJob asks.

A registered search strategy (core/search.py) decides which architectures to score; the
scoring pass (passes.py) scores them, through successive halving where the run says so,
streaming every score into the store and answering repeats from it (so a killed pass
resumes); racing (racing.py) then re-scores the archs tied with the leader. The job's
mode picks what runs at the checkpoint: the search, the probe set alone, the probe set
then the search beside a helper, or that helper (helper.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.control import QUIET, Control
from core.executor import ExecutorSpec
from core.jobs import ScoreJob
from core.search import get_strategy
from engine.data.splits import DataSplits
from engine.exec.pick import scoring
from engine.runtime import allocator
from engine.runtime.device import resolve_precision
from engine.runtime.rng import step_rng
from engine.scoring.probe import score_probe
from engine.scoring.scorer import Scorer
from engine.search.checkpoint import LoadedCheckpoint, load_for_scoring
from engine.search.helper import help_score
from engine.search.passes import OTHER_STREAM, STAGE_STREAMS, ScoringPass, plan_search
from engine.search.racing import race_scores
from store import BackgroundWriter, Store


def score_run(workdir: Path, store: Store, run_id: str, job: ScoreJob | None = None,
              control: Control = QUIET, *, executor: ExecutorSpec | None = None,
              data: DataSplits | None = None) -> dict[str, Any]:
    """Score run `run_id` at the job's checkpoint (default: the newest that loads) as the
    job's mode says; returns the summary.

    The default strategy is the authors': `archs` random Archs, `perturb` of the best, then
    a greedy `chain`. "evolution" (regularized evolution) and "pareto" (score against
    params) spend `budget` score calls instead (default: archs). With a Ray `executor`,
    independent candidates (the random sample, the perturbations) are scored in parallel on
    the cluster; this process alone writes the store."""
    job = job or ScoreJob()
    get_strategy(job.strategy or "smash")  # an unknown name fails before any work
    halving = job.halving_min if job.pass_mode in ("search", "pipelined") else None
    ck = load_for_scoring(workdir, run_id, job.checkpoint, halving, data)
    if job.pass_mode == "helper":
        control.progress(0.0, f"scoring the random sample at step {ck.step} from its end")
        return help_score(ck, store, run_id, job.archs, control)
    probed = score_checkpoint_probe(ck, store, run_id) if job.pass_mode in ("probe", "pipelined") else 0
    if job.pass_mode == "probe":
        return {"run_id": run_id, "checkpoint_step": ck.step, "probe": probed}
    return search(ck, store, run_id, job, control, executor or ExecutorSpec(),
                  shared=job.pass_mode == "pipelined")


def search(ck: LoadedCheckpoint, store: Store, run_id: str, job: ScoreJob, control: Control,
           executor: ExecutorSpec, shared: bool = False) -> dict[str, Any]:
    """The strategy's scoring pass at the loaded checkpoint, then racing.

    `shared`: a helper process works on the random sample from its end; this pass reads the
    store before each arch of it and takes what the helper scored (the same scores)."""
    sc = ck.sc
    plan = plan_search(job, sc)
    runner = scoring(executor, lambda: Scorer.for_model(ck.model, ck.data, ck.device), ck.path)
    bar = tqdm(total=plan.total, desc=f"score {run_id}@{ck.step}", unit="arch",
               disable=not control.show_progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    with BackgroundWriter(store) as writer:
        run = ScoringPass(run_id, ck.step, ck.data, sc, runner, writer, store, plan.total, bar, control, shared)
        try:
            plan.strategy.run(ck.cfg.space, lambda stage: step_rng(
                ck.cfg.seed, ck.step, STAGE_STREAMS.get(stage, OTHER_STREAM)),
                run.score, run.size, plan.budget, run.batch)
            raced = {}
            if sc.race_top > 0:
                writer.flush()
                run.check_stop()
                raced = race_scores(store, writer, runner, run_id, ck.step, sc, control)
        finally:
            runner.close()
    bar.close()
    # What "auto" meant here (Ray workers resolve it on their own machines).
    precision = resolve_precision(ck.device, ck.cfg.precision)
    return {**run.summary(time.perf_counter() - t0), **raced, "precision": precision,
            "allocator": allocator.loaded()}


def score_checkpoint_probe(ck: LoadedCheckpoint, store: Store, run_id: str) -> int:
    """Score the run's probe set with a loaded checkpoint, as training does at each of its
    checkpoints; returns how many archs the probe set holds."""
    if not ck.cfg.score.probe:
        return 0
    with BackgroundWriter(store) as writer:
        score_probe(Scorer.for_model(ck.model, ck.data, ck.device), ck.cfg, run_id, ck.step, writer)
    return ck.cfg.score.probe
