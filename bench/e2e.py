"""The main command, timed: `smash up` on configs/demo.toml to the first ranked architecture on screen.

Starts `smash up` in a fresh workdir, opens the dashboard's Leaderboard in headless
Chromium and reloads it until a ranked architecture is drawn, then waits for every job
(the train job and, pipelined, the probe, score and helper jobs it queues) to finish
(`all_scored_s`: from starting the command to the last job's recorded end, every
architecture scored), stops everything with Ctrl-C (SIGINT) and checks nothing was
lost. While it runs, every process `smash up` starts is watched for its peak resident
memory (VmHWM; bench/procmem.py): `peak_rss_mb` holds the largest per kind (runner: the
job's process; engine; dashboard; up). The last line is a JSON object of the figures.

    python bench/e2e.py [--config configs/demo.toml] [--archs 200] [--port 8765]
                        [--threads N] [--cores N] [--jobs N]

`--threads N` sets SMASH_THREADS=N for the whole command (`runner_smash_threads` says
what the job's process got: the engine may split the cores its own way). `--cores N`
pins the command and all its children to N CPUs (sched_setaffinity), the honest
"N cores" measurement: compare `--cores 1` with the default. Without `--threads`, an
SMASH_THREADS or OMP_NUM_THREADS in this shell is not passed on, so the figures are the
engine's own choice. `--jobs` is passed to `smash up` (default: its own choice, two
slots on two or more cores, one on one core).
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
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))

from bench.procmem import TreeWatcher  # noqa: E402
from core.status import FINISHED  # noqa: E402
from store import Store, store_path  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
THREAD_VARS = ("SMASH_THREADS", "OMP_NUM_THREADS")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def command_env(threads: int | None) -> dict[str, str]:
    """The environment of `smash up`: this one, less thread settings unless `threads` says."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = str(ROOT)
    if threads is not None:
        env["SMASH_THREADS"] = str(threads)
    return env


def cpu_set(cores: int | None) -> set[int] | None:
    """The first `cores` CPUs this process may use, or None for no pinning."""
    if cores is None:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if not 1 <= cores <= len(allowed):
        raise SystemExit(f"--cores {cores}: this process may use {len(allowed)} CPU(s)")
    return set(allowed[:cores])


def start_up(args: argparse.Namespace, workdir: Path) -> subprocess.Popen:
    cpus = cpu_set(args.cores)
    # Pinned before exec, so the engine, its runners and the dashboard all inherit it.
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    return subprocess.Popen([sys.executable, "-m", "cli", "up", "--workdir", str(workdir),
                             "--config", args.config, "--archs", str(args.archs), "--port", str(args.port),
                             *(["--jobs", str(args.jobs)] if args.jobs else [])],
                            cwd=ROOT, env=command_env(args.threads), start_new_session=True,
                            preexec_fn=pin)


def since(t0: float) -> float:
    return round(time.monotonic() - t0, 1)


def wait_dashboard(up: subprocess.Popen, url: str, t0: float) -> float:
    while not healthy(url):
        if up.poll() is not None:
            raise SystemExit(f"smash up exited with {up.returncode}")
        time.sleep(0.5)
    return since(t0)


def wait_on_screen(url: str, t0: float) -> float:
    """Seconds from t0 until the Leaderboard draws a ranked architecture."""
    # A dev dependency that only this step needs: --help and bad arguments work without it.
    from playwright.sync_api import sync_playwright

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
        browser.close()
    return since(t0)


