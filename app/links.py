"""Jumping between pages with query parameters, e.g. Architecture with ?arch=...&compare=....

`st.switch_page` resolves a page by its url_path alone (callable pages carry no other
identity), so a stand-in `st.Page` with the right url_path is enough and this module
needs no import of the pages themselves.
"""

from __future__ import annotations

import streamlit as st

ARCHITECTURE = "architecture"
LEADERBOARD = "leaderboard"
JOBS = "jobs"


def _stand_in() -> None:
    """Never run: only its page's url_path matters to st.switch_page."""


def go(url_path: str, **query_params: str | None) -> None:
    """Open another page of the app (never returns: Streamlit ends this run)."""
    target = st.Page(_stand_in, title=url_path, url_path=url_path)
    st.switch_page(target, query_params={k: v for k, v in query_params.items() if v})
