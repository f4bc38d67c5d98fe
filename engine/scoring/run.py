"""score_run: rank a run's architectures with the registered strategies, halving and racing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.arch import Arch
from core.config import Config
from core.errors import Cancelled
from core.racing import Tally, race, tied_with_leader
from core.search import get_strategy, greedy_chain, perturb, random_archs
from engine.data.splits import DataSplits, load_data
from engine.exec.executor import ExecutorSpec, scoring
from engine.model import load_model
from engine.nets.size import count_params
from engine.runtime import checkpoint as ckpt
from engine.runtime.device import pick_device
from engine.runtime.rng import step_rng
from engine.runtime.workdir import checkpoint_dir
from engine.scoring.scorer import ScoreError, Scorer, arch_row, halving_rungs, raced_row, score_row
from store import BackgroundWriter, Store


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


def score_run(workdir: Path, store: Store, run_id: str, *, archs: int | None = None,
              checkpoint_step: int | None = None, perturbations: int | None = None,
              chain: int | None = None, show_progress: bool = True,
              on_progress: Callable[[float, str], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              data: DataSplits | None = None, strategy: str = "smash",
              budget: int | None = None, executor: ExecutorSpec | None = None,
              halving_min: int | None = None) -> dict[str, Any]:
    """Search with SMASH scores and stream every score into the store.

    The default strategy is the authors': `archs` random Archs, `perturbations` of the
    best, then a greedy `chain`. "evolution" (regularized evolution) and "pareto"
    (score against params) spend `budget` score calls instead (default: archs).
    With a Ray `executor`, independent candidates (the random sample, the perturbations)
    are scored in parallel on the cluster; this process alone writes the store.
    """
    get_strategy(strategy)  # an unknown name fails before any work
    step, path = resolve_checkpoint(workdir, run_id, checkpoint_step)
    cfg = Config.from_stored(ckpt.load(path)["config"])
    if halving_min is not None:
        cfg = cfg.replace(score={"halving_min": int(halving_min)})
    device = pick_device(cfg.device)
    model = load_model(path, device)
    data = data or load_data(cfg.data, cfg.seed)
    sc = cfg.score
    n_random = sc.archs if archs is None else archs
    n_perturb = sc.perturb if perturbations is None else perturbations
    n_chain = sc.chain if chain is None else chain
    spec = executor or ExecutorSpec()
    runner = scoring(spec, lambda: Scorer.for_model(model, data, device), path)
    shard = min(sc.val_images, len(data.val_y)) if sc.val_images > 0 else len(data.val_y)

    done = store.run_scores(run_id, step)  # arch_id -> score_mean, for resume
    stopped = store.partial_scores(run_id, step)  # archs halving stopped early
    total = n_random + n_perturb + n_chain + 2 if strategy == "smash" else (budget or n_random)
    bar = tqdm(total=total, desc=f"score {run_id}@{step}", unit="arch",
               disable=not show_progress, dynamic_ncols=True)
    counts = {"scored": 0, "reused": 0, "seen": 0}
    best: dict[str, Any] = {"score": float("inf"), "arch": None}
    t0 = time.perf_counter()

    with BackgroundWriter(store) as writer:
        def check_stop() -> None:
            if should_stop is not None and should_stop():
                raise Cancelled("scoring cancelled")

        def record(arch: Arch, stage: str, s: float, spread: float | None,
                   images: int | None = None, first_draw: int = 0) -> float:
            """Write a fresh score (spread given) or count a stored one; track the best.

            A score on fewer images than the shard (an arch successive halving stopped
            early) is partial: flagged, and never the best."""
            partial = (images is not None and images < shard) or (spread is None and arch.id in stopped)
            if spread is None:
                counts["reused"] += 1
            else:
                writer.put("archs", [arch_row(run_id, arch, data.image_shape, data.num_classes)])
                writer.put("scores", [score_row(run_id, arch.id, step, stage, s, spread, sc.draws,
                                                shard if images is None else images, partial,
                                                first_draw)])
                done[arch.id] = s
                counts["scored"] += 1
            # Ties break by arch id, as the leaderboard does, so "best" means one arch everywhere.
            if not partial and (s, arch.id) < (best["score"], best["arch"].id if best["arch"] else ""):
                best.update(score=s, arch=arch)
            counts["seen"] += 1
            bar.update(1)
            bar.set_postfix(best=f"{best['score']:.4f}")
            if on_progress is not None:
                on_progress(min(counts["seen"] / total, 1.0),
                            f"{counts['seen']}/{total} archs, best {best['score']:.4f}")
            return s

        def score_fn(arch: Arch, stage: str) -> float:
            check_stop()
            if arch.id in done:
                return record(arch, stage, done[arch.id], None)
            mean, spread = runner.score(arch)
            return record(arch, stage, mean, spread)

        def score_batch(archs: list[Arch], stage: str) -> list[float]:
            """Score independent candidates at once (in parallel on Ray), in any order."""
            if not runner.parallel:
                return [score_fn(a, stage) for a in archs]
            todo, seen, repeats = [], set(), []
            for a in archs:
                if a.id in done:
                    record(a, stage, done[a.id], None)
                elif a.id in seen:
                    repeats.append(a)
                else:
                    todo.append(a)
                    seen.add(a.id)
            for a, mean, spread in runner.score_many(todo):
                check_stop()
                record(a, stage, mean, spread)
            for a in repeats:
                record(a, stage, done[a.id], None)
            return [done[a.id] for a in archs]

        def halving_batch(archs: list[Arch], stage: str) -> None:
            """Successive halving: all on the first rung's images, the best 1/eta on the next...

            Rung r scores with draws r x draws.. (fresh noise and fresh images), so a survivor's
            score is not measured on the very images it was selected on. An arch's stored
            score is from the last rung it reached. How many survive each rung is fixed by the
            whole sample, so a resumed pass (the stored archs left out) keeps exactly the archs
            an uninterrupted one would have kept."""
            rungs = halving_rungs(sc.halving_min, sc.halving_eta, shard)
            unique = list({a.id: a for a in archs}.values())
            for a in archs:
                if a.id in done:
                    record(a, stage, done[a.id], None)
            alive = [a for a in unique if a.id not in done]
            for r, images in enumerate(rungs):
                last = r == len(rungs) - 1
                found = {}
                for a, mean, spread in runner.score_many(alive, images, r * sc.draws):
                    check_stop()
                    found[a.id] = (mean, spread)
                ranked = sorted(alive, key=lambda a: (found[a.id][0], a.id))
                keep = 0 if last else math.ceil(len(unique) / sc.halving_eta ** (r + 1))
                for a in ranked[keep:]:
                    record(a, stage, *found[a.id], images=images, first_draw=r * sc.draws)
                alive = ranked[:keep]

        try:
            if strategy == "smash":
                sample = list(random_archs(cfg.space, step_rng(cfg.seed, step, 10), n_random))
                if len(halving_rungs(sc.halving_min, sc.halving_eta, shard)) > 1:
                    halving_batch(sample, "random")
                else:
                    score_batch(sample, "random")
                if best["arch"] is not None and (n_perturb or n_chain):
                    top, _ = perturb(best["arch"], cfg.space, step_rng(cfg.seed, step, 11), n_perturb,
                                     score_fn, score_batch, sc.mutation_rate)
                    greedy_chain(top, cfg.space, step_rng(cfg.seed, step, 12), n_chain, score_fn,
                                 sc.mutation_rate)
            else:
                shape = data.image_shape

                def size_fn(arch: Arch) -> float:
                    return float(count_params(arch, shape[0], data.num_classes))

                get_strategy(strategy).run(cfg.space, step_rng(cfg.seed, step, 13), score_fn, size_fn,
                                           budget if budget is not None else n_random)
            raced = {}
            if sc.race_top > 0:
                writer.flush()
                check_stop()
                raced = race_scores(store, writer, runner, run_id, step, sc, check_stop, on_progress)
        finally:
            runner.close()
    bar.close()
    elapsed = time.perf_counter() - t0
    summary = {"run_id": run_id, "checkpoint_step": step, "scored": counts["scored"],
               "reused": counts["reused"], "best_arch": best["arch"].id if best["arch"] else None,
               "best_score": best["score"], "seconds": round(elapsed, 2),
               "archs_per_min": round(60 * counts["scored"] / max(elapsed, 1e-9), 2)}
    return {**summary, **raced}


def race_scores(store: Store, writer: BackgroundWriter, runner: Any, run_id: str, step: int,
                sc: Any, check_stop: Callable[[], None],
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
        writer.put("raced", [raced_row(run_id, a, step, now[a]) for a in ids])
        if on_progress is not None:
            on_progress(1.0, f"racing round {rnd}: {len(ids)} archs still tied with the leader")

    final = race(tallies, more, top=sc.race_top, max_draws=sc.race_max_draws, on_round=on_round)
    leader = min(final, key=lambda a: (final[a].mean, a))
    tied = tied_with_leader(final, sorted(final, key=lambda a: (final[a].mean, a)))
    return {"best_arch": leader, "best_score": final[leader].mean,
            "raced": sum(final[a].n > before[a].n for a in final), "tied_with_best": len(tied) - 1}
