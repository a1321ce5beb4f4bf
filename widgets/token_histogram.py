"""How long the examples are in tokens, and how many the chosen maximum length would cut.

The plot items are made once and updated in place, so new data or a new maximum redraws
without rebuilding the plot. The maximum-length line can be dragged; the share cut is
worked out from the bins, exactly when the maximum falls on a bin edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QStackedLayout, QVBoxLayout, QWidget

from widgets.palette import negative_color


@dataclass(frozen=True)
class TokenLengths:
    """Token lengths of a dataset's examples, binned, with their percentiles.

    Bin ``i`` counts the examples longer than ``edges[i]`` and at most ``edges[i + 1]`` tokens
    (``numpy.searchsorted(edges, lengths) - 1`` bins them so), which makes the share cut at a
    maximum that is a bin edge exact.
    """

    edges: Sequence[float]
    counts: Sequence[int]
    p50: float
    p90: float
    p99: float

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.counts) + 1:
            raise ValueError(f"{len(self.counts)} bins need {len(self.counts) + 1} edges, not {len(self.edges)}")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("bin edges must increase")

    @property
    def total(self) -> int:
        return int(sum(self.counts))

    def longer_than(self, tokens: float) -> tuple[float, bool]:
        """How many examples are longer than ``tokens``, and whether that count is exact.

        A bin that straddles ``tokens`` is split in proportion, as if its lengths were even.
        """
        above, exact = 0.0, True
        for low, high, count in zip(self.edges, self.edges[1:], self.counts, strict=False):
            if low >= tokens:
                above += count
            elif high > tokens and count:
                above += count * (high - tokens) / (high - low)
                exact = False
        return above, exact


_PERCENTILES = (("p50", 0.95), ("p90", 0.85), ("p99", 0.75))  # name, label height along the line


class TokenHistogram(QWidget):
    """A histogram of token lengths, the maximum length as a line, and the share it cuts."""

    maxLengthChanged = Signal(int)  # the user dragged the line

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lengths: TokenLengths | None = None
        self._max_length = 2048

        self._plot = pg.PlotWidget()
        self._plot.setAccessibleName("Token length histogram")
        item = self._plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("bottom", "Tokens per example")
        item.setLabel("left", "Examples")
        self._bars = pg.PlotDataItem(stepMode="center", fillLevel=0)
        self._cut_zone = pg.LinearRegionItem(movable=False)
        self._cut_zone.setZValue(-10)
        self._percentile_lines = {
            name: pg.InfiniteLine(angle=90, label=f"{name} {{value:,.0f}}", labelOpts={"position": height})
            for name, height in _PERCENTILES
        }
        # Made at the current maximum, so any later move that changes it is the user's.
        self._max_line = pg.InfiniteLine(
            self._max_length, angle=90, movable=True, label="max {value:,.0f}", labelOpts={"position": 0.6}
        )
        self._max_line.setToolTip("Maximum length: drag to see how many examples a different one would cut")
        self._max_line.sigPositionChanged.connect(self._line_moved)
        self._max_line.sigPositionChangeFinished.connect(self._line_dropped)
        for plotted in (self._cut_zone, self._bars, *self._percentile_lines.values(), self._max_line):
            item.addItem(plotted)

        self._summary = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self._summary.setObjectName("summary")
        self._truncation = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self._truncation.setObjectName("truncation")
        self._summary.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        facts = QVBoxLayout()
        margin = self.fontMetrics().height() // 2
        facts.setContentsMargins(margin, margin // 2, margin, 0)
        facts.addWidget(self._truncation)
        facts.addWidget(self._summary)

        self._empty = QLabel(
            "Token lengths appear here once the dataset has been measured with the base model's tokenizer.",
            alignment=Qt.AlignmentFlag.AlignCenter,
            wordWrap=True,
        )
        self._empty.setObjectName("empty")
        self._empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        chart = QWidget()
        chart_layout = QVBoxLayout(chart)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.addWidget(self._plot, 1)
        chart_layout.addLayout(facts)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self._empty)
        self._stack.addWidget(chart)

        self._apply_palette()
        self.set_lengths(None)

    # -- public ------------------------------------------------------------------------------

    def set_lengths(self, lengths: TokenLengths | None) -> None:
        """Show ``lengths``, or the empty state for None."""
        self._lengths = lengths
        if lengths is None:
            self._stack.setCurrentIndex(0)
            return
        self._stack.setCurrentIndex(1)
        self._bars.setData(list(lengths.edges), list(lengths.counts))
        for name, line in self._percentile_lines.items():
            line.setValue(getattr(lengths, name))
        self._summary.setText(
            f"{lengths.total:,} examples · median {lengths.p50:,.0f} tokens · "
            f"p90 {lengths.p90:,.0f} · p99 {lengths.p99:,.0f}"
        )
        self._refresh()

    def set_max_length(self, tokens: int) -> None:
        """Move the line to ``tokens`` (the spec's maximum sequence length); emits nothing."""
        self._max_length = tokens
        self._max_line.setValue(tokens)  # _line_moved sees no change, so nothing is emitted
        self._refresh()

    def max_length(self) -> int:
        return self._max_length

    # -- internals ---------------------------------------------------------------------------

    def _refresh(self) -> None:
        lengths = self._lengths
        if lengths is None:
            return
        right = max(lengths.edges[-1], self._max_length) * 1.05
        item = self._plot.getPlotItem()
        item.setXRange(min(0, lengths.edges[0]), right, padding=0)
        item.setYRange(0, max(lengths.counts, default=0) * 1.1 or 1, padding=0)
        self._max_line.setBounds((1, right))
        self._show_cut()

    def _show_cut(self) -> None:
        """The shaded zone past the maximum and the sentence under the plot; the axes stay put."""
        if self._lengths is not None:
            right = self._plot.getPlotItem().viewRange()[0][1]
            self._cut_zone.setRegion((self._max_length, right))
            self._truncation.setText(truncation_text(self._lengths, self._max_length))

    def _line_moved(self) -> None:
        tokens = max(1, round(self._max_line.value()))
        if tokens != self._max_length:  # the user is dragging: rescaling now would move the plot under them
            self._max_length = tokens
            self._show_cut()

    def _line_dropped(self) -> None:
        self.set_max_length(self._max_length)  # snap to the whole number shown
        self.maxLengthChanged.emit(self._max_length)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()

    def _apply_palette(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        accent = palette.color(QPalette.ColorRole.Highlight)
        cut = negative_color(palette)
        self._plot.setBackground(palette.color(QPalette.ColorRole.Base))
        item = self._plot.getPlotItem()
        for side in ("left", "bottom"):
            axis = item.getAxis(side)
            axis.setPen(muted)
            axis.setTextPen(text)
        fill = pg.mkColor(accent)
        fill.setAlphaF(0.55)
        self._bars.setPen(pg.mkPen(accent, width=1))
        self._bars.setBrush(fill)
        zone = pg.mkColor(cut)
        zone.setAlphaF(0.10)
        self._cut_zone.setBrush(zone)
        for line in self._cut_zone.lines:
            line.setPen(pg.mkPen(None))
        for line in self._percentile_lines.values():
            line.setPen(pg.mkPen(muted, width=1, style=Qt.PenStyle.DashLine))
            line.label.setColor(text)
        self._max_line.setPen(pg.mkPen(cut, width=2))
        self._max_line.setHoverPen(pg.mkPen(cut, width=4))
        self._max_line.label.setColor(cut)


def truncation_text(lengths: TokenLengths, max_length: int) -> str:
    """The sentence under the histogram: how many examples ``max_length`` cuts."""
    total = lengths.total
    above, exact = lengths.longer_than(max_length)
    if not total:
        return "There are no examples to measure."
    if above == 0:
        return f"Every example fits in {max_length:,} tokens."
    share = above / total
    percent = f"{share:.1%}" if share >= 0.001 else "under 0.1%"
    if exact:
        return (
            f"{percent.capitalize()} of examples ({round(above):,} of {total:,}) are longer than "
            f"{max_length:,} tokens and will be cut."
        )
    return f"About {percent} of examples are longer than {max_length:,} tokens and will be cut."
