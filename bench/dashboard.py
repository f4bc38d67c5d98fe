"""How fast does the Leaderboard open on a run with 10^5 scored architectures?

Fills a temporary store with synthetic scored archs (store.bulk_add_scored), serves the
dashboard with `streamlit run` (cli/dashboard.py's command) and, in headless Chromium,
times navigating to the Leaderboard until its first table row is in the page: once by
URL (a fresh session: websocket, script run, store queries, grid paint) and once by
clicking the sidebar link (what a user does). The median of several tries is reported;
the last line printed is a JSON object.

    .venv/bin/python bench/dashboard.py [--archs 100000] [--tries 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))

from cli.dashboard import serve_in_background, stop_server  # noqa: E402
from store import Store, store_path  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

RUN_ID = "bench-run"


def fill(workdir: Path, n: int, seed: int = 0) -> tuple[Store, float]:
    """A run with `n` scored archs; returns the store and the seconds the insert took."""
    store = Store(store_path(workdir))
    store.create_run(RUN_ID, name="bench", config={"name": "bench"}, seed=seed, code_version="bench",
                     dataset="synthetic", num_classes=10, image_shape=[3, 32, 32], steps_total=1,
                     status="done")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        # Distinct ids: multiplying by an odd constant permutes the integers mod 2^64.
        "arch_id": [f"{(i * 0x9E3779B97F4A7C15) % 2**64:016x}" for i in range(n)],
        "checkpoint_step": 1000,
        "stage": rng.choice(["random", "perturb", "chain"], n, p=[0.9, 0.07, 0.03]),
        "score_mean": rng.beta(2, 5, n),
        "score_std": rng.uniform(0, 0.03, n),
        "draws": 3,
        "val_images": 5000,
        "params": rng.integers(50_000, 5_000_000, n),
        "flops": rng.integers(10**7, 10**9, n),
        "depth": rng.integers(10, 60, n),
        "n_layers": rng.integers(4, 40, n),
    })
    start = time.perf_counter()
    store.bulk_add_scored(RUN_ID, frame)
    return store, time.perf_counter() - start


def first_row_visible(tab, top_arch: str, timeout_ms: float = 60_000) -> None:
    """The grid paints on a canvas, but mirrors its cells in an accessible table: wait for
    the rank-1 arch id to appear there."""
    tab.wait_for_function(
        """id => [...document.querySelectorAll('[data-testid="stDataFrame"] td')]
                 .some(td => td.textContent === id)""",
        arg=top_arch, timeout=timeout_ms)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=100_000)
    p.add_argument("--tries", type=int, default=5)
    args = p.parse_args(argv)
    if not CHROMIUM.exists():
        print(json.dumps({"error": f"{CHROMIUM} missing"}))
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="smash-bench-") as tmp:
        workdir = Path(tmp)
        store, insert_s = fill(workdir, args.archs)
        t = time.perf_counter()
        top = store.leaderboard(RUN_ID, limit=50)
        total = store.leaderboard_count(RUN_ID)
        query_s = time.perf_counter() - t
        top_arch = str(top.iloc[0]["arch_id"])
        print(f"filled {total:,} scored archs in {insert_s:.2f} s; one page + count query {query_s * 1000:.0f} ms")
        proc, url = serve_in_background(workdir, workdir / "streamlit.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                tab = browser.new_page(viewport={"width": 1500, "height": 1200})
                tab.goto(url + "/leaderboard")  # warm-up: the server's first session imports everything
                first_row_visible(tab, top_arch)
                by_url, by_click = [], []
                for _ in range(args.tries):
                    start = time.perf_counter()
                    tab.goto(url + "/leaderboard")
                    first_row_visible(tab, top_arch)
                    by_url.append(time.perf_counter() - start)
                    tab.goto(url)  # Runs, the default page, lives at /
                    tab.get_by_role("heading", name="HyperNet runs").wait_for()
                    start = time.perf_counter()
                    tab.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Leaderboard").click()
                    first_row_visible(tab, top_arch)
                    by_click.append(time.perf_counter() - start)
                browser.close()
        finally:
            stop_server(proc)
    result = {
        "bench": "dashboard_leaderboard_first_row",
        "archs": total,
        "tries": args.tries,
        "by_url_median_s": round(statistics.median(by_url), 3),
        "by_url_max_s": round(max(by_url), 3),
        "by_click_median_s": round(statistics.median(by_click), 3),
        "by_click_max_s": round(max(by_click), 3),
        "store_page_and_count_s": round(query_s, 3),
        "insert_s": round(insert_s, 2),
    }
    print(f"Leaderboard first row: {result['by_url_median_s']:.2f} s by URL, "
          f"{result['by_click_median_s']:.2f} s by sidebar click (median of {args.tries})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
