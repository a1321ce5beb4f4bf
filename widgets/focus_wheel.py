"""Spin and combo boxes that leave the mouse wheel to the scrolling form they sit in.

A plain ``QSpinBox`` or ``QComboBox`` under the pointer takes the wheel and changes its value
while a person only meant to scroll past it; these take the wheel only once they have the focus
(a click or Tab gives it).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QComboBox, QSpinBox


class FocusSpinBox(QSpinBox):
    """A spin box that lets the wheel scroll the form unless it has the focus (a click or Tab gives it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class FocusComboBox(QComboBox):
    """A combo box that lets the wheel scroll the form unless it has the focus."""

    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()
