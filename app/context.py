"""Where the dashboard's data lives, and how a page fails when it cannot get it.

The workdir comes from the command line after `--` (what `smash dashboard` passes), else
from SMASH_WORKDIR (what tests set: AppTest cannot pass argv), else ./runs. A page gets
a fresh `Store` per script run and never keeps a connection: the store itself opens and
closes one per call, which is what lets the trainer and the worker write meanwhile.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.arch import ArchError
from core.config import ConfigError
from store import Store, StoreBusy, StoreError, store_path

DEFAULT_WORKDIR = "./runs"
REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"


def workdir() -> Path:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workdir")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return Path(known.workdir or os.environ.get("SMASH_WORKDIR") or DEFAULT_WORKDIR).expanduser()


def open_store(create: bool = False) -> Store | None:
    """The workdir's store, or None if there is none yet and `create` is false.

    Opening creates the file, so pages that only read must not conjure an empty store
    in a mistyped workdir; only an action (queueing a job) creates one.
    """
    path = store_path(workdir())
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
    return Store(path)


def require_store() -> Store | None:
    """The store, or None after telling the user how to make one."""
    store = open_store()
    if store is None:
        st.info(f"No SMASH store in `{workdir()}` yet. Start a HyperNet run on the **Runs** page "
                "or with `smash train --config FILE --workdir DIR`.")
    return store


def guarded(render: Callable[[], None]) -> Callable[[], None]:
    """Run a page body, turning every expected failure into a message instead of a traceback.

    Streamlit's own control flow (rerun, switch_page, stop) derives from BaseException,
    so it passes through untouched.
    """

    @functools.wraps(render)
    def page() -> None:
        try:
            render()
        except StoreBusy as exc:
            st.warning(f"The store is busy (another process holds it): {exc}. "
                       "The page will work again once it is free; reload to retry.")
        except StoreError as exc:
            st.error(f"Cannot use the store: {exc}")
        except (ArchError, ConfigError) as exc:
            st.error(str(exc))
        except (ValueError, KeyError, OSError) as exc:
            st.error(f"{type(exc).__name__}: {exc}")

    return page


def pick_run(store: Store, *, key: str = "run_pick") -> str | None:
    """A run selectbox shared by every page: the choice follows the user between pages.

    The selection lives in a plain session key (`run_id`) because widget state is
    dropped when a page without the widget runs. ?run=... in the URL wins.
    """
    runs = store.runs()
    if runs.empty:
        st.info("No HyperNet runs yet. Start one on the **Runs** page.")
        return None
    ids = runs["run_id"].tolist()
    wanted = st.query_params.get("run") or st.session_state.get("run_id")
    index = ids.index(wanted) if wanted in ids else 0
    labels = dict(zip(runs["run_id"], runs["name"].fillna("") + " · " + runs["status"].fillna("?"),
                      strict=True))
    choice = st.selectbox("Run", ids, index=index, key=key,
                          format_func=lambda rid: f"{rid}  ({labels.get(rid, '')})")
    st.session_state["run_id"] = choice
    if "run" in st.query_params and st.query_params["run"] != choice:
        st.query_params["run"] = choice  # keep a shared link pointing at what is shown
    return choice


def store_and_run() -> tuple[Store, str] | None:
    """The store and the chosen run, or None after telling the user what is missing."""
    store = require_store()
    if store is None:
        return None
    run_id = pick_run(store)
    return None if run_id is None else (store, run_id)
