"""The legend of a live chart: a sample of each series' line, its name and its latest value.

``SeriesStyle`` says how a series is drawn (a line, occasional points, a dashed limit), which the
chart's curves and the legend's ``Swatch`` both follow.
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QWidget


class SeriesStyle(Enum):
    """How a series is drawn, which also says what kind of values it holds."""

    LINE = "line"  # a value every step or sample (train loss, GPU use): smoothed when the chart smooths
    POINTS = "points"  # occasional values (eval loss): dots joined by a line, never smoothed
    LIMIT = "limit"  # a ceiling to compare against (GPU memory total): dashed, never smoothed


class LegendEntry(QWidget):
    """A series' line sample, name and latest value; the tooltip says where that value was taken."""

    def __init__(self, label: str, style: SeriesStyle) -> None:
        super().__init__()
        self._swatch = Swatch(style)
        self._text = QLabel(label, textFormat=Qt.TextFormat.PlainText)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, self.fontMetrics().height(), 0)
        layout.setSpacing(self.fontMetrics().height() // 3)
        layout.addWidget(self._swatch)
        layout.addWidget(self._text)

    def set_color(self, color: QColor) -> None:
        self._swatch.set_color(color)

    def set_text(self, text: str, tooltip: str) -> None:
        self._text.setText(text)
        self.setToolTip(tooltip)


class Swatch(QWidget):
    """A short sample of a series' line: solid, dashed (a limit) or with a dot (occasional values)."""

    def __init__(self, style: SeriesStyle) -> None:
        super().__init__()
        self._style = style
        self._color = QColor()
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_color(self, color: QColor) -> None:
        self._color = color
        self.update()

    def sizeHint(self) -> QSize:
        height = self.fontMetrics().height()
        return QSize(round(height * 1.6), height)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self._color, 2)
        if self._style is SeriesStyle.LIMIT:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        middle = self.height() / 2
        painter.drawLine(1, round(middle), self.width() - 1, round(middle))
        if self._style is SeriesStyle.POINTS:
            painter.setBrush(self._color)
            radius = self.height() / 6
            painter.drawEllipse(self.rect().center().toPointF(), radius, radius)
