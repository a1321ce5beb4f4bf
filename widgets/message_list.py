"""A short column of messages, each with an icon of its level: checks before a job starts, results.

For a handful of sentences a person must read (not a table to sort): each wraps, can be
selected and copied, and says its level with an icon shape as well as words. The pool of rows
only grows, so showing new messages never rebuilds the layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStyle, QVBoxLayout, QWidget

from widgets.labels import wrapping_label

Level = Literal["error", "warning", "info", "ok"]

_ICONS = {
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
    "ok": QStyle.StandardPixmap.SP_DialogApplyButton,
}
_NAMES = {"error": "Error", "warning": "Warning", "info": "Note", "ok": "Done"}


class MessageList(QWidget):
    """Messages as (level, text) pairs, in the order given."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[QWidget, QLabel, QLabel]] = []
        self._shown: list[tuple[Level, str]] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(self.fontMetrics().height() // 3)
        self.setVisible(False)

    def messages(self) -> list[tuple[Level, str]]:
        return list(self._shown)

    def set_messages(self, messages: Sequence[tuple[Level, str]]) -> None:
        self._shown = list(messages)
        line = self.fontMetrics().height()
        while len(self._rows) < len(messages):
            row = QWidget()
            icon = QLabel()
            icon.setFixedSize(line, line)
            text = wrapping_label(selectable=True)
            layout = QHBoxLayout(row)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.setSpacing(line // 2)
            layout.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
            layout.addWidget(text, 1)
            self._layout.addWidget(row)
            self._rows.append((row, icon, text))
        for index, (row, icon, text) in enumerate(self._rows):
            row.setVisible(index < len(messages))
            if index < len(messages):
                level, message = messages[index]
                text.setText(message)
                text.setAccessibleName(_NAMES[level])
                icon.setProperty("level", level)
        self._paint_icons()
        self.setVisible(bool(messages))

    def _paint_icons(self) -> None:
        for _row, icon, _text in self._rows:
            level = icon.property("level")
            if level in _ICONS:
                pixmap = self.style().standardIcon(_ICONS[level]).pixmap(icon.size(), self.devicePixelRatioF())
                icon.setPixmap(pixmap)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.StyleChange:
            self._paint_icons()
