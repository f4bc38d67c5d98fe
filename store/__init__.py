"""SMASH Explorer's results store: runs, scores, retrains and jobs in one DuckDB file.

This package is the only code that speaks SQL. It imports neither torch, streamlit nor
the engine; the app and the engine import it.
"""

from .base import DB_FILENAME, STATUSES, store_path
from .db import lock_wait_stats, reset_lock_wait_stats
from .errors import StoreBusy, StoreError
from .jobs import JOB_KINDS
from .rows import STAGES
from .schema import SCHEMA_VERSION
from .scores import SORT_COLUMNS
from .store import Store
from .writer import BackgroundWriter

__all__ = [
    "DB_FILENAME",
    "JOB_KINDS",
    "SCHEMA_VERSION",
    "SORT_COLUMNS",
    "STAGES",
    "STATUSES",
    "BackgroundWriter",
    "Store",
    "StoreBusy",
    "StoreError",
    "lock_wait_stats",
    "reset_lock_wait_stats",
    "store_path",
]
