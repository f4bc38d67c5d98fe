"""SMASH scores: validation error of an Arch with HyperNet-generated weights.

Each Arch is scored over several draws (fresh HyperNet noise, and a fresh validation
shard when `val_images` is below the split size); the score is the mean error, the
spread its standard deviation. Results stream into the store as they come, and a
rerun skips what is already stored, so a killed scoring pass resumes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from engine import checkpoint as ckpt
from engine.config import Config
from engine.data import DataSplits, load_data, normalize
from engine.device import autocast, memory_format, pick_device
from engine.executor import ExecutorSpec, scoring
from engine.network import count_flops, count_params
from engine.racing import Tally, race, tied_with_leader
from engine.rankstats import mean_interval
from engine.search import get_strategy, greedy_chain, perturb, random_archs
from engine.search_space import Arch
from engine.train_hypernet import Cancelled, SmashModel, load_model, step_rng, torch_gen
from engine.workdir import checkpoint_dir
from store import BackgroundWriter, Store


class ScoreError(ValueError):
    """Nothing to score: no run, or a run without checkpoints."""


class Scorer:
    """Scores Archs with one trained SmashModel on a fixed validation split."""

    def __init__(self, model: SmashModel, data: DataSplits, device: torch.device,
                 draws: int, val_images: int = 0, batch_size: int = 250, bn: str = "batch",
                 calib_images: int = 500):
        self.model, self.device, self.bn = model, device, bn
        self.draws, self.batch_size = draws, batch_size
        fmt = memory_format(device)
        self.val_x = normalize(data.val_x.to(device), data.mean, data.std).contiguous(memory_format=fmt)
        self.val_y = data.val_y.to(device)
        n = len(self.val_y)
        self.shard = n if val_images <= 0 else min(val_images, n)
        self.image_shape, self.num_classes = data.image_shape, data.num_classes
        self.calib_x = None
        if bn == "recalibrated":
            n_cal = min(calib_images, len(data.train_y))
            self.calib_x = normalize(data.train_x[:n_cal].to(device), data.mean, data.std)
            self.calib_x = self.calib_x.contiguous(memory_format=fmt)
        model.hyper.eval()
        model.net.eval()

    @classmethod
    def for_model(cls, model: SmashModel, data: DataSplits, device: torch.device,
                  bn: str | None = None) -> Scorer:
        """A Scorer with the model's own [score] settings (batch norm overridable)."""
        sc = model.cfg.score
        return cls(model, data, device, sc.draws, sc.val_images, sc.batch_size, bn or sc.bn,
                   sc.calib_images)

    @torch.no_grad()
    def errors(self, arch: Arch, images: int | None = None, first_draw: int = 0) -> list[float]:
        """Validation error of draws first_draw.., on `images` images per draw (default: the shard).

        Draw d has its own noise and reads its images from offset d x shard, so draws with
        other indices (a later halving rung, a racing round) see fresh noise and fresh images."""
        hyper = self.model.hyper
        enc, spans = hyper.layout.encode(arch)
        enc = enc.to(self.device)
        seed = int(arch.id[:8], 16)
        n = len(self.val_y)
        count = self.shard if images is None else max(1, min(images, self.shard))
        out = []
        for d in range(first_draw, first_draw + self.draws):
            g = torch_gen(self.model.cfg.seed, seed, 100 + d)
            noise = torch.randn((self.model.cfg.hypernet.noise_channels, *enc.shape[1:]), generator=g)
            start = (d * self.shard) % n
            idx = (torch.arange(count, device=self.device) + start) % n
            wrong = 0
            net = self.model.net
            with autocast(self.device, self.model.cfg.precision):
                weights = hyper.generate(enc, spans, noise.to(self.device))
                if self.calib_x is not None:
                    net.stats.collect()
                    for i in range(0, len(self.calib_x), self.batch_size):
                        net(self.calib_x[i: i + self.batch_size], arch, weights)
                    net.stats.fix()
                try:
                    for i in range(0, count, self.batch_size):
                        j = idx[i: i + self.batch_size]
                        logits = net(self.val_x[j], arch, weights)
                        wrong += int((logits.argmax(1) != self.val_y[j]).sum())
                finally:
                    net.stats.reset()
            out.append(wrong / count)
        return out

    def score(self, arch: Arch, images: int | None = None, first_draw: int = 0) -> tuple[float, float]:
        errs = np.asarray(self.errors(arch, images, first_draw))
        return float(errs.mean()), float(errs.std(ddof=1)) if len(errs) > 1 else 0.0


def arch_row(run_id: str, arch: Arch, image_shape: tuple[int, int, int], num_classes: int) -> dict:
    return {"run_id": run_id, "arch_id": arch.id, "arch_json": arch.to_json(),
            "params": count_params(arch, image_shape[0], num_classes),
            "flops": count_flops(arch, image_shape, num_classes),
            "depth": arch.depth, "n_layers": arch.n_layers}


def halving_rungs(first: int, eta: int, full: int) -> list[int]:
    """Validation images per draw at each successive-halving rung, ending at `full`.

    Each rung has eta times the images of the one before; a last step that would add
    less than the current rung goes straight to `full`."""
    if first <= 0 or first >= full:
        return [full]
    rungs = [first]
    while rungs[-1] < full:
        nxt = min(rungs[-1] * eta, full)
        rungs.append(full if full - nxt < rungs[-1] else nxt)
    return rungs


def probe_archs(cfg: Config) -> list[Arch]:
    """The run's probe set: the same architectures at every checkpoint."""
    rng = step_rng(cfg.seed, 0, 30)
    return list(random_archs(cfg.space, rng, cfg.score.probe))


def score_probe(scorer: Scorer, cfg: Config, run_id: str, step: int, writer: BackgroundWriter) -> None:
    """Score the probe set with the current weights, as stage "probe" at this checkpoint."""
    model = scorer.model
    model.hyper.eval()
    model.net.eval()
    try:
        for arch in probe_archs(cfg):
            mean, std = scorer.score(arch)
            writer.put("archs", [arch_row(run_id, arch, scorer.image_shape, scorer.num_classes)])
            writer.put("scores", [score_row(run_id, arch.id, step, "probe", mean, std, scorer.draws,
                                            scorer.shard)])
    finally:
        model.hyper.train()
        model.net.train()


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


ERROR_BOUNDS = (0.0, 1.0)
"""A SMASH score is an error rate: its interval is clipped to [0, 1]."""


def score_row(run_id: str, arch_id: str, step: int, stage: str, mean: float, std: float, draws: int,
              images: int, partial: bool = False, first_draw: int = 0) -> dict:
    """A scores row, with the 95% interval of its mean over the draws."""
    lo, hi = mean_interval(mean, std, draws, bounds=ERROR_BOUNDS)
    return {"run_id": run_id, "arch_id": arch_id, "checkpoint_step": step, "stage": stage,
            "score_mean": mean, "score_std": std, "draws": draws, "val_images": images,
            "score_lo": lo, "score_hi": hi, "partial": bool(partial), "first_draw": first_draw}


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


def raced_row(run_id: str, arch_id: str, step: int, t: Tally) -> dict:
    lo, hi = mean_interval(t.mean, t.std, t.n, bounds=ERROR_BOUNDS)
    return {"run_id": run_id, "arch_id": arch_id, "checkpoint_step": step, "score_mean": t.mean,
            "score_std": t.std, "draws": t.n, "score_lo": lo, "score_hi": hi, "race_rounds": t.rounds}
