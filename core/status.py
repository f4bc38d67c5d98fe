"""Where a run, a retrain, a study or a job stands: the one list of statuses, and its groups.

The store checks every status it writes against STATUSES; the engine, the dashboard and
the shell ask ACTIVE and FINISHED rather than spelling the words out again.
"""

STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
"""Still to do or being done: what a cancel can reach and a live view refreshes for."""
FINISHED = ("done", "failed", "cancelled")
"""Ended, with a reason: no process works on it any more."""
