"""The whole loop with real processes: engine and dashboard up, a retrain queued from the
browser, run by the engine's worker, and its true error in the store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.dashboard import serve_in_background, stop_server
from store import Store, store_path
from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)", allow_module_level=True)

from playwright import sync_api  # noqa: E402

from tests.app.test_app_browser import CHROMIUM_ARGS, settle, shoot  # noqa: E402


def test_retrain_queued_in_the_browser_is_run_by_the_engine(tmp_path_factory, full_smoke_workdir):
    workdir = tmp_path_factory.mktemp("e2e") / "w"
    shutil.copytree(full_smoke_workdir, workdir)
    store = Store(store_path(workdir))
    run_id = store.latest_run_id()
    board = store.leaderboard(run_id, limit=5)
    target = board[board["test_error"].isna()]["arch_id"].iloc[0]  # an arch not yet retrained
    row = int(board.index[board["arch_id"] == target][0])

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    engine = subprocess.Popen([sys.executable, "-m", "cli", "engine", "--workdir", str(workdir),
                               "--poll", "0.3"], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server, url = serve_in_background(workdir, workdir.parent / "streamlit.log")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 2000})
            page.set_default_timeout(60_000)
            page.goto(f"{url}/leaderboard")
            settle(page, "Leaderboard")
            box = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
            page.mouse.click(box["x"] + 18, box["y"] + 35 + 17 + 35 * row)
            button = page.get_by_role("button", name="Queue final training of 1 arch")
            button.wait_for()
            page.wait_for_function("b => !b.disabled", arg=button.element_handle())
            button.click()
            page.get_by_text("Queued 1 retrain job").wait_for()
            jobs = store.jobs()
            job = jobs[(jobs["kind"] == "retrain") & (jobs["arch_id"] == target)]
            assert len(job) == 1
            job_id = job["job_id"].iloc[0]
            deadline = time.time() + 240
            while time.time() < deadline and store.get_job(job_id)["status"] not in ("done", "failed"):
                time.sleep(0.5)
            done = store.get_job(job_id)
            assert done["status"] == "done", done["error"]
            page.goto(f"{url}/jobs")
            settle(page, "Jobs")
            shoot(page, "jobs-done")
            browser.close()
        truth = store.score_vs_truth(run_id)
        assert target in set(truth["arch_id"])
        assert truth.set_index("arch_id").loc[target, "test_error"] >= 0
    finally:
        stop_server(server)
        os.killpg(engine.pid, signal.SIGINT)
        engine.wait(timeout=60)
