"""Charts in rows of equal columns, emptied together when another job is selected."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

from widgets.live_chart import LiveChart


class ChartGrid(QWidget):
    """Lays out ``LiveChart``s left to right, ``columns`` to a row, in the order they are added."""

    def __init__(self, columns: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._columns = columns
        self._charts: list[LiveChart] = []
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        line = self.fontMetrics().height()
        self._grid.setHorizontalSpacing(line)
        self._grid.setVerticalSpacing(line)
        for column in range(columns):
            self._grid.setColumnStretch(column, 1)

    def add(self, chart: LiveChart) -> LiveChart:
        """Place ``chart`` in the next free cell and return it."""
        row, column = divmod(len(self._charts), self._columns)
        self._grid.addWidget(chart, row, column)
        self._grid.setRowStretch(row, 1)
        self._charts.append(chart)
        return chart

    def charts(self) -> list[LiveChart]:
        return list(self._charts)

    def clear(self) -> None:
        """Empty every chart, e.g. before rebuilding them from another job's events."""
        for chart in self._charts:
            chart.clear()
