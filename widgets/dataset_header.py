"""The head of a dataset shown: its name and sheet, what the check found, and what can be done next.

``DatasetHeader`` lays out the title (with a ``SheetPicker`` beside it), the summary line with a
progress bar while the dataset is read, and the buttons "Cancel check", "Map columns…",
"Detect format" and "Open another". It only shows: the page owning it connects the buttons and
gives "Open another" its menu.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from widgets.palette import negative_color
from widgets.sheet_picker import SheetPicker


class DatasetHeader(QWidget):
    """Title, sheet picker, summary and progress, and the buttons beside them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        line = self.fontMetrics().height()
        self.title = QLabel(textFormat=Qt.TextFormat.PlainText)
        title_font = QFont(self.title.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.3)
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QLabel("No dataset yet.", textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar(textVisible=False)
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(line * 14)
        self.progress.setMaximumHeight(round(line * 0.8))
        self.cancel_button = QPushButton("Cancel check")
        self.map_button = QPushButton("Map columns…")
        self.map_button.setToolTip("Say which column holds the instruction, the response and the rest")
        self.detect_button = QPushButton("Detect format")
        self.detect_button.setToolTip("Forget the column mapping and read the file in the format it is in")
        self.open_button = QPushButton("Open another")
        self.open_button.setToolTip("Browse for a dataset, or reopen a recent one; or drop one anywhere on this page")
        self.sheet_picker = SheetPicker()

        words = QVBoxLayout()
        words.setSpacing(line // 4)
        named = QHBoxLayout()
        named.setSpacing(line)
        named.addWidget(self.title)
        named.addWidget(self.sheet_picker)
        named.addStretch(1)
        words.addLayout(named)
        busy = QHBoxLayout()
        busy.addWidget(self.progress)
        busy.addWidget(self.summary, 1)
        words.addLayout(busy)
        header = QHBoxLayout(self)
        header.setContentsMargins(0, 0, 0, 0)
        header.addLayout(words, 1)
        for button in (self.cancel_button, self.map_button, self.detect_button, self.open_button):
            header.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
        self.show_busy(False)
        self.map_button.hide()
        self.detect_button.hide()

    def set_summary(self, text: str, *, error: bool = False) -> None:
        """Say ``text`` under the title, in the negative colour if it is an ``error``."""
        self.summary.setText(text)
        palette = self.summary.palette()
        colour = negative_color(self.palette()) if error else self.palette().color(QPalette.ColorRole.WindowText)
        palette.setColor(QPalette.ColorRole.WindowText, colour)
        self.summary.setPalette(palette)

    def show_busy(self, busy: bool) -> None:
        """Progress and "Cancel check" while the dataset is read; "Open another" otherwise."""
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.open_button.setVisible(not busy)
