"""SMASH Explorer's results store: runs, scores, retrains and jobs in one DuckDB file.

This package is the only code that speaks SQL. It imports neither torch, streamlit nor
the engine; the app and the engine import it.
"""

from .base import DB_FILENAME, store_path
from .db import lock_wait_stats, reset_lock_wait_stats
from .errors import StoreBusy, StoreError
from .schema import SCHEMA_VERSION
from .store import Store
from .writer import BackgroundWriter

__all__ = [
    "DB_FILENAME",
    "SCHEMA_VERSION",
    "BackgroundWriter",
    "Store",
    "StoreBusy",
    "StoreError",
    "lock_wait_stats",
    "reset_lock_wait_stats",
    "store_path",
]
