"""The helper of a pipelined scoring pass: a second process on the pass's largest stage."""

from __future__ import annotations

from typing import Any

from core.control import QUIET, Control
from core.search import random_archs
from engine.runtime.rng import step_rng
from engine.scoring.scorer import Scorer, arch_row, halving_rungs, score_row
from engine.search.checkpoint import LoadedCheckpoint, val_shard
from engine.search.passes import STAGE_STREAMS
from store import BackgroundWriter, Store


def help_score(ck: LoadedCheckpoint, store: Store, run_id: str, archs: int | None = None,
               control: Control = QUIET) -> dict[str, Any]:
    """Score a smash pass's random sample from its end, beside the pass (score_run with
    `shared`) that scores it from the start, until the two meet; a second process on the
    pass's largest stage.

    Every score is the one the pass itself would write (a score depends only on the
    checkpoint, the arch and the draw), flushed to the store at once for the pass to read.
    The pass's own scores reach the store about once a second, so near the meeting point a
    few archs get scored by both (the store keeps one row). With successive halving the
    sample is not independent archs, and this helps with nothing."""
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
            control.check("scoring cancelled")
            if arch.id in before:
                continue
            if arch.id in store.run_scores(run_id, ck.step):
                break  # the pass got here: the rest is its
            mean, spread = scorer.score(arch)
            writer.put("archs", [arch_row(run_id, arch, ck.data.image_shape, ck.data.num_classes)])
            writer.put("scores", [score_row(run_id, arch.id, ck.step, "random", mean, spread, sc.draws,
                                            shard, metric=sc.metric)])
            writer.flush()
            helped += 1
    return {"run_id": run_id, "checkpoint_step": ck.step, "helped": helped}
