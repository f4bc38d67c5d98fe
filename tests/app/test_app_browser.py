"""The dashboard in a real browser: `streamlit run` (via cli/dashboard.py) driven by headless Chromium.

Opens every page from the sidebar, retrains a leaderboard row by ticking its box and
clicking the button, and finds the queued job on the Jobs page. Screenshots of every
page land in artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.dashboard import serve_in_background, stop_server
from store import Store, store_path
from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "artifacts" / "screenshots"
PAGES = {"Runs": "runs", "Leaderboard": "leaderboard", "Architecture": "architecture",
         "Score vs truth": "score-vs-truth", "Jobs": "jobs"}
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)", allow_module_level=True)

from playwright import sync_api  # noqa: E402  (after the skip: playwright is of no use without it)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, full_smoke_workdir) -> Iterator[tuple[str, Path]]:
    workdir = tmp_path_factory.mktemp("browser") / "w"
    shutil.copytree(full_smoke_workdir, workdir)
    proc, url = serve_in_background(workdir, workdir.parent / "streamlit.log")
    try:
        yield url, workdir
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def page(dashboard):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 2000})
        tab.set_default_timeout(60_000)
        try:
            yield tab
        finally:
            browser.close()


def settle(tab, title: str) -> None:
    """Wait until the page's title is drawn and the script run has finished."""
    tab.get_by_role("heading", name=title, level=1).wait_for()
    try:
        tab.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=20_000)
    except sync_api.TimeoutError:
        pass  # a self-refreshing fragment may keep the widget up; the page is drawn anyway
    tab.wait_for_timeout(1200)  # let Plotly and the data grid paint
    assert tab.locator('[data-testid="stException"]').count() == 0, tab.inner_text("body")[:2000]


def goto_page(tab, label: str) -> None:
    tab.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=label).click()


