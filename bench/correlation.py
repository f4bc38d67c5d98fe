"""Report a correlation study: its figures, and its scatter plot as a PNG for docs/.

Reads a study written by `smash correlate` (default: the newest of the latest run),
prints SMASH score against true error per architecture and the rank statistics with
their bootstrap intervals, and renders the dashboard's score-vs-truth chart to a PNG
with headless Chromium. The last line is a JSON object of the figures.

    python bench/correlation.py --workdir runs [--study ID] [--png docs/img/correlation.png]
    python bench/correlation.py --workdir runs --probe [--png docs/img/probe.png]

--probe reports the run's probe set instead: Kendall tau of its ranking between
consecutive checkpoints, and, for probe archs already retrained, the Spearman rho of
each checkpoint's scores against their true errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))

from app.charts import probe_stability, score_vs_truth  # noqa: E402
from core.arch import Arch  # noqa: E402
from core.rankstats import correlation_table, kendall, rank_stability, spearman  # noqa: E402
from engine.model import find_checkpoint  # noqa: E402
from engine.scoring.refine import rescore  # noqa: E402
from engine.study import gather  # noqa: E402
from store import Store, store_path  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def render_png(fig, out: Path, width: int = 900, height: int = 520) -> None:
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "fig.html"
        fig.write_html(html, include_plotlyjs=True, full_html=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg")
            page.screenshot(path=str(out))
            browser.close()


def rescored(workdir: Path, store: Store, run_id: str, source: str, arch_ids: list[str],
             bn: str | None) -> list[float]:
    """SMASH scores of `run_id`'s archs `arch_ids` with the last checkpoint of run `source`
    and its scoring settings (batch norm overridden when `bn` is given)."""
    archs = [Arch.from_dict(store.arch(run_id, a)["arch"]) for a in arch_ids]
    draws = find_checkpoint(workdir, source).config.score.draws
    found = rescore(workdir, source, archs, draws, bn=bn)
    return [found[a.id].mean for a in archs]


def probe_report(store: Store, run_id: str, png: Path | None) -> dict:
    probe = store.probe_scores(run_id)
    if probe.empty:
        raise SystemExit(f"run {run_id} has no probe set ([score].probe = 0)")
    rows = rank_stability(probe["checkpoint_step"], probe["arch_id"], probe["score_mean"])
    stability = pd.DataFrame(rows, columns=["step", "previous_step", "kendall_tau", "n"])
    truth = store.score_vs_truth(run_id)[["arch_id", "val_error"]]
    joined = probe.merge(truth, on="arch_id")
    over = [{"step": int(step), "spearman": round(spearman(g["score_mean"], g["val_error"]), 3),
             "kendall": round(kendall(g["score_mean"], g["val_error"]), 3), "n": len(g)}
            for step, g in joined.groupby("checkpoint_step") if len(g) >= 3]
    print(f"probe set: {probe['arch_id'].nunique()} archs at {probe['checkpoint_step'].nunique()} checkpoints, "
          f"{joined['arch_id'].nunique()} retrained")
    for r in rows:
        print(f"  step {r['step']:>6} vs {r['previous_step']:>6}: Kendall tau {r['kendall_tau']:+.3f}")
    for r in over:
        print(f"  step {r['step']:>6}: Spearman rho vs true error {r['spearman']:+.3f}, "
              f"Kendall tau {r['kendall']:+.3f} (n={r['n']})")
    if png is not None:
        render_png(probe_stability(probe, stability, pd.DataFrame(over, columns=["step", "spearman", "kendall", "n"])),
                   png)
        print(f"probe chart: {png}")
    return {"run_id": run_id, "stability": [{k: (round(v, 3) if isinstance(v, float) else v)
                                             for k, v in r.items()} for r in rows],
            "vs_truth": over}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", required=True)
    p.add_argument("--run", default=None)
    p.add_argument("--study", default=None)
    p.add_argument("--png", default=str(ROOT / "docs" / "img" / "correlation.png"))
    p.add_argument("--rescore-bn", choices=["batch", "recalibrated"], default=None,
                   help="re-score the study's archs under this batch-norm setting and report the "
                        "correlations against the same true errors")
    p.add_argument("--rescore-run", default=None,
                   help="re-score the study's archs with this run's last checkpoint (a run in the "
                        "same workdir and search space, e.g. another HyperNet setting)")
    p.add_argument("--probe", action="store_true", help="report the run's probe set instead of a study")
    args = p.parse_args()
    store = Store(store_path(args.workdir))
    run_id = args.run or store.latest_run_id()
    if args.probe:
        png = Path(args.png) if args.png != p.get_default("png") else ROOT / "docs" / "img" / "probe.png"
        print(json.dumps(probe_report(store, run_id, png)))
        return
    study = store.get_study(args.study) if args.study else None
    if study is None:
        studies = store.studies(run_id)
        if studies.empty:
            raise SystemExit(f"no studies in run {run_id}; run `smash correlate` first")
        study = store.get_study(str(studies.iloc[0]["study_id"]))
    cap = int(study["study_id"].split("-m", 1)[1].split("-")[0]) if "-m" in study["study_id"] else 0
    seeds = int(study["study_id"].rsplit("-x", 1)[1]) if "-x" in study["study_id"] else 1
    pairs = gather(store, run_id, study["arch_ids"], study["epochs"],
                   [study["seed"] + i for i in range(seeds)], cap)
    truth = store.score_vs_truth(run_id).set_index("arch_id")
    pairs["score_std"] = pairs["arch_id"].map(truth["score_std"]) if not truth.empty else 0.0
    pairs["params"] = pairs["arch_id"].map(truth["params"]) if not truth.empty else 0
    for _, r in pairs.sort_values("score_mean").iterrows():
        print(f"{r['arch_id']}  SMASH score {r['score_mean']:.4f}  true (val) error {r['val_error']:.4f}")
    metrics = study["metrics"] or []
    for m in metrics["predictors"]["smash"] if isinstance(metrics, dict) else metrics:
        print(f"{m['metric']:<18} {m['estimate']:+.3f}  95% CI [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]  n={m['n']}")
    if args.rescore_bn or args.rescore_run:
        source = args.rescore_run or run_id
        pairs["score_mean"] = rescored(Path(args.workdir), store, run_id, source, list(pairs["arch_id"]),
                                       args.rescore_bn)
        table = correlation_table(pairs["score_mean"], pairs["val_error"], k=max(1, len(pairs) // 4))
        print(f"re-scored with the last checkpoint of {source}, bn = {args.rescore_bn or 'its own'}:")
        for m in table:
            print(f"{m['metric']:<18} {m['estimate']:+.3f}  95% CI [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]")
        study = {**study, "metrics": table, "bn": args.rescore_bn, "scored_by": source}
    else:
        render_png(score_vs_truth(pairs.dropna(subset=["val_error"])), Path(args.png))
        print(f"scatter plot: {args.png}")
    print(json.dumps({"study_id": study["study_id"], "run_id": run_id, "epochs": study["epochs"],
                      "steps_per_epoch": cap, "n": int(pairs["val_error"].notna().sum()),
                      "metrics": study["metrics"]}))


if __name__ == "__main__":
    main()
