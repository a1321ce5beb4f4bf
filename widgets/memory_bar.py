"""A horizontal bar of what a job's memory goes to, drawn against the GPU's capacity.

Segments are laid end to end in the order given, so the bar's length is the estimated peak.
The GPU's total is the track behind them; memory other programs already hold is hatched at its
right end, so a bar that runs into the hatching needs memory that is not free now. A bar longer
than the GPU is drawn past a marked end, faded. Hovering a segment says what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QHelpEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from widgets.chart_colors import series_color
from widgets.palette import mix

OTHERS_PATTERN = Qt.BrushStyle.BDiagPattern
_OVERFLOW_ALPHA = 0.45


@dataclass(frozen=True)
class Segment:
    """One part of the bar, drawn in ``series_color(color)``."""

    label: str
    bytes: int
    tooltip: str
    color: int


class MemoryBar(QWidget):
    """Segments of memory use against a capacity (the GPU's total) and what is free of it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._segments: Sequence[Segment] = ()
        self._total: int | None = None
        self._free: int | None = None
        self._others_tooltip = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName("Estimated memory use")

    def set_segments(
        self, segments: Sequence[Segment], total: int | None, free: int | None, others_tooltip: str = ""
    ) -> None:
        """Show ``segments`` against ``total`` bytes with ``free`` of them free; no total: no GPU."""
        self._segments = segments
        self._total, self._free = total, free
        self._others_tooltip = others_tooltip
        self.setAccessibleDescription("; ".join(segment.tooltip.split("\n", 1)[0] for segment in segments))
        self.update()

    def segments(self) -> Sequence[Segment]:
        return self._segments

    def sizeHint(self) -> QSize:
        return QSize(self.fontMetrics().height() * 16, self._bar_height() + 2 * self._overhang())

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().height() * 6, self.sizeHint().height())

    def _bar_height(self) -> int:
        return round(self.fontMetrics().height() * 1.5)

    def _overhang(self) -> int:
        """How far the end-of-GPU mark reaches above and below the bar."""
        return max(2, self.fontMetrics().height() // 5)

    def _scale(self) -> float:
        """Bytes per pixel, so that the GPU or the estimate, whichever is larger, fills the width."""
        peak = sum(segment.bytes for segment in self._segments)
        largest = max(peak, self._total or 0, 1)
        return largest / max(1, self.width() - 2)

    def _spans(self) -> list[tuple[float, float, Segment]]:
        scale, left, spans = self._scale(), 1.0, []
        for segment in self._segments:
            width = segment.bytes / scale
            spans.append((left, width, segment))
            left += width
        return spans

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        top, height = self._overhang(), self._bar_height()
        capacity_end = 1 + self._total / self._scale() if self._total else None

        track = QRectF(1, top, (capacity_end or self.width() - 1) - 1, height)
        painter.setPen(QPen(mix(base, text, 0.35), 1))
        painter.setBrush(mix(base, text, 0.06))
        painter.drawRect(track)

        # Full colour up to the GPU's end, faded past it.
        passes = [(QRectF(self.rect()), 1.0)]
        if capacity_end is not None:
            passes = [
                (QRectF(0, 0, capacity_end, self.height()), 1.0),
                (QRectF(capacity_end, 0, self.width() - capacity_end, self.height()), _OVERFLOW_ALPHA),
            ]
        spans = self._spans()
        painter.setPen(Qt.PenStyle.NoPen)
        for clip, alpha in passes:
            painter.setClipRect(clip)
            for left, width, segment in spans:
                color = series_color(segment.color, palette)
                color.setAlphaF(alpha)
                painter.setBrush(color)
                painter.drawRect(QRectF(left, top, width, height))
        painter.setClipping(False)
        for left, _width, _segment in spans[1:]:  # a gap between neighbours, so they never merge
            painter.fillRect(QRectF(round(left), top, 1, height), base)

        others = self.others_rect()
        if others is not None:
            painter.setBrush(QBrush(mix(base, text, 0.55), OTHERS_PATTERN))
            painter.drawRect(others)
        if capacity_end is not None:  # the end of the GPU's memory, reaching past the bar
            painter.fillRect(QRectF(capacity_end - 1, 0, 2, height + 2 * top), text)

    def others_rect(self) -> QRectF | None:
        """Where the memory other programs hold is drawn: between the free and the total mark."""
        if not self._total or self._free is None or self._free >= self._total:
            return None
        scale = self._scale()
        left = 1 + self._free / scale
        return QRectF(left, self._overhang(), (self._total - self._free) / scale, self._bar_height())

    def segment_at(self, point: QPoint) -> Segment | None:
        """The segment under ``point`` (widget coordinates), for tooltips and tests."""
        for left, width, segment in self._spans():
            if left <= point.x() < left + width:
                return segment
        return None

    def segment_span(self, index: int) -> tuple[float, float]:
        """Where segment ``index`` is drawn: its left edge and width in pixels."""
        left, width, _segment = self._spans()[index]
        return left, width

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            assert isinstance(event, QHelpEvent)
            others = self.others_rect()
            if others is not None and others.contains(event.pos().toPointF()) and self._others_tooltip:
                QToolTip.showText(event.globalPos(), self._others_tooltip, self)
                return True
            segment = self.segment_at(event.pos())
            if segment is None:
                QToolTip.hideText()
                event.ignore()
            else:
                QToolTip.showText(event.globalPos(), segment.tooltip, self)
            return True
        return super().event(event)


class BarSwatch(QWidget):
    """A legend square in ``series_color(color)``, or hatched like memory held by others (``None``)."""

    def __init__(self, color: int | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._color = color
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def color(self) -> int | None:
        return self._color

    def set_color(self, color: int) -> None:
        if color != self._color:
            self._color = color
            self.update()

    def sizeHint(self) -> QSize:
        side = round(self.fontMetrics().height() * 0.8)
        return QSize(side, side)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        square = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(QPen(mix(base, text, 0.35), 1))
        if self._color is None:
            painter.setBrush(mix(base, text, 0.06))
            painter.drawRect(square)
            painter.setBrush(QBrush(mix(base, text, 0.55), OTHERS_PATTERN))
        else:
            painter.setBrush(series_color(self._color, palette))
        painter.drawRect(square)
