"""The page registry: every page's url_path, title, icon and render function.

Pages link to each other through `app.links` (by url_path), not through this module,
so that importing a page never imports every other page.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app.context import guarded
from app.views import architecture, jobs, leaderboard, runs, score_truth

# url_path -> (title, icon, render)
PAGES: dict[str, tuple[str, str, Callable[[], None]]] = {
    "runs": ("Runs", ":material/model_training:", runs.render),
    "leaderboard": ("Leaderboard", ":material/leaderboard:", leaderboard.render),
    "architecture": ("Architecture", ":material/account_tree:", architecture.render),
    "score-vs-truth": ("Score vs truth", ":material/scatter_plot:", score_truth.render),
    "jobs": ("Jobs", ":material/work_history:", jobs.render),
}


def page(url_path: str, default: bool = False) -> st.Page:
    title, icon, render = PAGES[url_path]
    return st.Page(guarded(render), title=title, icon=icon, url_path=url_path, default=default)


def pages(default: str = "runs") -> list[st.Page]:
    return [page(name, default=name == default) for name in PAGES]

