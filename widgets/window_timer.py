"""A timer that runs while the window holding a widget is open, whether or not the widget is shown.

A page that polls (the job queue, for the status bar and notifications) must keep polling
while another page is current, and must stop when its window closes: a timer left running
fires into widgets that are going away. Minimising a window does not stop it.
"""

from __future__ import annotations

from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget


class WindowTimer(QObject):
    """Calls ``tick`` every ``interval_ms`` while ``widget.window()`` is visible, and once at each start.

    Follows the widget into whichever window it is placed in (a page added to a main window).
    """

    def __init__(self, widget: QWidget, interval_ms: int, tick: Callable[[], None]) -> None:
        super().__init__(widget)
        self._widget = widget
        self._tick = tick
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(tick)
        self._window: QWidget | None = None
        widget.installEventFilter(self)
        self._watch()

    def is_active(self) -> bool:
        return self._timer.isActive()

    def stop(self) -> None:
        """Stop until the window is shown again."""
        self._timer.stop()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self._widget and kind == QEvent.Type.ParentChange:
            self._watch()
        elif watched is self._window and kind in (QEvent.Type.Show, QEvent.Type.Hide):
            self._sync()
        return False

    def _watch(self) -> None:
        window = self._widget.window()
        if window is not self._window:
            if self._window is not None and self._window is not self._widget and shiboken6.isValid(self._window):
                self._window.removeEventFilter(self)
            self._window = window
            if window is not self._widget:
                window.installEventFilter(self)
        self._sync()

    def _sync(self) -> None:
        if self._window is not None and self._window.isVisible():
            if not self._timer.isActive():
                self._timer.start()
                self._tick()
        else:
            self._timer.stop()
