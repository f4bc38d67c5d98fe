"""Many readers at once: browser tabs on the Leaderboard and a shell loop of `smash top --json`,
while a score job streams into the same store.

A store holds a run with --archs scored architectures (bench/dashboard.py's synthetic
board) and a smoke-size run of configs/smoke.toml, trained here, whose score job (`smash
score`, --score-archs archs) writes rows the whole time. --tabs browser contexts (one
headless Chromium) open the big run's Leaderboard again and again and time each load to
its first table row; one shell loop runs `smash top --json` on the big run. Reported:
loads and reads made, errors a tab showed (a Streamlit exception or error box), failed
shell reads, and the p50 and p95 times to the first Leaderboard row. Goal: 0 errors shown,
0 failed reads.

    python bench/readers.py [--archs 100000] [--tabs 10] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.dashboard import CHROMIUM, CHROMIUM_ARGS, RUN_ID, fill  # noqa: E402
from cli.dashboard import serve_in_background, stop_server  # noqa: E402
from store import Store, store_path  # noqa: E402

ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def smash(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)


def scoring_run(workdir: Path, archs: int) -> subprocess.Popen:
    """Train the smoke config in `workdir`, then start its score job; returns the job's process."""
    cfg = workdir / "smoke.toml"
    cfg.write_text((ROOT / "configs" / "smoke.toml").read_text().replace('name = "smoke"', 'name = "streaming"'))
    trained = smash("train", "--config", str(cfg), "--workdir", str(workdir), "--quiet", "--json")
    if trained.returncode != 0:
        raise SystemExit(f"training the streaming run failed: {trained.stderr[-2000:]}")
    run_id = json.loads(trained.stdout.strip().splitlines()[-1])["run_id"]
    return subprocess.Popen([sys.executable, "-m", "cli", "score", "--workdir", str(workdir), "--run", run_id,
                             "--archs", str(archs), "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def shell_loop(workdir: Path, stop: threading.Event, out: dict) -> None:
    while not stop.is_set():
        proc = smash("top", "--workdir", str(workdir), "--run", RUN_ID, "--json", "--limit", "50")
        ok = proc.returncode == 0 and json.loads(proc.stdout)["total"] > 0
        out["reads"] += 1
        if not ok:
            out["failed"] += 1
            out["errors"].append(proc.stderr.strip()[-300:])


async def tab_loop(browser, url: str, top_arch: str, deadline: float, out: dict) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    while time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            await page.goto(f"{url}/leaderboard?run={RUN_ID}")
            await page.wait_for_function(
                """id => [...document.querySelectorAll('[data-testid="stDataFrame"] td')]
                         .some(td => td.textContent === id)""", arg=top_arch, timeout=120_000)
            out["times"].append(time.perf_counter() - start)
            shown = await page.locator(ERRORS).all_inner_texts()
            if shown:
                out["shown"].append(shown[0][:300])
        except Exception as exc:  # noqa: BLE001 - a load that never drew counts as an error shown
            out["shown"].append(f"{type(exc).__name__}: {str(exc)[:200]}")
    await context.close()


async def tabs(url: str, top_arch: str, n: int, seconds: float, out: dict) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(tab_loop(browser, url, top_arch, deadline, out) for _ in range(n)))
        await browser.close()


def run(args: argparse.Namespace, workdir: Path) -> dict:
    store, _ = fill(workdir, args.archs)
    top_arch = str(store.leaderboard(RUN_ID, limit=1).iloc[0]["arch_id"])
    scorer = scoring_run(workdir, args.score_archs)
    proc, url = serve_in_background(workdir, workdir / "streamlit.log")
    shell = {"reads": 0, "failed": 0, "errors": []}
    browser = {"times": [], "shown": []}
    stop = threading.Event()
    loop = threading.Thread(target=shell_loop, args=(workdir, stop, shell))
    try:
        loop.start()
        asyncio.run(tabs(url, top_arch, args.tabs, args.seconds, browser))
    finally:
        stop.set()
        loop.join(timeout=120)
        stop_server(proc)
        still_scoring = scorer.poll() is None
        scorer.terminate()
        scorer.wait(timeout=60)
    times = np.array(browser["times"]) if browser["times"] else np.array([np.nan])
    streamed = Store(store_path(workdir)).score_count(Store(store_path(workdir)).latest_run_id())
    return {"archs": args.archs, "tabs": args.tabs, "seconds": args.seconds, "loads": len(browser["times"]),
            "errors_shown": len(browser["shown"]), "shell_reads": shell["reads"], "failed_reads": shell["failed"],
            "first_row_p50_s": round(float(np.percentile(times, 50)), 3),
            "first_row_p95_s": round(float(np.percentile(times, 95)), 3),
            "streamed_scores": streamed, "score_job_still_streaming_at_end": still_scoring,
            "examples": {"shown": browser["shown"][:3], "shell": shell["errors"][:3]}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=100_000)
    p.add_argument("--tabs", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--score-archs", type=int, default=3000, help="archs the streaming score job scores")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="smash-readers-") as tmp:
        out = run(args, Path(tmp))
    print(f"{out['tabs']} tabs and a shell loop for {out['seconds']:.0f} s beside a streaming score job: "
          f"{out['loads']} Leaderboard loads, {out['errors_shown']} errors shown; {out['shell_reads']} "
          f"`smash top` reads, {out['failed_reads']} failed; first row p50 {out['first_row_p50_s']} s, "
          f"p95 {out['first_row_p95_s']} s")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
