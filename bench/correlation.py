"""Report a correlation study: its figures, and its scatter plot as a PNG for docs/.

Reads a study written by `smash correlate` (default: the newest of the latest run),
prints SMASH score against true error per architecture and the rank statistics with
their bootstrap intervals, and renders the dashboard's score-vs-truth chart to a PNG
with headless Chromium. The last line is a JSON object of the figures.

    python bench/correlation.py --workdir runs [--study ID] [--png docs/img/correlation.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.charts import score_vs_truth  # noqa: E402
from engine.correlate import gather  # noqa: E402
from store import Store, store_path  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def render_png(fig, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "fig.html"
        fig.write_html(html, include_plotlyjs=True, full_html=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 900, "height": 520})
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg")
            page.screenshot(path=str(out))
            browser.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", required=True)
    p.add_argument("--run", default=None)
    p.add_argument("--study", default=None)
    p.add_argument("--png", default=str(ROOT / "docs" / "img" / "correlation.png"))
    args = p.parse_args()
    store = Store(store_path(args.workdir))
    run_id = args.run or store.latest_run_id()
    study = store.get_study(args.study) if args.study else None
    if study is None:
        studies = store.studies(run_id)
        if studies.empty:
            raise SystemExit(f"no studies in run {run_id}; run `smash correlate` first")
        study = store.get_study(str(studies.iloc[0]["study_id"]))
    cap = int(study["study_id"].rsplit("-m", 1)[1]) if "-m" in study["study_id"] else 0
    pairs = gather(store, run_id, study["arch_ids"], study["epochs"], study["seed"], cap)
    truth = store.score_vs_truth(run_id).set_index("arch_id")
    pairs["score_std"] = pairs["arch_id"].map(truth["score_std"]) if not truth.empty else 0.0
    pairs["params"] = pairs["arch_id"].map(truth["params"]) if not truth.empty else 0
    for _, r in pairs.sort_values("score_mean").iterrows():
        print(f"{r['arch_id']}  SMASH score {r['score_mean']:.4f}  true error {r['test_error']:.4f}")
    for m in study["metrics"] or []:
        print(f"{m['metric']:<18} {m['estimate']:+.3f}  95% CI [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]  n={m['n']}")
    render_png(score_vs_truth(pairs.dropna(subset=["test_error"])), Path(args.png))
    print(f"scatter plot: {args.png}")
    print(json.dumps({"study_id": study["study_id"], "run_id": run_id, "epochs": study["epochs"],
                      "steps_per_epoch": cap, "n": int(pairs["test_error"].notna().sum()),
                      "metrics": study["metrics"]}))


if __name__ == "__main__":
    main()
