"""A row of preset buttons with the chosen preset's summary under it.

The buttons are checkable but not exclusive: none is checked when the values match no preset,
so the row shows which preset the form equals, not which was clicked last.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractButton, QButtonGroup, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from widgets.labels import wrapping_label


class PresetBar(QWidget):
    """ "Start from: [Quick] [Balanced] [Best]" and a line that says what the matching one is for."""

    chosen = Signal(int)
    """The index of the preset button clicked."""

    def __init__(self, presets: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        """``presets`` are (name, summary) pairs, in button order; the summary is also the tooltip."""
        super().__init__(parent)
        line = self.fontMetrics().height()
        self.buttons = QButtonGroup(self)
        self.buttons.setExclusive(False)
        row = QHBoxLayout()
        row.setSpacing(line // 2)
        row.addWidget(QLabel("Start from:"))
        for index, (name, summary) in enumerate(presets):
            button = QPushButton(name)
            button.setCheckable(True)
            button.setToolTip(summary)
            self.buttons.addButton(button, index)
            row.addWidget(button)
        row.addStretch(1)
        self.buttons.idClicked.connect(self.chosen)
        self.summary = wrapping_label(name="presetSummary")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(line // 2)
        layout.addLayout(row)
        layout.addWidget(self.summary)

    def button(self, index: int) -> QAbstractButton:
        return self.buttons.button(index)

    def show_match(self, index: int | None, summary: str) -> None:
        """Check the button at ``index`` alone (none when ``None``) and show ``summary``."""
        for button in self.buttons.buttons():
            button.setChecked(self.buttons.id(button) == index)
        self.summary.setText(summary)
