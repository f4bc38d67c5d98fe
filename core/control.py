"""How long work reports and stops: one object every engine entry point takes.

A command line shows progress bars and stops on Ctrl-C; a job of the engine reports to
its heartbeat and stops when a cancel is asked; a notebook does neither. The work itself
only calls `progress` and `check`, whoever runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.errors import Cancelled

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class Control:
    on_progress: ProgressFn | None = None
    """Called with (fraction done, what is being done) as work goes on."""
    should_stop: Callable[[], bool] | None = None
    """Asked between steps: True stops the work at its next checkpoint."""
    show_progress: bool = False
    """Draw progress bars on the terminal (commands run by a person)."""

    def progress(self, fraction: float, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(fraction, message)

    def stop_requested(self) -> bool:
        return self.should_stop is not None and self.should_stop()

    def check(self, message: str) -> None:
        """Raise Cancelled(message) if a stop was asked."""
        if self.stop_requested():
            raise Cancelled(message)


QUIET = Control()
"""No bars, no reports, never stops: work run from code."""
