"""Follow the job queue while a page is on screen: one timer, one change counter, one signal.

The queue's change counter (``JobQueue.changes``) is a single cheap read; a page re-reads the
jobs only when it moved. The timer runs only while the page is shown, so hidden pages cost
nothing and no timer outlives its page.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from backend.jobs.queue import JobQueue


class QueueWatch(QObject):
    changed = Signal()
    """The queue changed since the last look (and once at the first look)."""

    def __init__(self, page: QWidget, queue: JobQueue, interval_ms: int) -> None:
        super().__init__(page)
        self._queue = queue
        self._seen: int | None = None
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self.check)
        page.installEventFilter(self)

    def check(self) -> None:
        """Emit ``changed`` if the queue moved since the last check."""
        changes = self._queue.changes()
        if changes != self._seen:
            self._seen = changes
            self.changed.emit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Show:
            self._timer.start()
        elif event.type() == QEvent.Type.Hide:
            self._timer.stop()
        return False
