"""Refining stored SMASH scores: more draws for chosen architectures.

A study (engine/study.py, bench/fidelity.py) compares the SMASH scores of a few dozen
architectures with their retrained error. A search scores thousands cheaply (the demo: 2
draws of 500 images, about 1.5 points of binomial noise), which is enough to find the
tail but not to order archs whose scores lie within a point of each other. Refining gives
each chosen arch's latest full score fresh draws (new HyperNet noise, the next validation
shards) until it has `draws` of them. The pooled figures are returned, not stored: the
run's board keeps the search's own scores, so the archs a study picks from it stay the
same when the study is run again. The draws are seeded, so a rerun gives the same figures.
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.arch import Arch
from core.control import QUIET, Control
from core.racing import Tally
from engine.data.splits import load_data
from engine.model import find_checkpoint
from engine.runtime.device import pick_device
from engine.scoring.scorer import ScoreError, Scorer
from store import Store


def stored_tallies(store: Store, run_id: str, arch_ids: list[str]) -> dict[str, tuple[int, Tally, Arch]]:
    """Each arch's latest full score as (checkpoint step, Tally, Arch); archs without one are left out."""
    out = {}
    for arch_id in arch_ids:
        rec = store.arch(run_id, arch_id)
        rows = [s for s in (rec or {}).get("scores", [])
                if s.get("score_mean") is not None and not s.get("partial")]
        if not rows or rec.get("arch") is None:
            continue
        s = rows[-1]
        tally = Tally(int(s["draws"]), float(s["score_mean"]), float(s["score_std"] or 0.0),
                      int(s.get("first_draw") or 0), int(s.get("race_rounds") or 0))
        out[arch_id] = (int(s["checkpoint_step"]), tally, Arch.from_dict(rec["arch"]))
    return out


def refine_scores(workdir: Path, store: Store, run_id: str, arch_ids: list[str], draws: int,
                  control: Control = QUIET, *, device: torch.device | None = None) -> dict[str, Tally]:
    """Each arch's latest full score topped up to `draws` draws (arch id -> Tally); archs
    without a full score are left out, archs with `draws` or more are returned as stored.
    `device` defaults to the run's own choice (CUDA where there is one)."""
    if draws < 1:
        raise ScoreError(f"draws {draws}: a refined score needs at least 1 draw")
    found = stored_tallies(store, run_id, arch_ids)
    out = {a: v[1] for a, v in found.items()}
    todo = {a: v for a, v in found.items() if v[1].n < draws}
    scorers: dict[int, Scorer] = {}
    for i, (arch_id, (step, tally, arch)) in enumerate(sorted(todo.items())):
        control.check("refining stopped; the scores refined so far are not kept, the retrains are")
        if step not in scorers:
            scorers[step] = _scorer_at(workdir, run_id, step, device)
        errs = torch.tensor(scorers[step].errors(arch, None, tally.next_draw, draws - tally.n),
                            dtype=torch.float64)
        fresh = Tally(len(errs), float(errs.mean()), float(errs.std()) if len(errs) > 1 else 0.0)
        out[arch_id] = tally.merge(fresh)
        control.progress((i + 1) / len(todo), f"refined {i + 1}/{len(todo)} scores to {draws} draws")
    return out


def _scorer_at(workdir: Path, run_id: str, step: int, device: torch.device | None) -> Scorer:
    """A Scorer with the run's own settings on its checkpoint at `step`."""
    ck = find_checkpoint(workdir, run_id, step)
    device = device or pick_device(ck.config.device)
    model = ck.model(device)
    return Scorer.for_model(model, load_data(model.cfg.data, model.cfg.seed), device)


def rescore(workdir: Path, run_id: str, archs: list[Arch], draws: int, *, metric: str | None = None,
            bn: str | None = None, device: torch.device | None = None) -> dict[str, Tally]:
    """`archs` scored afresh at the run's newest checkpoint over draws 0.. draws-1 (so the
    first are the search's own when the settings match), by `metric` and with batch norm
    `bn` where given (else the run's): to compare one HyperNet's score in another metric, or
    several HyperNets on the same archs. Nothing is stored."""
    if draws < 1:
        raise ScoreError(f"draws {draws}: a score needs at least 1 draw")
    ck = find_checkpoint(workdir, run_id)
    device = device or pick_device(ck.config.device)
    model = ck.model(device)
    scorer = Scorer.for_model(model, load_data(model.cfg.data, model.cfg.seed), device, bn=bn, metric=metric)
    out = {}
    for arch in archs:
        errs = torch.tensor(scorer.errors(arch, draws=draws), dtype=torch.float64)
        out[arch.id] = Tally(len(errs), float(errs.mean()), float(errs.std()) if len(errs) > 1 else 0.0)
    return out
