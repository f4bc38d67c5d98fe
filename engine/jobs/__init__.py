"""Queued jobs: the supervisor (the engine) claims them and runs each in its own runner process."""
