"""The main command, timed: `smash up` on configs/demo.toml to the first ranked architecture on screen.

Starts `smash up` in a fresh workdir, opens the dashboard's Leaderboard in headless
Chromium and reloads it until a ranked architecture is drawn, then waits for every job
(the train job and, pipelined, the probe and score jobs it queues) to finish, stops
everything with Ctrl-C (SIGINT) and checks nothing was lost. The last line is a JSON
object of the figures.

    python bench/e2e.py [--config configs/demo.toml] [--archs 200] [--port 8765] [--jobs N]

`--jobs` is passed to `smash up` (default: its own choice, 2 slots on 2+ cores). To time
the main command on one core against two: `taskset -c 0 python bench/e2e.py` then
`python bench/e2e.py`, on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from store import Store, store_path  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def all_finished(store: Store):
    """Every job, once all have ended (a pipelined train job queues its score job just after
    it is recorded done, so wait for that too); None while any has work left."""
    jobs = store.jobs()
    if jobs.empty or not jobs["status"].isin(["done", "failed", "cancelled"]).all():
        return None
    train = store.get_job(str(jobs[jobs["kind"] == "train"]["job_id"].iloc[-1]))
    if (train["params"] or {}).get("pipeline") and "score_job" not in (train["result"] or {}):
        return None
    return jobs


def main() -> None:
    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/demo.toml")
    p.add_argument("--archs", type=int, default=200)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--workdir", default=None)
    p.add_argument("--jobs", type=int, default=None, help="smash up's --jobs (default: its own)")
    args = p.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="smash-e2e-")) / "runs"
    url = f"http://127.0.0.1:{args.port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    up = subprocess.Popen([sys.executable, "-m", "cli", "up", "--workdir", str(workdir),
                           "--config", args.config, "--archs", str(args.archs), "--port", str(args.port),
                           *(["--jobs", str(args.jobs)] if args.jobs else [])],
                          cwd=ROOT, env=env, start_new_session=True)
    figures: dict[str, float] = {}
    try:
        while not healthy(url):
            if up.poll() is not None:
                raise SystemExit(f"smash up exited with {up.returncode}")
            time.sleep(0.5)
        figures["dashboard_up_s"] = round(time.monotonic() - t0, 1)
        print(f"dashboard answering after {figures['dashboard_up_s']} s", flush=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1200})
            while True:
                page.goto(f"{url}/leaderboard")
                try:
                    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=5000)
                    break
                except Exception:
                    time.sleep(5)
            figures["first_ranked_arch_on_screen_s"] = round(time.monotonic() - t0, 1)
            print(f"first ranked architecture on screen after {figures['first_ranked_arch_on_screen_s']} s",
                  flush=True)
            browser.close()
        store = Store(store_path(workdir))
        while (jobs := all_finished(store)) is None:
            time.sleep(2)
        figures["all_scored_s"] = round(time.monotonic() - t0, 1)
        figures["jobs"] = len(jobs)
        figures["failed_jobs"] = int((jobs["status"] != "done").sum())
        train = store.get_job(str(jobs[jobs["kind"] == "train"]["job_id"].iloc[-1]))
        result = train["result"] or {}
        metrics = store.train_metrics(result.get("run_id", store.latest_run_id()))
        figures["train_steps_per_s"] = round(float(metrics["steps_per_s"].mean()), 2)
        figures["train_seconds"] = round(float(metrics["elapsed_s"].sum()), 1)
        # Sequential: the train job scored and holds the summary; pipelined: its score job does.
        score = result.get("score") or {}
        if result.get("score_job"):
            score = store.get_job(result["score_job"])["result"] or {}
        if result.get("helper_job"):  # archs_per_min above counts the score job's own only
            figures["helper_scored"] = (store.get_job(result["helper_job"])["result"] or {}).get("helped")
        figures["archs_per_min"] = score.get("archs_per_min")
        figures["best_score"] = score.get("best_score")
        figures["scored"] = store.score_count(result.get("run_id", store.latest_run_id()))
    finally:
        t_stop = time.monotonic()
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGINT)
            up.wait(timeout=120)
        figures["stop_s"] = round(time.monotonic() - t_stop, 1)
        figures["up_exit_code"] = up.returncode
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
