"""score_run: rank a run's architectures with a registered search strategy, halving and racing.

The strategy (core/search.py) decides which architectures to score; this module scores
them at one checkpoint, streams every score into the store as it comes, answers repeats
from what is stored (so a killed pass resumes), and tracks the best.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from core.arch import Arch
from core.config import Config, ScoreConfig
from core.errors import Cancelled
from core.racing import Tally, race, tied_with_leader
from core.search import Strategy, get_strategy, random_archs
from engine.data.splits import DataSplits, load_data
from engine.exec.contract import ScoringExecutor
from engine.exec.pick import scoring
from engine.exec.spec import ExecutorSpec
from engine.model import SmashModel, load_model
from engine.nets.size import count_params
from engine.runtime import allocator
from engine.runtime import checkpoint as ckpt
from engine.runtime.device import pick_device, resolve_precision
from engine.runtime.rng import step_rng
from engine.runtime.workdir import checkpoint_dir
from engine.scoring.probe import score_probe
from engine.scoring.scorer import ScoreError, Scorer, arch_row, halving_rungs, raced_row, score_row
from engine.scoring.tuning import tune_score_threads
from store import BackgroundWriter, Store

STAGE_STREAMS = {"random": 10, "perturb": 11, "chain": 12}
"""step_rng streams of the smash stages at a checkpoint; any other strategy draws from 13."""
OTHER_STREAM = 13


def val_shard(sc: ScoreConfig, n_val: int) -> int:
    """Validation images one draw scores on: [score].val_images, or all (0)."""
    return min(sc.val_images, n_val) if sc.val_images > 0 else n_val


def resolve_checkpoint(workdir: Path, run_id: str, step: int | None = None) -> tuple[int, Path]:
    found = ckpt.step_checkpoints(checkpoint_dir(workdir, run_id))
    if not found:
        raise ScoreError(f"run {run_id} has no checkpoint in {checkpoint_dir(workdir, run_id)}; "
                         "train it first with `smash train`")
    if step is None:  # the newest that loads: a corrupt last file must not stop scoring
        s, p, _ = ckpt.newest_loadable(found)
        return s, p
    for s, p in found:
        if s == step:
            return s, p
    raise ScoreError(f"run {run_id} has no checkpoint at step {step}; "
                     f"available: {', '.join(str(s) for s, _ in found)}")


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint loaded for scoring: its step, file, config, model and data."""

    step: int
    path: Path
    cfg: Config
    model: SmashModel
    device: torch.device
    data: DataSplits


def load_checkpoint(workdir: Path, run_id: str, step: int | None, halving_min: int | None,
                    data: DataSplits | None) -> LoadedCheckpoint:
    step, path = resolve_checkpoint(workdir, run_id, step)
    cfg = Config.from_stored(ckpt.load(path)["config"])
    if halving_min is not None:
        cfg = cfg.replace(score={"halving_min": int(halving_min)})
    device = pick_device(cfg.device)
    model = load_model(path, device)
    tune_score_threads(model, workdir, device)
    return LoadedCheckpoint(step, path, cfg, model, device, data or load_data(cfg.data, cfg.seed))


@dataclass(frozen=True)
class Plan:
    """The strategy to run, the score calls it may make, and the calls the progress counts."""

    strategy: Strategy
    budget: int
    total: int


def plan_search(name: str, sc: ScoreConfig, archs: int | None, perturbations: int | None,
                chain: int | None, budget: int | None) -> Plan:
    """The named strategy with the run's settings; "smash" takes its stage sizes from [score].

    The smash stages each open by re-scoring their start (answered from the store), hence +2."""
    n_random = sc.archs if archs is None else archs
    if name != "smash":
        calls = budget if budget is not None else n_random
        return Plan(get_strategy(name), calls, budget or n_random)
    n_perturb = sc.perturb if perturbations is None else perturbations
    n_chain = sc.chain if chain is None else chain
    strategy = get_strategy(name, n_random=n_random, n_perturb=n_perturb, n_chain=n_chain,
                            mutation_rate=sc.mutation_rate, rescore_starts=True)
    total = n_random + n_perturb + n_chain + 2
    return Plan(strategy, total, total)


