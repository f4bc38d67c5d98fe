"""SMASH Explorer dashboard: `streamlit run app/main.py -- --workdir DIR` (or `smash dashboard`).

A thin entry point: it puts the repository on the import path (Streamlit runs this
file as a script, not as part of the package), sets the page up and hands over to
`st.navigation`. Each page lives in app/views/ and exposes render().

Not app/pages/: Streamlit treats a `pages/` folder beside the entry point as a legacy
multipage app until the entry point has run once in the server process, so the first
visit to a deep link (/leaderboard after a restart) would run the page file itself and
show a blank page.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import auth, nav  # noqa: E402
from app.context import workdir  # noqa: E402

st.set_page_config(page_title="SMASH Explorer", page_icon=":material/hub:", layout="wide")
auth.gate()
page = st.navigation(nav.pages())
st.sidebar.caption(f"SMASH Explorer · workdir `{workdir()}`")
page.run()