def shoot(tab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{name}.png"))


TITLES = {"Runs": "HyperNet runs", "Leaderboard": "Leaderboard", "Architecture": "Architecture",
          "Score vs truth": "SMASH score vs true error", "Jobs": "Jobs"}


def test_every_page_renders(dashboard, page):
    url, workdir = dashboard
    page.goto(url)
    settle(page, TITLES["Runs"])
    for label, slug in PAGES.items():
        goto_page(page, label)
        settle(page, TITLES[label])
        shoot(page, slug)
    store = Store(store_path(workdir))
    # Another browser test may have added a newer run without scores: use the scored one.
    run_id = next(r for r in store.runs()["run_id"] if not store.leaderboard(r, limit=1).empty)
    top = store.leaderboard(run_id, limit=1)["arch_id"].iloc[0]
    page.goto(f"{url}/architecture?arch={top}&run={run_id}")
    settle(page, "Architecture")
    assert page.locator(".js-plotly-plot").count() >= 1
    assert page.get_by_text(top).count() >= 1


def test_retrain_a_leaderboard_row_and_see_the_job(dashboard, page):
    url, workdir = dashboard
    store = Store(store_path(workdir))
    top = store.leaderboard(store.latest_run_id(), limit=1)["arch_id"].iloc[0]
    page.goto(f"{url}/leaderboard")
    settle(page, "Leaderboard")
    grid = page.locator('[data-testid="stDataFrame"]').first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # first row's selection box
    button = page.get_by_role("button", name="Queue final training of 1 arch")
    button.wait_for()
    page.wait_for_function("b => !b.disabled", arg=button.element_handle())
    button.click()
    page.get_by_text("Queued 1 retrain job").wait_for()
    shoot(page, "leaderboard-retrain")
    jobs = store.jobs()
    retrains = jobs[jobs["kind"] == "retrain"]
    assert retrains["arch_id"].tolist() == [top]

    goto_page(page, "Jobs")
    settle(page, "Jobs")
    job_id = retrains["job_id"].iloc[0]
    page.locator("code", has_text=job_id).first.wait_for()  # the job's row among active jobs
    assert page.get_by_role("button", name="Cancel").count() >= 1
    shoot(page, "jobs-queued")


def test_training_curves_refresh_while_the_run_is_live(dashboard, page):
    """No reload: the Runs page's fragment re-reads the store every two seconds."""
    url, workdir = dashboard
    store = Store(store_path(workdir))
    base = store.get_run(store.latest_run_id())
    store.create_run("live-run", name="live", config=base["config"], seed=1, code_version="test",
                     dataset=base["dataset"], num_classes=base["num_classes"],
                     image_shape=base["image_shape"], steps_total=100, status="running")

    def advance(step: int) -> None:
        store.add_rows({"train_metrics": [{"run_id": "live-run", "step": step, "loss": 2.3 - step / 100,
                                  "error": 0.9 - step / 200, "lr": 1e-3, "steps_per_s": 5.0,
                                  "elapsed_s": step / 5}]})
        store.update_run("live-run", step=step)

    advance(10)
    page.goto(f"{url}/?run=live-run")
    settle(page, TITLES["Runs"])
    page.get_by_text("10 / 100").wait_for()
    advance(50)
    page.get_by_text("50 / 100").wait_for(timeout=15_000)
    page.wait_for_timeout(1500)  # let Plotly redraw the curves
    shoot(page, "runs-live")
    store.update_run("live-run", status="done", step=100)
    page.get_by_text("100 / 100").wait_for(timeout=15_000)


def test_architecture_page_downloads_the_drawing(dashboard, page, tmp_path):
    """The graph buttons make their file on click (a headless Chromium inside draws the SVG)."""
    import xml.etree.ElementTree as ET

    import networkx as nx

    url, workdir = dashboard
    store = Store(store_path(workdir))
    # Another browser test may have added a newer run without scores: use the scored one.
    run_id = next(r for r in store.runs()["run_id"] if not store.leaderboard(r, limit=1).empty)
    top = store.leaderboard(run_id, limit=1)["arch_id"].iloc[0]
    page.goto(f"{url}/architecture?arch={top}&run={run_id}")
    settle(page, "Architecture")
    for label, name in (("SVG", "g.svg"), ("DOT", "g.dot")):
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name=label, exact=True).first.click()
        assert download.value.suggested_filename == f"arch-{top}.{label.lower()}"
        download.value.save_as(tmp_path / name)
    assert ET.parse(tmp_path / "g.svg").getroot().tag.endswith("svg")
    assert nx.nx_pydot.read_dot(tmp_path / "g.dot").number_of_nodes() > 0


def test_the_recommend_button_queues_the_recommended(dashboard, page):
    """The Leaderboard says what the board decided and recommends what to train; one click
    queues final training of every recommended arch, and the page says so."""
    url, workdir = dashboard
    store = Store(store_path(workdir))
    run_id = next(r for r in store.runs()["run_id"] if not store.leaderboard(r, limit=1).empty)
    picks = store.equivalent_set(run_id)["arch_id"].tolist()
    page.goto(f"{url}/leaderboard?run={run_id}")
    settle(page, "Leaderboard")
    page.get_by_text("Recommended for final training").wait_for()
    assert page.get_by_text("equivalent").count() >= 1
    before = set(store.jobs(limit=500)["job_id"])
    # a seed no other test queued, so the button is live whatever ran on this dashboard before
    seed = page.get_by_label("Seed").first
    seed.fill("4242")
    seed.press("Enter")
    button = page.get_by_role("button", name="Train the recommended")
    page.wait_for_function("b => !b.disabled", arg=button.element_handle())
    button.click()
    page.get_by_text("retrain job").first.wait_for()
    shoot(page, "leaderboard-recommend")
    jobs = store.jobs(limit=500)
    new = jobs[~jobs["job_id"].isin(before)]
    assert set(new["kind"]) == {"retrain"} and picks[0] in set(new["arch_id"])
    assert set(new["arch_id"]) <= set(picks) | set(store.board_features(run_id)["arch_id"])
