"""Ranked suggestions as a column of flat buttons: a short text, and the estimate it would give.

Buttons, not list rows, so that long texts wrap and a click, Enter or Space is a real button press
that screen readers announce. The pool of buttons only grows: an update on every keystroke in the
form only changes texts.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QIcon, QKeyEvent, QPainter, QPaintEvent, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QAbstractButton, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from widgets.palette import mix
from widgets.units import format_bytes
from widgets.vram_data import Suggestion, Verdict


class SuggestionList(QWidget):
    """The ranked suggestions as a column of buttons; the pool of buttons only ever grows."""

    chosen = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self._buttons: list[SuggestionButton] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(self.fontMetrics().height() // 4)

    def buttons(self) -> list[SuggestionButton]:
        """The buttons showing a suggestion, best first."""
        return [button for button in self._buttons if not button.isHidden()]

    def set_suggestions(self, suggestions: Sequence[Suggestion], icons: dict[Verdict | None, QIcon]) -> None:
        while len(self._buttons) < len(suggestions):
            button = SuggestionButton(len(self._buttons))
            button.picked.connect(self.chosen)
            self._layout.addWidget(button)
            self._buttons.append(button)
        for index, button in enumerate(self._buttons):
            button.setVisible(index < len(suggestions))
            if index < len(suggestions):
                suggestion = suggestions[index]
                button.set_suggestion(suggestion, None if suggestion.verdict is None else icons[suggestion.verdict])


class SuggestionButton(QAbstractButton):
    """A suggestion's text and the estimate it would give, as a flat button that wraps its text."""

    picked = Signal(int)  # the button's place in the list

    def __init__(self, index: int) -> None:
        super().__init__()
        self._index = index
        self.clicked.connect(self._clicked)  # a bound method, not a lambda holding self
        self.setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        line = self.fontMetrics().height()
        self._icon = QLabel()
        self._icon.setFixedSize(line, line)
        self._text = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self._outcome = QLabel(textFormat=Qt.TextFormat.PlainText)
        self._outcome.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        words = QVBoxLayout()
        words.setSpacing(0)
        words.addWidget(self._text)
        words.addWidget(self._outcome)
        layout = QHBoxLayout(self)
        margin = line // 3
        layout.setContentsMargins(margin, margin, margin, margin)
        layout.setSpacing(line // 2)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(words, 1)
        for child in (self._icon, self._text, self._outcome):
            child.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)

    def set_suggestion(self, suggestion: Suggestion, icon: QIcon | None) -> None:
        outcome = f"→ about {format_bytes(suggestion.peak_bytes)}"
        if suggestion.verdict is not None:
            outcome += f" · {suggestion.verdict.value.lower()}"
        self._text.setText(suggestion.text)
        self._outcome.setText(outcome)
        self._icon.setPixmap(icon.pixmap(self._icon.size(), self.devicePixelRatioF()) if icon else QPixmap())
        self.setText(suggestion.text)  # what screen readers announce
        self.setAccessibleDescription(outcome)
        self.setToolTip(f"Apply this change to the settings.\n{outcome}")

    def _clicked(self) -> None:
        self.picked.emit(self._index)

    def text_shown(self) -> str:
        return f"{self._text.text()}\n{self._outcome.text()}"

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.animateClick()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        window = palette.color(QPalette.ColorRole.Window)
        accent = palette.color(QPalette.ColorRole.Highlight)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fill = 0.22 if self.isDown() else 0.12 if self.underMouse() else 0.0
        painter.setBrush(mix(window, accent, fill) if fill else Qt.BrushStyle.NoBrush)
        border = accent if self.hasFocus() else mix(window, palette.color(QPalette.ColorRole.WindowText), 0.25)
        painter.setPen(QPen(border, 2 if self.hasFocus() else 1))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(1, 1, -1, -1), 4, 4)
