"""Redraws live charts one per turn of the event loop, each at most every 100 ms.

A Monitor page holds a dozen charts that all receive points from the same event. Redrawn on
the same tick, they would be repainted together, in one block of the event loop as long as all
of them (about 6 ms of CPU each with 100,000 points); paced, each is drawn and painted on its
own turn, and the loop answers input between them.
"""

from __future__ import annotations

from typing import Protocol

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 100


class Redrawable(Protocol):
    def flush(self) -> None: ...


class RedrawPacer(QObject):
    """Queues charts that have new points; every INTERVAL_MS starts a round that flushes them one per turn.

    A chart asking again during a round waits for the next one, so it is drawn at most once a round.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._waiting: dict[int, Redrawable] = {}  # by id: the next round, in the order asked
        self._round: list[Redrawable] = []
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._next)

    def request(self, chart: Redrawable) -> None:
        """Flush ``chart`` in the next round."""
        self._waiting[id(chart)] = chart
        if not self._timer.isActive():
            self._timer.start(INTERVAL_MS)

    def cancel(self, chart: Redrawable) -> None:
        """Forget ``chart`` (it was hidden or is going away); stops the timer when nothing is left."""
        self._waiting.pop(id(chart), None)
        self._round = [queued for queued in self._round if queued is not chart]
        if not self._waiting and not self._round:
            self._timer.stop()

    def _next(self) -> None:
        if not self._round:  # a round starts
            self._round = list(self._waiting.values())
            self._waiting.clear()
        if self._round:
            chart = self._round.pop(0)
            if shiboken6.isValid(chart):
                chart.flush()
        if self._round:
            self._timer.start(0)  # the next chart on the next turn, after this one is painted
        elif self._waiting:
            self._timer.start(INTERVAL_MS)


_pacer: RedrawPacer | None = None


def pacer() -> RedrawPacer:
    """The application's pacer, made on first use and owned by the QApplication, so it goes with it."""
    global _pacer
    if _pacer is None or not shiboken6.isValid(_pacer):
        _pacer = RedrawPacer(QCoreApplication.instance())
    return _pacer
