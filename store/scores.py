"""Architectures, their SMASH scores, and the views the dashboard ranks them by.

An arch can be scored at several HyperNet checkpoints; every view uses each arch's
score from its latest checkpoint, so re-scoring at a later checkpoint supersedes the
old figure without deleting it. Queries are written for 10^6 scored archs per run: the
writer keeps that latest score, with the arch's sizes, in the board table (one row per
arch, see store/rows.py), so the leaderboard's first page is a top-N of one table with
the retrains joined to its rows only, the count is a filtered count, and the Pareto front
is one running min over (x, score) in sort order, never a pairwise comparison.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from core.board import SORT_KEYS
from core.config import Config
from core.metric import BOUNDS
from core.search import STAGES

from .base import StoreBase, check_choice, fetch_records, utcnow
from .db import Connection

SORT_SQL = {key: key for key in SORT_KEYS}
"""The board's sort keys (core.board) mapped to the SQL that implements them. The ORDER BY
text always comes from this table, never from the caller."""
PARETO_X = ("params", "flops")

# Each arch's score from its latest checkpoint, with its sizes: the board table, kept by
# the writer (store/rows.py), so no read ranks checkpoints or joins archs.
_SCORED = "run_id = $run_id AND checkpoint_step IS NOT NULL"

_FILTERS = """
      AND ($params_lo IS NULL OR params >= $params_lo)
      AND ($params_hi IS NULL OR params <= $params_hi)
      AND ($flops_lo IS NULL OR flops >= $flops_lo)
      AND ($flops_hi IS NULL OR flops <= $flops_hi)
      AND ($score_lo IS NULL OR score_mean >= $score_lo)
      AND ($score_hi IS NULL OR score_mean <= $score_hi)
      AND ($stages::TEXT[] IS NULL OR list_contains($stages::TEXT[], stage))"""

# The leader is the best full score with an interval (arg_min skips a NULL score_hi), and
# `spread` the run's per-draw spread pooled over its full scores, with the Student-t
# quantile for its degrees of freedom (core/racing.py's t_quantile, the same expansion).
_LEADER = """
leader AS (
    SELECT arch_id AS id, score_mean AS mean, score_lo AS lo, score_hi AS hi, draws FROM board
    WHERE """ + _SCORED + """ AND NOT partial AND score_hi IS NOT NULL
      AND score_mean IS NOT NULL AND NOT isnan(score_mean)
    ORDER BY score_mean, arch_id LIMIT 1
),
pool AS (
    SELECT sqrt(sum((draws - 1) * score_std * score_std) / sum(draws - 1)) AS sd, CAST(sum(draws - 1) AS DOUBLE) AS df
    FROM board WHERE """ + _SCORED + """ AND NOT partial AND draws > 1 AND score_std IS NOT NULL
      AND score_mean IS NOT NULL AND NOT isnan(score_mean)
),
spread AS (
    SELECT sd * (z + (z * z * z + z) / (4 * df) + (5 * z ^ 5 + 16 * z * z * z + 3 * z) / (96 * df * df)) AS tsd
    FROM pool, (SELECT CAST(1.959963984540054 AS DOUBLE) AS z)
)"""

# Latest finished retrain of each arch: its validation error is the "true error" the SMASH
# score is judged and selected by; its test error rides along, never selected on.
_TRUTH = """
truth AS (
    SELECT arch_id,
           arg_max(val_error, coalesce(finished_at, updated_at, created_at)) AS val_error,
           arg_max(test_error, coalesce(finished_at, updated_at, created_at)) AS test_error
    FROM retrains
    WHERE run_id = $run_id AND status = 'done' AND val_error IS NOT NULL
    GROUP BY arch_id
)"""

# Each arch judged against the leader as core/racing.py's verdicts judge a race. With the
# run's indifference zone $delta, each interval is its mean +- t x the pooled spread /
# sqrt(draws): separated (wholly above the leader's), equivalent (within delta of the
# leader's score, the leader's own half-width at most delta / 2), unresolved (neither);
# without, each arch's own interval decides tied (unresolved) or separated. Partial:
# halving stopped it early.
_HW = "(SELECT tsd FROM spread) / sqrt({draws})"
_VERDICT = """
    CASE WHEN l.partial THEN 'partial'
         WHEN l.arch_id = (SELECT id FROM leader) THEN 'leader'
         WHEN $delta IS NULL THEN CASE WHEN l.score_lo > (SELECT hi FROM leader) THEN 'separated'
                                       ELSE 'unresolved' END
         WHEN l.score_mean - """ + _HW.format(draws="l.draws") + """ >
              (SELECT mean FROM leader) + """ + _HW.format(draws="(SELECT draws FROM leader)") + """ THEN 'separated'
         WHEN """ + _HW.format(draws="(SELECT draws FROM leader)") + """ <= $delta / 2
              AND l.score_mean - """ + _HW.format(draws="l.draws") + """ >= (SELECT mean FROM leader) - $delta
              AND l.score_mean + """ + _HW.format(draws="l.draws") + """ <= (SELECT mean FROM leader) + $delta
              THEN 'equivalent'
         ELSE 'unresolved' END"""

# With a zone, the board shows the interval its verdicts judge by (mean +- t x the pooled
# spread / sqrt(draws)), so an "equivalent" row's interval is seen inside delta of the
# leader's score; without one (or for a partial score), each arch's own interval.
_POOLED = "$delta IS NOT NULL AND NOT l.partial AND (SELECT tsd FROM spread) IS NOT NULL"
_BOARD_COLUMNS = """
    l.arch_id, l.score_mean, l.score_std,
    CASE WHEN """ + _POOLED + """ THEN greatest(0.0, l.score_mean - """ + _HW.format(draws="l.draws") + """)
         ELSE l.score_lo END AS score_lo,
    CASE WHEN """ + _POOLED + """ THEN l.score_mean + """ + _HW.format(draws="l.draws") + """
         ELSE l.score_hi END AS score_hi,
    l.draws, l.val_images,
    l.partial, NOT l.partial AND l.score_lo <= (SELECT hi FROM leader) AS tied,""" + _VERDICT + """ AS verdict,
    l.race_rounds, l.params, l.flops, l.depth, l.n_layers, l.stage, l.checkpoint_step,
    t.val_error, t.test_error"""


def _delta(con: Connection, run_id: str) -> float | None:
    """The run's indifference zone, read on the caller's connection (a read takes one)."""
    row = con.execute("SELECT config FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if not row or not row[0]:
        return None
    try:
        return Config.from_stored(json.loads(row[0])).score.indifference
    except (ValueError, TypeError):  # a config this version cannot read: no zone, the older tie rule
        return None


def _board_page(order: str, by_truth: bool) -> str:
    """One leaderboard page. Sorted by a board column, the page is a top-N of the board
    alone and only its rows meet the retrains; sorted by val_error, every row must."""
    rows = "(SELECT l.*, t.val_error FROM board l LEFT JOIN truth t USING (arch_id))"
    page = (f"SELECT * FROM {rows if by_truth else 'board'} WHERE {_SCORED}{_FILTERS}"
            f" ORDER BY {order} LIMIT $limit OFFSET $offset")
    return (f"WITH{_LEADER},{_TRUTH},\npage AS ({page})\nSELECT * FROM (SELECT{_BOARD_COLUMNS}"
            f" FROM page l LEFT JOIN truth t ON t.arch_id = l.arch_id) ORDER BY {order}")


_COUNT = "SELECT count(*) FROM board WHERE " + _SCORED + _FILTERS

_FEATURES = ("WITH" + _TRUTH + "\nSELECT l.arch_id, l.score_mean, l.params, l.flops, t.val_error FROM board l "
             "LEFT JOIN truth t USING (arch_id) WHERE l." + _SCORED.replace(" AND ", " AND l.")
             + " AND NOT l.partial AND l.score_mean IS NOT NULL AND NOT isnan(l.score_mean) ORDER BY l.arch_id")

_VERDICTS = ("WITH" + _LEADER + "\nSELECT" + _VERDICT + " AS verdict, count(*) AS n FROM board l WHERE l."
             + _SCORED.replace(" AND ", " AND l.") + " GROUP BY verdict")

_EQUIVALENT = ("WITH" + _LEADER + ",\njudged AS (SELECT l.arch_id, l.score_mean, l.score_lo, l.score_hi, l.params, "
               "l.flops, l.draws," + _VERDICT + " AS verdict FROM board l WHERE l." + _SCORED.replace(" AND ", " AND l.")
               + ")\nSELECT * FROM judged WHERE verdict IN ('leader', 'equivalent') ORDER BY score_mean, arch_id")

# The front minimises score and x: per x the best score, kept where it beats every
# smaller x. Ordered by (x, score), the first row of each x holds its best, and it is on
# the front when it beats the running min of all rows before it; the later rows of its x
# are no better, so they never pass. Sorting 10^6 rows is the cost, so only candidates are
# sorted: x is cut into 1024 equal spans, and a point no better than the best of the spans
# before its own is dominated (or equalled) by a point of a smaller x, which is itself a
# candidate or so dominated in turn, so leaving it out changes no best and no running min.
# The archs at a front point are fetched back by (x, score).
_POINTS = """
    SELECT arch_id, score_mean, CASE WHEN $x = 'params' THEN params ELSE flops END AS x
    FROM board
    WHERE """ + _SCORED + """ AND score_mean IS NOT NULL AND NOT isnan(score_mean)
      AND ($partial OR NOT partial)"""

_FRONT = """
points AS NOT MATERIALIZED (SELECT * FROM (""" + _POINTS + """) WHERE x IS NOT NULL),
span AS (SELECT min(x) AS lo, (max(x) - min(x)) // 1024 + 1 AS width FROM points),
spans AS NOT MATERIALIZED (
    SELECT x, score_mean, (x - (SELECT lo FROM span)) // (SELECT width FROM span) AS cut
    FROM points
),
before AS (
    SELECT cut, min(min(score_mean)) OVER (
        ORDER BY cut ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS best
    FROM spans GROUP BY cut
),
candidates AS (
    SELECT x, score_mean FROM spans JOIN before USING (cut)
    WHERE before.best IS NULL OR score_mean < before.best
),
front AS (
    SELECT x, score_mean AS best FROM candidates
    WINDOW w AS (ORDER BY x, score_mean ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    QUALIFY min(score_mean) OVER w IS NULL OR score_mean < min(score_mean) OVER w
)"""


def _pareto(front_only: bool) -> str:
    join = "JOIN" if front_only else "LEFT JOIN"
    return (
        "WITH" + _FRONT + "\nSELECT p.arch_id, p.score_mean, p.x, f.x IS NOT NULL AS on_front"
        + " FROM points p " + join + " front f ON f.x = p.x AND f.best = p.score_mean"
        + " ORDER BY p.x, p.score_mean, p.arch_id"
    )


# After a bulk insert: the batch's board rows computed afresh from archs and scores.
_BULK_BOARD = """
INSERT INTO board
SELECT coalesce(a.run_id, l.run_id), coalesce(a.arch_id, l.arch_id),
       a.arch_id IS NOT NULL, a.params, a.flops, a.depth, a.n_layers,
       l.checkpoint_step, l.stage, l.score_mean, l.score_std, l.draws, l.val_images,
       l.score_lo, l.score_hi, coalesce(l.partial, false), l.race_rounds
FROM (SELECT * FROM archs
      WHERE run_id = $run_id AND arch_id IN (SELECT arch_id FROM scored_batch)) a
FULL JOIN (
    SELECT * FROM scores WHERE run_id = $run_id AND arch_id IN (SELECT arch_id FROM scored_batch)
    QUALIFY row_number() OVER (PARTITION BY arch_id ORDER BY checkpoint_step DESC) = 1
) l ON l.run_id = a.run_id AND l.arch_id = a.arch_id
ON CONFLICT (run_id, arch_id) DO UPDATE SET has_arch = EXCLUDED.has_arch,
    params = EXCLUDED.params, flops = EXCLUDED.flops, depth = EXCLUDED.depth,
    n_layers = EXCLUDED.n_layers, checkpoint_step = EXCLUDED.checkpoint_step,
    stage = EXCLUDED.stage, score_mean = EXCLUDED.score_mean, score_std = EXCLUDED.score_std,
    draws = EXCLUDED.draws, val_images = EXCLUDED.val_images, score_lo = EXCLUDED.score_lo,
    score_hi = EXCLUDED.score_hi, partial = EXCLUDED.partial, race_rounds = EXCLUDED.race_rounds
"""

_BULK_COLUMNS = (
    "arch_id",
    "checkpoint_step",
    "stage",
    "score_mean",
    "score_std",
    "draws",
    "val_images",
    "arch_json",
    "params",
    "flops",
    "depth",
    "n_layers",
)


def _range(name: str, bounds: tuple[float | None, float | None] | None) -> dict:
    lo, hi = bounds if bounds is not None else (None, None)
    return {f"{name}_lo": lo, f"{name}_hi": hi}


class ScoresMixin(StoreBase):
    def add_archs(self, rows: Sequence[dict]) -> None:
        """Architectures by (run_id, arch_id), the arch as a dict under "arch"; re-adding is a no-op."""
        self.add_rows({"archs": rows})

    def add_scores(self, rows: Sequence[dict]) -> None:
        """Scores by (run_id, arch_id, checkpoint_step); the first stage to score an arch wins."""
        self.add_rows({"scores": rows})

    def bulk_add_scored(self, run_id: str, frame: pd.DataFrame) -> None:
        """Insert archs and their scores from one DataFrame in one transaction.

        For synthetic data and imports: a DataFrame scan is several times faster than
        row dicts. Needs arch_id, checkpoint_step, stage, score_mean; the other
        columns of archs and scores are optional. Idempotent like add_archs/add_scores.
        """
        missing = {"arch_id", "checkpoint_step", "stage", "score_mean"} - set(frame.columns)
        if missing:
            raise ValueError(f"bulk_add_scored needs columns {sorted(missing)}")
        bad = set(frame["stage"].unique()) - set(STAGES)
        if bad:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {sorted(bad)}")
        batch = pd.DataFrame({c: frame[c] if c in frame else None for c in _BULK_COLUMNS})
        params = {"run_id": run_id, "now": utcnow()}
        with self._write() as con:
            con.register("scored_batch", batch)
            try:
                con.execute(
                    """
                    INSERT INTO archs (run_id, arch_id, arch_json, params, flops, depth, n_layers, created_at)
                    SELECT $run_id, arch_id, CAST(arch_json AS TEXT), CAST(params AS BIGINT),
                           CAST(flops AS BIGINT), CAST(depth AS INTEGER), CAST(n_layers AS INTEGER), $now
                    FROM scored_batch ON CONFLICT DO NOTHING
                    """,
                    params,
                )
                con.execute(
                    """
                    INSERT INTO scores (run_id, arch_id, checkpoint_step, stage, score_mean, score_std,
                                        draws, val_images, created_at)
                    SELECT $run_id, arch_id, CAST(checkpoint_step AS BIGINT), stage,
                           CAST(score_mean AS DOUBLE), CAST(score_std AS DOUBLE),
                           CAST(draws AS INTEGER), CAST(val_images AS INTEGER), $now
                    FROM scored_batch ON CONFLICT DO NOTHING
                    """,
                    params,
                )
                con.execute(_BULK_BOARD, {"run_id": run_id})
            finally:
                con.unregister("scored_batch")

    def run_scores(self, run_id: str, checkpoint_step: int) -> dict[str, float]:
        """arch_id -> score_mean at one checkpoint: lets a resumed search reuse its scores."""
        with self._read() as con:
            rows = con.execute(
                "SELECT arch_id, score_mean FROM scores WHERE run_id = ? AND checkpoint_step = ?",
                [run_id, checkpoint_step],
            ).fetchall()
        return {r[0]: float(r[1]) for r in rows}

    def partial_scores(self, run_id: str, checkpoint_step: int) -> set[str]:
        """Archs with a partial score at one checkpoint (successive halving stopped them
        before the last rung)."""
        with self._read() as con:
            rows = con.execute(
                "SELECT arch_id FROM scores WHERE run_id = ? AND checkpoint_step = ? AND partial",
                [run_id, checkpoint_step],
            ).fetchall()
        return {r[0] for r in rows}

    def checkpoint_scores(self, run_id: str, checkpoint_step: int) -> pd.DataFrame:
        """Every score at one checkpoint, best first: what racing starts from and resumes."""
        return self._df(
            """
            SELECT s.arch_id, s.stage, s.score_mean, s.score_std, s.draws, s.val_images,
                   s.score_lo, s.score_hi, s.partial, s.first_draw, s.race_rounds, a.arch_json
            FROM scores s LEFT JOIN archs a ON a.run_id = s.run_id AND a.arch_id = s.arch_id
            WHERE s.run_id = ? AND s.checkpoint_step = ?
            ORDER BY s.partial, s.score_mean, s.arch_id
            """,
            [run_id, checkpoint_step],
        )

    def score_count(self, run_id: str) -> int:
        """Number of distinct architectures scored in the run."""
        return int(
            self._scalar("SELECT count(*) FROM board WHERE " + _SCORED, {"run_id": run_id})
        )

    def _board_params(self, run_id, params, flops, score, stages) -> dict:
        if stages is not None:
            stages = [check_choice("stage", s, STAGES) for s in stages]
        return {
            "run_id": run_id,
            "stages": stages,
            **_range("params", params),
            **_range("flops", flops),
            **_range("score", score),
        }

    def leaderboard(
        self,
        run_id: str,
        *,
        sort: str = "score_mean",
        descending: bool = False,
        params: tuple[float | None, float | None] | None = None,
        flops: tuple[float | None, float | None] | None = None,
        score: tuple[float | None, float | None] | None = None,
        stages: Sequence[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> pd.DataFrame:
        """One page of ranked archs; ranges are inclusive (lo, hi), either end may be None.

        `rank` is the 1-based position in the requested order. Ties break by arch_id so
        pages never overlap; NULLs (an arch never retrained, say) sort last. `tied` marks
        archs whose score interval overlaps the leader's (the best full score): their order
        against the leader is not settled by the draws. `partial` marks halving-stopped scores.
        With an indifference zone, score_lo and score_hi are the interval the `verdict` judges
        by (the run's pooled spread), so an equivalent row's interval lies within delta of
        the leader's score.
        """
        if sort not in SORT_SQL:
            raise ValueError(f"sort must be one of {', '.join(SORT_SQL)}; got {sort!r}")
        order = SORT_SQL[sort] + (" DESC" if descending else " ASC") + " NULLS LAST, arch_id"
        if sort == "score_mean":
            # Successive halving leaves partial scores: an arch that reached the last rung
            # ranks above every arch stopped before it, and later rungs above earlier ones.
            order = ("partial DESC, val_images ASC, " if descending
                     else "partial ASC, val_images DESC, ") + order
        query = _board_page(order, by_truth=sort == "val_error")
        bind = self._board_params(run_id, params, flops, score, stages)
        with self._read() as con:
            frame = con.execute(query, {**bind, "limit": int(limit), "offset": int(offset),
                                        "delta": _delta(con, run_id)}).df()
        frame.insert(0, "rank", range(offset + 1, offset + 1 + len(frame)))
        frame["score_hi"] = frame["score_hi"].clip(upper=BOUNDS[self.score_metric(run_id)][1])
        return frame

    def score_delta(self, run_id: str) -> float | None:
        """The run's indifference zone ([score].delta or its metric's default; None: none)."""
        with self._read() as con:
            return _delta(con, run_id)

    def verdict_counts(self, run_id: str) -> dict[str, int]:
        """How many of the run's scored archs are the leader, equivalent to it, unresolved,
        separated from it, or partial (see the leaderboard's `verdict`)."""
        with self._read() as con:
            rows = con.execute(_VERDICTS, {"run_id": run_id, "delta": _delta(con, run_id)}).fetchall()
        return {verdict: int(n) for verdict, n in rows}

    def equivalent_set(self, run_id: str) -> pd.DataFrame:
        """The leader and every arch equivalent to it within the run's delta, best score first:
        what a recommendation is chosen from."""
        with self._read() as con:
            return con.execute(_EQUIVALENT, {"run_id": run_id, "delta": _delta(con, run_id)}).df()

    def board_features(self, run_id: str) -> pd.DataFrame:
        """Every fully scored arch of the run with what a learned ranker reads and fits to:
        arch_id, score_mean, params, flops, and val_error where it was retrained."""
        return self._df(_FEATURES, {"run_id": run_id})

    def leaderboard_count(
        self,
        run_id: str,
        *,
        params: tuple[float | None, float | None] | None = None,
        flops: tuple[float | None, float | None] | None = None,
        score: tuple[float | None, float | None] | None = None,
        stages: Sequence[str] | None = None,
    ) -> int:
        """How many archs pass the leaderboard's filters (for the pager)."""
        bind = self._board_params(run_id, params, flops, score, stages)
        return int(self._scalar(_COUNT, bind))

    def arch(self, run_id: str, arch_id: str) -> dict | None:
        """Everything known about one arch: the decoded arch under "arch", sizes, scores, retrains."""
        key = [run_id, arch_id]
        with self._read() as con:
            found = fetch_records(
                con, "SELECT * FROM archs WHERE run_id = ? AND arch_id = ?", key, ("arch_json",)
            )
            scores = fetch_records(
                con,
                "SELECT * FROM scores WHERE run_id = ? AND arch_id = ? ORDER BY checkpoint_step",
                key,
            )
            retrains = fetch_records(
                con,
                "SELECT * FROM retrains WHERE run_id = ? AND arch_id = ? ORDER BY created_at",
                key,
            )
        if not found and not scores:
            return None
        record = (
            found[0]
            if found
            else {
                "run_id": run_id,
                "arch_id": arch_id,
                "arch_json": None,
                "params": None,
                "flops": None,
                "depth": None,
                "n_layers": None,
                "created_at": None,
            }
        )
        record["arch"] = record.pop("arch_json")
        return {**record, "scores": scores, "retrains": retrains}

    def score_vs_truth(self, run_id: str, *, include_partial: bool = False) -> pd.DataFrame:
        """SMASH score against true (validation) error, for every arch with a finished retrain.

        Partial scores (halving stopped them early) are left out unless asked for."""
        return self._df(
            "WITH"
            + _TRUTH
            + """,
            latest AS (
                SELECT * FROM board
                WHERE """ + _SCORED + """ AND arch_id IN (SELECT arch_id FROM truth)
            )
            SELECT l.arch_id, l.score_mean, l.score_std, l.score_lo, l.score_hi, l.draws, l.partial,
                   t.val_error, t.test_error, l.params, l.flops
            FROM latest l JOIN truth t USING (arch_id)
            WHERE $partial OR NOT l.partial
            ORDER BY l.score_mean, l.arch_id
            """,
            {"run_id": run_id, "partial": bool(include_partial)},
        )

    def pareto(self, run_id: str, x: str = "params", *, front_only: bool = False,
               include_partial: bool = False) -> pd.DataFrame:
        """Scored archs against size, with on_front marking the non-dominated ones.

        The front minimises both score_mean and x; equal points are all on it. With
        front_only the rows off the front are not fetched (plots of 10^6 points need not).
        Partial scores are left out unless asked for.
        """
        check_choice("x", x, PARETO_X)
        frame = self._df(_pareto(bool(front_only)),
                         {"run_id": run_id, "x": x, "partial": bool(include_partial)})
        return frame.rename(columns={"x": x})
