"""A read-only log that follows its end while the reader is there, and stays put while they scroll back."""

from __future__ import annotations

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QWidget

MAX_LINES = 5000


class LogView(QPlainTextEdit):
    """Plain text, wrapped, at most ``MAX_LINES`` lines (the oldest go first)."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, readOnly=True)
        self.setPlaceholderText(placeholder)
        self.setMaximumBlockCount(MAX_LINES)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)

    def at_end(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 2

    def append_lines(self, text: str) -> None:
        """Add lines at the end; scroll to them if the end was showing."""
        follow = self.at_end()
        self.appendPlainText(text)
        if follow:
            self.moveCursor(QTextCursor.MoveOperation.End)
            self.ensureCursorVisible()

    def replace_text(self, text: str) -> None:
        """Show ``text`` instead; at its end if the end was showing (or nothing was), else where the reader was."""
        follow = self.at_end() or not self.toPlainText()
        position = self.verticalScrollBar().value()
        self.setPlainText(text)
        if follow:
            self.moveCursor(QTextCursor.MoveOperation.End)
            self.ensureCursorVisible()
        else:
            self.verticalScrollBar().setValue(position)
