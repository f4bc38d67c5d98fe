"""The login gate: on an address other than loopback the dashboard shows nothing until
the user logs in through Streamlit's OIDC (`st.login`, configured in secrets.toml).

`smash dashboard` decides whether a login is needed and says so with `--login` after
`--` on the script's command line; the launcher refuses to start such a dashboard
unless secrets.toml has an [auth] section, so the gate never points at nothing.
"""

from __future__ import annotations

import sys

import streamlit as st


def login_required(argv: list[str] | None = None) -> bool:
    return "--login" in (sys.argv[1:] if argv is None else argv)


def gate() -> None:
    """Stop the page here unless no login is needed or the user is logged in."""
    if not login_required():
        return
    if not getattr(st.user, "is_logged_in", False):  # absent until [auth] is configured
        st.title("SMASH Explorer")
        st.write("This dashboard is shared on the network: log in to continue.")
        st.button("Log in", type="primary", on_click=st.login)
        st.stop()
    st.sidebar.button("Log out", on_click=st.logout)
