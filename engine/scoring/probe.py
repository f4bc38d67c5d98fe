"""The probe set: fixed architectures scored at each checkpoint to watch the ranking settle."""

from __future__ import annotations

from core.arch import Arch
from core.config import Config
from core.search import PROBE_STAGE, random_archs
from engine.runtime.rng import step_rng
from engine.scoring.scorer import Scorer, arch_row, score_row
from store import BackgroundWriter


def probe_archs(cfg: Config) -> list[Arch]:
    """The run's probe set: the same architectures at every checkpoint."""
    rng = step_rng(cfg.seed, 0, 30)
    return list(random_archs(cfg.space, rng, cfg.score.probe))


def score_probe(scorer: Scorer, cfg: Config, run_id: str, step: int, writer: BackgroundWriter) -> None:
    """Score the probe set with the current weights, as the probe stage at this checkpoint."""
    for arch in probe_archs(cfg):
        mean, std = scorer.score(arch)
        writer.put("archs", [arch_row(run_id, arch, scorer.image_shape, scorer.num_classes)])
        writer.put("scores", [score_row(run_id, arch.id, step, PROBE_STAGE, mean, std, scorer.draws,
                                        scorer.shard, metric=scorer.metric)])
