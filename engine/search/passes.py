"""A scoring pass at one checkpoint: what the search strategy asks is scored (or read back
from the store), the random sample through successive halving when its rungs say so,
every score streamed into the store as it comes, and the best full score tracked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from core.arch import Arch
from core.config import ScoreConfig
from core.control import Control
from core.jobs import ScoreJob
from core.search import Strategy, get_strategy
from core.size import count_params
from engine.data.splits import DataSplits
from engine.exec.contract import ScoringExecutor
from engine.scoring.scorer import arch_row, halving_rungs, score_row
from engine.search.checkpoint import val_shard
from store import BackgroundWriter, Store

STAGE_STREAMS = {"random": 10, "perturb": 11, "chain": 12}
"""step_rng streams of the smash stages at a checkpoint; any other strategy draws from 13."""
OTHER_STREAM = 13


@dataclass(frozen=True)
class Plan:
    """The strategy to run, the score calls it may make, and the calls the progress counts."""

    strategy: Strategy
    budget: int
    total: int


def plan_search(job: ScoreJob, sc: ScoreConfig) -> Plan:
    """The job's strategy with the run's settings; "smash" takes its stage sizes from [score]
    where the job leaves them open.

    The smash stages each open by re-scoring their start (answered from the store), hence +2."""
    name, archs, budget = job.strategy or "smash", job.archs, job.budget
    n_random = sc.archs if archs is None else archs
    if name != "smash":
        calls = budget if budget is not None else n_random
        return Plan(get_strategy(name), calls, budget or n_random)
    n_perturb = sc.perturb if job.perturb is None else job.perturb
    n_chain = sc.chain if job.chain is None else job.chain
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
                 bar: tqdm, control: Control, shared: bool = False):
        self.run_id, self.step, self.data, self.sc = run_id, step, data, sc
        self.runner, self.writer, self.total, self.bar = runner, writer, total, bar
        self.control, self.store, self.shared = control, store, shared
        self.shard = val_shard(sc, len(data.val_y))
        self.done = store.run_scores(run_id, step)  # arch_id -> score_mean, for resume
        self.stopped = store.partial_scores(run_id, step)  # archs halving stopped early
        self.counts = {"scored": 0, "reused": 0, "seen": 0}
        self.best_score, self.best_arch = float("inf"), None

    def check_stop(self) -> None:
        self.control.check("scoring cancelled")

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
                                             sc.draws, images, partial=partial, first_draw=first_draw,
                                             metric=sc.metric)])
        self.done[arch.id] = s
        self.counts["scored"] += 1

    def report(self) -> None:
        self.bar.update(1)
        self.bar.set_postfix(best=f"{self.best_score:.4f}")
        seen = self.counts["seen"]
        self.control.progress(min(seen / self.total, 1.0), f"{seen}/{self.total} archs, best {self.best_score:.4f}")

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