class ScoringPass:
    """One pass of scoring at a checkpoint: what the strategy asks is scored (or read back
    from the store), written through `writer`, counted, and the best full score kept.

    The values handed back to the strategy are the scores, except that a partial score
    (successive halving stopped the arch on fewer images) is +inf: never the best."""

    def __init__(self, run_id: str, step: int, data: DataSplits, sc: ScoreConfig,
                 runner: ScoringExecutor, writer: BackgroundWriter, store: Store, total: int,
                 bar: tqdm, on_progress: Callable[[float, str], None] | None,
                 should_stop: Callable[[], bool] | None, shared: bool = False):
        self.run_id, self.step, self.data, self.sc = run_id, step, data, sc
        self.runner, self.writer, self.total, self.bar = runner, writer, total, bar
        self.on_progress, self.should_stop = on_progress, should_stop
        self.store, self.shared = store, shared
        self.shard = val_shard(sc, len(data.val_y))
        self.done = store.run_scores(run_id, step)  # arch_id -> score_mean, for resume
        self.stopped = store.partial_scores(run_id, step)  # archs halving stopped early
        self.counts = {"scored": 0, "reused": 0, "seen": 0}
        self.best_score, self.best_arch = float("inf"), None

    def check_stop(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("scoring cancelled")

    def record(self, arch: Arch, stage: str, s: float, spread: float | None,
               images: int | None = None, first_draw: int = 0) -> float:
        """Write a fresh score (spread given) or count a stored one; track the best.

        A score on fewer images than the shard (an arch successive halving stopped
        early) is partial: flagged, never the best, and +inf to the strategy."""
        partial = (images is not None and images < self.shard) or (spread is None and arch.id in self.stopped)
        if spread is None:
            self.counts["reused"] += 1
        else:
            self.write(arch, stage, s, spread, self.shard if images is None else images, partial,
                       first_draw)
        # Ties break by arch id, as the leaderboard does, so "best" means one arch everywhere.
        best_id = self.best_arch.id if self.best_arch else ""
        if not partial and (s, arch.id) < (self.best_score, best_id):
            self.best_score, self.best_arch = s, arch
        self.counts["seen"] += 1
        self.report()
        return math.inf if partial else s

    def write(self, arch: Arch, stage: str, s: float, spread: float, images: int, partial: bool,
              first_draw: int) -> None:
        data, sc = self.data, self.sc
        self.writer.put("archs", [arch_row(self.run_id, arch, data.image_shape, data.num_classes)])
        self.writer.put("scores", [score_row(self.run_id, arch.id, self.step, stage, s, spread,
                                             sc.draws, images, partial, first_draw, sc.metric)])
        self.done[arch.id] = s
        self.counts["scored"] += 1

    def report(self) -> None:
        self.bar.update(1)
        self.bar.set_postfix(best=f"{self.best_score:.4f}")
        if self.on_progress is not None:
            seen = self.counts["seen"]
            self.on_progress(min(seen / self.total, 1.0),
                             f"{seen}/{self.total} archs, best {self.best_score:.4f}")

    def score(self, arch: Arch, stage: str) -> float:
        self.check_stop()
        if self.shared and stage == "random" and arch.id not in self.done:
            self.done.update(self.store.run_scores(self.run_id, self.step))  # a helper's scores
        if arch.id in self.done:
            return self.record(arch, stage, self.done[arch.id], None)
        mean, spread = self.runner.score(arch)
        return self.record(arch, stage, mean, spread)

    def batch(self, archs: list[Arch], stage: str) -> list[float]:
        """Score independent candidates at once. The random sample goes through successive
        halving when its rungs say so; other stages compare every candidate in full."""
        if stage == "random" and len(halving_rungs(self.sc.halving_min, self.sc.halving_eta,
                                                   self.shard)) > 1:
            return self.halving(archs, stage)
        return self.score_batch(archs, stage)

    def score_batch(self, archs: list[Arch], stage: str) -> list[float]:
        """All of `archs` (in parallel on Ray, results in any order); values in list order."""
        if not self.runner.parallel:
            return [self.score(a, stage) for a in archs]
        values, todo, seen, repeats = {}, [], set(), []
        for a in archs:
            if a.id in self.done:
                values[a.id] = self.record(a, stage, self.done[a.id], None)
            elif a.id in seen:
                repeats.append(a)
            else:
                todo.append(a)
                seen.add(a.id)
        for a, mean, spread in self.runner.score_many(todo):
            self.check_stop()
            values[a.id] = self.record(a, stage, mean, spread)
        for a in repeats:
            values[a.id] = self.record(a, stage, self.done[a.id], None)
        return [values[a.id] for a in archs]

    def halving(self, archs: list[Arch], stage: str) -> list[float]:
        """Successive halving: all on the first rung's images, the best 1/eta on the next...

        Rung r scores with draws r x draws.. (fresh noise and fresh images), so a survivor's
        score is not measured on the very images it was selected on. An arch's stored
        score is from the last rung it reached. How many survive each rung is fixed by the
        whole sample, so a resumed pass (the stored archs left out) keeps exactly the archs
        an uninterrupted one would have kept."""
        sc = self.sc
        rungs = halving_rungs(sc.halving_min, sc.halving_eta, self.shard)
        unique = list({a.id: a for a in archs}.values())
        values = {a.id: self.record(a, stage, self.done[a.id], None) for a in archs if a.id in self.done}
        alive = [a for a in unique if a.id not in self.done]
        for r, images in enumerate(rungs):
            found = {}
            for a, mean, spread in self.runner.score_many(alive, images, r * sc.draws):
                self.check_stop()
                found[a.id] = (mean, spread)
            ranked = sorted(alive, key=lambda a: (found[a.id][0], a.id))
            keep = 0 if r == len(rungs) - 1 else math.ceil(len(unique) / sc.halving_eta ** (r + 1))
            for a in ranked[keep:]:
                values[a.id] = self.record(a, stage, *found[a.id], images=images,
                                           first_draw=r * sc.draws)
            alive = ranked[:keep]
        return [values[a.id] for a in archs]

    def size(self, arch: Arch) -> float:
        return float(count_params(arch, self.data.image_shape[0], self.data.num_classes))

    def summary(self, elapsed: float) -> dict[str, Any]:
        scored = self.counts["scored"]
        return {"run_id": self.run_id, "checkpoint_step": self.step, "scored": scored,
                "reused": self.counts["reused"],
                "best_arch": self.best_arch.id if self.best_arch else None,
                "best_score": self.best_score, "seconds": round(elapsed, 2),
                "archs_per_min": round(60 * scored / max(elapsed, 1e-9), 2)}


def score_run(workdir: Path, store: Store, run_id: str, *, archs: int | None = None,
              checkpoint_step: int | None = None, perturbations: int | None = None,
              chain: int | None = None, show_progress: bool = True,
              on_progress: Callable[[float, str], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              data: DataSplits | None = None, strategy: str = "smash",
              budget: int | None = None, executor: ExecutorSpec | None = None,
              halving_min: int | None = None, probe: bool = False,
              shared: bool = False) -> dict[str, Any]:
    """Search with SMASH scores and stream every score into the store.

    The default strategy is the authors': `archs` random Archs, `perturbations` of the
    best, then a greedy `chain`. "evolution" (regularized evolution) and "pareto"
    (score against params) spend `budget` score calls instead (default: archs).
    With a Ray `executor`, independent candidates (the random sample, the perturbations)
    are scored in parallel on the cluster; this process alone writes the store.
    With `probe`, the run's probe set is scored at the checkpoint first (see probe_run).
    `shared`: a help_score process works on the random sample from its end; this pass reads
    the store before each arch of it and takes what the helper scored (the same scores).
    """
    get_strategy(strategy)  # an unknown name fails before any work
    ck = load_checkpoint(workdir, run_id, checkpoint_step, halving_min, data)
    if probe:
        score_checkpoint_probe(ck, store, run_id)
    sc = ck.cfg.score
    plan = plan_search(strategy, sc, archs, perturbations, chain, budget)
    runner = scoring(executor or ExecutorSpec(), lambda: Scorer.for_model(ck.model, ck.data, ck.device),
                     ck.path)
    bar = tqdm(total=plan.total, desc=f"score {run_id}@{ck.step}", unit="arch",
               disable=not show_progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    with BackgroundWriter(store) as writer:
        run = ScoringPass(run_id, ck.step, ck.data, sc, runner, writer, store, plan.total, bar,
                          on_progress, should_stop, shared)
        try:
            plan.strategy.run(ck.cfg.space, lambda stage: step_rng(
                ck.cfg.seed, ck.step, STAGE_STREAMS.get(stage, OTHER_STREAM)),
                run.score, run.size, plan.budget, run.batch)
            raced = {}
            if sc.race_top > 0:
                writer.flush()
                run.check_stop()
                raced = race_scores(store, writer, runner, run_id, ck.step, sc, run.check_stop,
                                    on_progress)
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


def probe_run(workdir: Path, store: Store, run_id: str, checkpoint_step: int | None = None,
              data: DataSplits | None = None) -> dict[str, Any]:
    """The probe set at one checkpoint, in a process of its own: what training does at each
    checkpoint, moved off the training process so training never waits for it."""
    ck = load_checkpoint(workdir, run_id, checkpoint_step, None, data)
    return {"run_id": run_id, "checkpoint_step": ck.step, "probe": score_checkpoint_probe(ck, store, run_id)}


def help_score(workdir: Path, store: Store, run_id: str, checkpoint_step: int | None = None,
               archs: int | None = None, should_stop: Callable[[], bool] | None = None,
               data: DataSplits | None = None) -> dict[str, Any]:
    """Score a smash pass's random sample from its end, beside the pass (score_run with
    `shared`) that scores it from the start, until the two meet; a second process on the
    pass's largest stage.

    Every score is the one the pass itself would write (a score depends only on the
    checkpoint, the arch and the draw), flushed to the store at once for the pass to read.
    The pass's own scores reach the store about once a second, so near the meeting point a
    few archs get scored by both (the store keeps one row). With successive halving the
    sample is not independent archs, and this helps with nothing."""
    ck = load_checkpoint(workdir, run_id, checkpoint_step, None, data)
    sc = ck.cfg.score
    shard = val_shard(sc, len(ck.data.val_y))
    if len(halving_rungs(sc.halving_min, sc.halving_eta, shard)) > 1:
        return {"run_id": run_id, "checkpoint_step": ck.step, "helped": 0}
    n = sc.archs if archs is None else archs
    rng = step_rng(ck.cfg.seed, ck.step, STAGE_STREAMS["random"])
    sample = list({a.id: a for a in random_archs(ck.cfg.space, rng, n)}.values())
    before = set(store.run_scores(run_id, ck.step))  # the probe set, a resumed pass
    scorer, helped = Scorer.for_model(ck.model, ck.data, ck.device), 0
    with BackgroundWriter(store) as writer:
        for arch in reversed(sample):
            if should_stop is not None and should_stop():
                raise Cancelled("scoring cancelled")
            if arch.id in before:
                continue
            if arch.id in store.run_scores(run_id, ck.step):
                break  # the pass got here: the rest is its
            mean, spread = scorer.score(arch)
            writer.put("archs", [arch_row(run_id, arch, ck.data.image_shape, ck.data.num_classes)])
            writer.put("scores", [score_row(run_id, arch.id, ck.step, "random", mean, spread, sc.draws,
                                            shard, False, 0, sc.metric)])
            writer.flush()
            helped += 1
    return {"run_id": run_id, "checkpoint_step": ck.step, "helped": helped}


def race_scores(store: Store, writer: BackgroundWriter, runner: ScoringExecutor, run_id: str,
                step: int, sc: ScoreConfig, check_stop: Callable[[], None],
                on_progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """The racing stage at one checkpoint: re-score the tied top with fresh draws.

    Starts from the stored scores, so a rerun (or a resumed job) continues the race from
    the draws already made; each round's figures are written as it ends."""
    frame = store.checkpoint_scores(run_id, step)
    frame = frame[~frame["partial"].fillna(False).astype(bool) & frame["score_mean"].notna()]
    frame = frame.head(max(sc.race_top, 1))
    tallies = {r.arch_id: Tally(int(r.draws), float(r.score_mean), float(r.score_std or 0.0),
                                int(r.first_draw or 0), int(r.race_rounds or 0))
               for r in frame.itertuples()}
    archs = {r.arch_id: Arch.from_json(r.arch_json) for r in frame.itertuples()}
    if len(tallies) < 2:
        return {}
    before = dict(tallies)

    def more(arch_id: str, first_draw: int) -> Tally:
        check_stop()
        mean, std = runner.score(archs[arch_id], None, first_draw)
        return Tally(sc.draws, mean, std)

    def on_round(rnd: int, ids: list[str], now: dict[str, Tally]) -> None:
        writer.put("raced", [raced_row(run_id, a, step, now[a], sc.metric) for a in ids])
        if on_progress is not None:
            on_progress(1.0, f"racing round {rnd}: {len(ids)} archs still tied with the leader")

    final = race(tallies, more, top=sc.race_top, max_draws=sc.race_max_draws, on_round=on_round)
    leader = min(final, key=lambda a: (final[a].mean, a))
    tied = tied_with_leader(final, sorted(final, key=lambda a: (final[a].mean, a)))
    return {"best_arch": leader, "best_score": final[leader].mean,
            "raced": sum(final[a].n > before[a].n for a in final), "tied_with_best": len(tied) - 1}
