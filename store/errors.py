"""The two exceptions the store raises on purpose.

Callers catch `StoreError` to report a bad store file to the user, and `StoreBusy`
(a subclass) when they want to tell "another process held the lock too long" apart
from "this file is not usable at all". Both are user-fixable: they derive from core's
BadRequest, the one error type the command line reports as a line.
"""

from core.errors import BadRequest


class StoreError(BadRequest):
    """The store file cannot be used: wrong kind of file, newer schema, unwritable path."""


class StoreBusy(StoreError):
    """Another process held the database lock for longer than the store's timeout."""
