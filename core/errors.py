"""Domain errors and signals shared by every layer."""

from __future__ import annotations


class Cancelled(Exception):
    """The job was asked to stop; the last checkpoint is kept."""


class BadRequest(ValueError):
    """A request that cannot be carried out as given: the message says what is wrong."""


class NotFound(BadRequest):
    """A name given by the user (workdir, run, arch, job) matches nothing."""