def screenshot(url: str, out: Path) -> None:
    """The Leaderboard as a user sees it once everything is scored, for docs/img/."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1500})
        page.goto(f"{url}/leaderboard")
        page.get_by_text("Recommended for final training").wait_for(timeout=120_000)
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=120_000)
        page.wait_for_timeout(2500)  # let the grid paint
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def all_finished(store: Store) -> pd.DataFrame | None:
    """Every job, once all have ended (a pipelined train job queues its score job just after
    it is recorded done, so wait for that too); None while any has work left."""
    jobs = store.jobs()
    if jobs.empty or not jobs["status"].isin(FINISHED).all():
        return None
    train = store.get_job(str(jobs[jobs["kind"] == "train"]["job_id"].iloc[-1]))
    if (train["params"] or {}).get("pipeline") and "score_job" not in (train["result"] or {}):
        return None
    return jobs


def wait_jobs_ended(store: Store) -> tuple[dict, dict]:
    """(the train job, the last job to end), once every job has ended."""
    while (jobs := all_finished(store)) is None:
        time.sleep(2)
    train = store.get_job(str(jobs[jobs["kind"] == "train"]["job_id"].iloc[-1]))
    last = max((store.get_job(str(j)) for j in jobs["job_id"]),
               key=lambda job: job.get("finished_at") or datetime.min)
    return train, last


def seconds_to_end(job: dict, started: datetime, t0: float) -> float:
    """Seconds from the command's start to the job's end as the store recorded it (the
    bench may look later: it is busy in the browser until the first ranked arch shows)."""
    finished = job.get("finished_at")
    if not isinstance(finished, datetime):
        return since(t0)
    return round((finished - started).total_seconds(), 1)


def job_figures(store: Store, train: dict) -> dict:
    result = train["result"] or {}
    run_id = result.get("run_id", store.latest_run_id())
    metrics = store.train_metrics(run_id)
    # Sequential: the train job scored and holds the summary; pipelined: its score job does.
    score = result.get("score") or {}
    if result.get("score_job"):
        score = store.get_job(result["score_job"])["result"] or {}
    figures = {"job_status": train["status"], "jobs": len(store.jobs()),
               "train_steps_per_s": round(float(metrics["steps_per_s"].mean()), 2),
               "train_seconds": round(float(metrics["elapsed_s"].sum()), 1),
               "archs_per_min": score.get("archs_per_min"), "best_score": score.get("best_score"),
               "scored": store.score_count(run_id)}
    if result.get("helper_job"):  # archs_per_min counts the score job's own archs only
        figures["helper_scored"] = (store.get_job(result["helper_job"])["result"] or {}).get("helped")
    return figures


def stop(up: subprocess.Popen) -> dict:
    t_stop = time.monotonic()
    if up.poll() is None:
        os.killpg(up.pid, signal.SIGINT)
        up.wait(timeout=120)
    return {"stop_s": since(t_stop), "up_exit_code": up.returncode}


def memory_figures(watcher: TreeWatcher) -> dict:
    runner_env = watcher.envs.get("runner") or {}
    return {"peak_rss_mb": {k: round(v) for k, v in sorted(watcher.peaks.items())},
            "runner_smash_threads": runner_env.get("SMASH_THREADS")}


def run(args: argparse.Namespace, workdir: Path) -> dict:
    url = f"http://127.0.0.1:{args.port}"
    t0, started = time.monotonic(), datetime.now(UTC).replace(tzinfo=None)  # the store's naive UTC
    up = start_up(args, workdir)
    figures: dict = {"threads": args.threads, "cores": args.cores or len(os.sched_getaffinity(0))}
    with TreeWatcher(up.pid) as watcher:
        try:
            figures["dashboard_up_s"] = wait_dashboard(up, url, t0)
            print(f"dashboard answering after {figures['dashboard_up_s']} s", flush=True)
            figures["first_ranked_arch_on_screen_s"] = wait_on_screen(url, t0)
            print(f"first ranked architecture on screen after {figures['first_ranked_arch_on_screen_s']} s",
                  flush=True)
            store = Store(store_path(workdir))
            train, last = wait_jobs_ended(store)
            figures["all_scored_s"] = seconds_to_end(last, started, t0)
            print(f"all architectures scored (train job {train['status']}) after "
                  f"{figures['all_scored_s']} s", flush=True)
            figures.update(job_figures(store, train))
            run_id = (train["result"] or {}).get("run_id", store.latest_run_id())
            figures["verdicts"] = store.verdict_counts(run_id)
            figures["delta"] = store.score_delta(run_id)
            if args.screenshot:
                screenshot(url, Path(args.screenshot))
                print(f"Leaderboard screenshot: {args.screenshot}", flush=True)
        finally:
            watcher.poll()  # the last look before the processes exit
            figures.update(stop(up))
    figures.update(memory_figures(watcher))
    print("peak resident memory (MB): "
          + ", ".join(f"{k} {v}" for k, v in figures["peak_rss_mb"].items()), flush=True)
    got = figures["runner_smash_threads"]
    if args.threads is not None and got != str(args.threads):
        # The engine sets its runners' SMASH_THREADS itself; say so rather than mislabel the figures.
        print(f"warning: --threads {args.threads} asked, the job's process got SMASH_THREADS={got}",
              flush=True)
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/demo.toml")
    p.add_argument("--archs", type=int, default=200)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--workdir", default=None)
    p.add_argument("--threads", type=int, default=None, help="SMASH_THREADS for the whole command")
    p.add_argument("--cores", type=int, default=None, help="pin the command to this many CPUs")
    p.add_argument("--jobs", type=int, default=None, help="smash up's --jobs (default: its own)")
    p.add_argument("--screenshot", default=None, help="save the Leaderboard once everything is scored here")
    args = p.parse_args()
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"--threads {args.threads}: must be at least 1")
    cpu_set(args.cores)  # a bad --cores fails before anything starts
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="smash-e2e-")) / "runs"
    print(json.dumps(run(args, workdir)))


if __name__ == "__main__":
    main()
