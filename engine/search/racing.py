"""Racing at one checkpoint: re-score the archs tied with the leader with fresh draws
(core/racing.py decides who races), each round written as it ends, resumable."""

from __future__ import annotations

from typing import Any

from core.arch import Arch
from core.config import ScoreConfig
from core.control import Control
from core.racing import VERDICTS, Tally, race, verdicts
from engine.exec.contract import ScoringExecutor
from engine.scoring.scorer import raced_row
from store import BackgroundWriter, Store


def race_scores(store: Store, writer: BackgroundWriter, runner: ScoringExecutor, run_id: str,
                step: int, sc: ScoreConfig, control: Control) -> dict[str, Any]:
    """The racing stage at one checkpoint: re-score the unresolved top with fresh draws until
    each is separated from the leader or equivalent to it within the run's delta, or out of
    draws (core/racing.py).

    Starts from the stored scores, so a rerun (or a resumed job) continues the race from
    the draws already made; each round's figures are written as it ends."""
    frame = store.checkpoint_scores(run_id, step)
    frame = frame[~frame["partial"].fillna(False).astype(bool) & frame["score_mean"].notna()]
    tallies = {r.arch_id: Tally(int(r.draws), float(r.score_mean), float(r.score_std or 0.0),
                                int(r.first_draw or 0), int(r.race_rounds or 0))
               for r in frame.itertuples()}
    archs = {r.arch_id: Arch.from_json(r.arch_json) for r in frame.itertuples()}
    if len(tallies) < 2:
        return {}
    before = dict(tallies)

    def more(arch_id: str, first_draw: int) -> Tally:
        control.check("scoring cancelled")
        mean, std = runner.score(archs[arch_id], None, first_draw)
        return Tally(sc.draws, mean, std)

    def on_round(rnd: int, ids: list[str], now: dict[str, Tally]) -> None:
        writer.put("raced", [raced_row(run_id, a, step, now[a], sc.metric) for a in ids])
        control.progress(1.0, f"racing round {rnd}: {len(ids)} archs not yet resolved against the leader")

    delta = sc.indifference
    final = race(tallies, more, top=sc.race_top, max_draws=sc.race_max_draws, delta=delta, on_round=on_round)
    leader = min(final, key=lambda a: (final[a].mean, a))
    judged = verdicts(final, delta)
    counts = {v: sum(j == v for j in judged.values()) for v in VERDICTS if v != "leader"}
    return {"best_arch": leader, "best_score": final[leader].mean, "delta": delta,
            "raced": sum(final[a].n > before[a].n for a in final), "draws_spent": sum(
                final[a].n - before[a].n for a in final), **{f"raced_{v}": n for v, n in counts.items()}}
