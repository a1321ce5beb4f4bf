"""One number across numbered releases (a metric per version), with two of them marked for a comparison.

Knows only numbers: the Adapters page passes each version's value (None where it was not
measured, which leaves a gap) and which two versions are being compared.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QWidget

from widgets.chart_colors import series_color


class VersionChart(pg.PlotWidget):
    """``values`` by version number as a line with dots; the compared versions drawn as larger marks."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(140)
        self.setTitle(title)
        self.setLabel("bottom", "version")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setMenuEnabled(False)
        self.setBackground(self.palette().color(QPalette.ColorRole.Base))
        self.points: dict[int, float] = {}
        """What is drawn: version number → value (tests read it)."""

    def show_values(self, values: dict[int, float | None], marked: tuple[int, ...] = ()) -> None:
        self.clear()
        self.points = {n: v for n, v in sorted(values.items()) if v is not None}
        color = series_color(0, self.palette())
        xs, ys = list(self.points), list(self.points.values())
        step = max(1, len(xs) // 10)  # whole version numbers, ten labels at most
        self.getAxis("bottom").setTickSpacing(step, step)
        self.plot(xs, ys, pen=pg.mkPen(color, width=1), symbol="o", symbolSize=5, symbolBrush=color)
        shown = [n for n in marked if n in self.points]
        for i, number in enumerate(shown):
            mark = series_color(i + 1, self.palette())
            self.plot(
                [number], [self.points[number]], pen=None, symbol="d" if i else "s", symbolSize=11, symbolBrush=mark
            )
