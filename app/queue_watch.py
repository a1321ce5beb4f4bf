"""A page's view of job states: ``changed`` when a job appears, goes or changes state, not at every step.

The Evaluate and Export pages list jobs by state (reports of finished evaluations, exports and
their outcome); re-reading their folders at every training step would be waste. The watch
listens to the session's ``QueueState``, which every page shares, so a state reaches these pages
as soon as it reaches the Jobs page, whether or not they are shown; while the page's window is
open the watch asks the state to look every ``TICK_MS`` too, for a page used without the Jobs page.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QWidget

from app.queue_state import TICK_MS, QueueState
from backend.jobs.job import Job
from widgets.window_timer import WindowTimer


class QueueWatch(QObject):
    changed = Signal()
    """A job appeared, went or changed state since the last look (and once at ``check``)."""

    def __init__(self, page: QWidget, state: QueueState, interval_ms: int = TICK_MS) -> None:
        super().__init__(page)
        self._state = state
        self._seen: tuple[tuple[int, str], ...] | None = None
        state.changed.connect(self._on_jobs)
        self._timer = WindowTimer(page, interval_ms, state.tick)

    def check(self) -> None:
        """Look now and emit ``changed`` whatever was seen before (a page's first fill, or after it queued)."""
        self._seen = None
        self._state.refresh()

    @Slot(list)
    def _on_jobs(self, jobs: list[Job]) -> None:
        states = tuple((job.id, job.label) for job in jobs)
        if states != self._seen:
            self._seen = states
            self.changed.emit()
