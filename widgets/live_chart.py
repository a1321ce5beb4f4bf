"""A time-series chart that takes points as a job reports them and stays smooth with 100,000 of them.

Points are appended to numpy buffers (``SeriesBuffer``) and drawn at most every 100 ms, not
once per point, one chart per turn of the event loop (``RedrawPacer``); a chart that is not
visible draws nothing until it is shown. pyqtgraph clips each curve to the visible x range
and downsamples it to one minimum and one maximum per pixel column, so a redraw costs about
the same at 1,000 or 100,000 points.
Lines are one pixel wide: Qt's stroker took 1.4-7 s to paint a 1.5 px antialiased line through
6,000 points (see bench/results/chart_points.md). The legend is ``widgets.chart_legend``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QHideEvent, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from widgets.chart_axes import ElapsedAxis, StepAxis, ValueAxis, duration_text
from widgets.chart_colors import series_color
from widgets.chart_legend import LegendEntry, SeriesStyle
from widgets.redraw_pacer import pacer
from widgets.series_buffer import SeriesBuffer
from widgets.units import PLAIN, Unit

DEFAULT_SMOOTHING = 0.6  # TensorBoard's default
_RAW_ALPHA_WHEN_SMOOTHED = 0.25


class XAxis(Enum):
    STEP = "Step"
    ELAPSED = "Time since start"  # x in seconds


@dataclass(frozen=True)
class Series:
    """One named series of a chart; ``key`` is what ``append`` is called with, ``label`` what people read."""

    key: str
    label: str
    style: SeriesStyle = SeriesStyle.LINE


@dataclass
class _Plotted:
    series: Series
    color_index: int
    raw: pg.PlotDataItem
    smoothed: pg.PlotDataItem | None  # only LINE series of a chart with a smoothing control
    entry: LegendEntry
    buffer: SeriesBuffer = field(default_factory=SeriesBuffer)
    dirty: bool = False


class LiveChart(QWidget):
    """Named series over steps or time, with a legend of latest values, smoothing and a log scale.

    Feed it with ``append`` (one point) or ``extend``; rebuild it from a job's saved events with
    ``set_points``. The x values of a series must increase: a point at or before the last one
    replaces the points from there on, as when a job resumes from an earlier checkpoint.
    """

    smoothingChanged = Signal(float)
    logScaleChanged = Signal(bool)

    def __init__(
        self,
        title: str,
        series: Sequence[Series] = (),
        *,
        unit: Unit = PLAIN,
        x_axis: XAxis = XAxis.STEP,
        smoothing: bool = False,
        log_scale_toggle: bool = False,
        y_range: tuple[float, float] | None = None,
        empty_text: str = "Waiting for the first step…",
        parent: QWidget | None = None,
    ) -> None:
        """``smoothing`` adds the smoothing control; ``y_range`` fixes the vertical axis (0–100 for
        percentages) instead of fitting it to the data."""
        super().__init__(parent)
        self._unit = unit
        self._x_axis = x_axis
        self._series: dict[str, _Plotted] = {}
        self._smoothing = DEFAULT_SMOOTHING if smoothing else 0.0

        self._title = QLabel(title, textFormat=Qt.TextFormat.PlainText)
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)

        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self._title)
        header.addStretch(1)
        self._slider: QSlider | None = None
        self._smoothing_value: QLabel | None = None
        if smoothing:
            self._add_smoothing_control(header)
        self._log_box: QCheckBox | None = None
        if log_scale_toggle:
            self._log_box = QCheckBox("Log scale")
            self._log_box.setToolTip(
                "Draw the vertical axis on a logarithmic scale, so that small late improvements\n"
                "in the loss stay visible next to the large early ones."
            )
            self._log_box.toggled.connect(self.set_log_scale)
            header.addWidget(self._log_box)

        self._legend = QHBoxLayout()
        self._legend.setContentsMargins(0, 0, 0, 0)
        self._legend.addStretch(1)

        bottom = StepAxis() if x_axis is XAxis.STEP else ElapsedAxis()
        self._plot = pg.PlotWidget(axisItems={"bottom": bottom, "left": ValueAxis()})
        self._plot.setAccessibleName(title)
        self._plot.setMinimumHeight(self.fontMetrics().height() * 8)
        item = self._plot.getPlotItem()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=True, y=False)  # zoom and pan in time; the values follow
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        item.showGrid(x=True, y=True, alpha=0.12)
        for side in ("left", "bottom"):  # no third tick level: its grid lines were a third of a paint
            item.getAxis(side).setStyle(maxTickLevel=1)
        item.setLabel("bottom", x_axis.value)
        if unit.label:
            item.setLabel("left", unit.label)
        # The same width on every chart, so that charts stacked on a page line up.
        metrics = self.fontMetrics()
        item.getAxis("left").setWidth(metrics.horizontalAdvance("0.00015") + 2 * metrics.height())
        if y_range is None:
            item.setAutoVisible(y=True)  # fit the values in view, not all of them
        else:
            item.setYRange(*y_range, padding=0.06)  # room for the labels at both ends
            item.enableAutoRange(y=False)

        self._empty = QLabel(empty_text, alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self._empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._empty.setBackgroundRole(QPalette.ColorRole.Base)  # the plot's own background: no jump
        self._empty.setAutoFillBackground(True)
        self._empty.setMinimumHeight(self._plot.minimumHeight())
        body = QWidget()
        self._stack = QStackedLayout(body)
        self._stack.addWidget(self._empty)
        self._stack.addWidget(self._plot)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(self.fontMetrics().height() // 4)
        layout.addLayout(header)
        layout.addLayout(self._legend)
        layout.addWidget(body, 1)

        for one in series:
            self.add_series(one)
        self._apply_palette()
        self._show_empty_state()

    # -- data ------------------------------------------------------------------------------------

    def add_series(self, series: Series) -> None:
        """Add a series (e.g. one per GPU once the job says how many there are)."""
        if series.key in self._series:
            raise ValueError(f"the chart already has a series {series.key!r}")
        item = self._plot.getPlotItem()
        raw = pg.PlotDataItem(name=series.label, antialias=True, autoDownsampleFactor=1.0)
        smoothed = None
        if series.style is SeriesStyle.LINE and self._slider is not None:
            smoothed = pg.PlotDataItem(name=f"{series.label} (smoothed)", antialias=True, autoDownsampleFactor=1.0)
            smoothed.setZValue(2)
        if series.style is SeriesStyle.POINTS:
            raw.setZValue(3)
        for curve in (raw, smoothed):
            if curve is not None:
                item.addItem(curve)
        entry = LegendEntry(series.label, series.style)
        self._legend.insertWidget(self._legend.count() - 1, entry)
        plotted = _Plotted(series, len(self._series), raw, smoothed, entry)
        self._series[series.key] = plotted
        self._style(plotted)

    def append(self, key: str, x: float, y: float | None) -> None:
        """Add one point to series ``key``; a missing value (None, NaN) is skipped."""
        plotted = self._series[key]
        if plotted.buffer.append(x, y):
            plotted.dirty = True
            self._request_redraw()

    def extend(self, key: str, xs: Sequence[float] | np.ndarray, ys: Sequence[float | None] | np.ndarray) -> None:
        """Add many points to series ``key`` at once."""
        plotted = self._series[key]
        plotted.buffer.extend(xs, ys)
        plotted.dirty = True
        self._request_redraw()

    def set_points(self, points: Mapping[str, tuple[Sequence[float], Sequence[float | None]]]) -> None:
        """Replace every series' points, e.g. with those read back from a job's events file.

        Series missing from ``points`` are emptied.
        """
        unknown = set(points) - set(self._series)
        if unknown:
            raise KeyError(f"no such series: {', '.join(sorted(unknown))}")
        for key, plotted in self._series.items():
            plotted.buffer.clear()
            if key in points:
                plotted.buffer.extend(*points[key])
            plotted.dirty = True
        self._request_redraw()

    def clear(self) -> None:
        """Forget every point and show the empty state again (another job was selected)."""
        self.set_points({})

    def flush(self) -> None:
        """Draw the points received since the last redraw now, instead of on the next tick."""
        drawn = False
        for plotted in self._series.values():
            if plotted.dirty:
                self._draw(plotted)
                drawn = True
        if drawn:
            # Fit the range now: left to the paint, the new range needs a second full paint.
            self._plot.getPlotItem().getViewBox().prepareForPaint()
        self._show_empty_state()

    # -- settings --------------------------------------------------------------------------------

    def smoothing(self) -> float:
        return self._smoothing

    def set_smoothing(self, weight: float) -> None:
        """Smooth the LINE series with this weight, 0 (raw) to 0.99; needs the smoothing control."""
        if self._slider is None or self._smoothing_value is None:
            raise RuntimeError("this chart was made without smoothing=True")
        weight = round(min(max(weight, 0.0), 0.99), 2)
        if weight == self._smoothing:
            return
        self._smoothing = weight
        self._slider.setValue(round(weight * 100))
        self._smoothing_value.setText(f"{weight:.2f}")
        for plotted in self._series.values():
            if plotted.smoothed is not None:
                self._style(plotted)
                plotted.dirty = True
        self._request_redraw()
        self.smoothingChanged.emit(weight)

    def log_scale(self) -> bool:
        return self._plot.getPlotItem().getAxis("left").logMode

    def set_log_scale(self, on: bool) -> None:
        """Draw values on a logarithmic axis; values of 0 or below are left out while it is on."""
        if on == self.log_scale():
            return
        self._plot.getPlotItem().setLogMode(y=on)
        if self._log_box is not None:
            self._log_box.setChecked(on)
        self.logScaleChanged.emit(on)

    def set_empty_text(self, text: str) -> None:
        """What the chart says while it has no points, e.g. that the machine has no GPU."""
        self._empty.setText(text)

    # -- what is drawn (for the app's status texts and for tests) --------------------------------

    def raw_curve(self, key: str) -> pg.PlotDataItem:
        return self._series[key].raw

    def smoothed_curve(self, key: str) -> pg.PlotDataItem | None:
        return self._series[key].smoothed

    def plot_widget(self) -> pg.PlotWidget:
        return self._plot

    # -- internals -------------------------------------------------------------------------------

    def _add_smoothing_control(self, header: QHBoxLayout) -> None:
        tip = (
            "Smoothing averages each point with the ones before it, so that the trend shows\n"
            "through step-to-step noise. The raw values stay visible, faintly. 0 turns it off."
        )
        label = QLabel("Smoothing")
        label.setToolTip(tip)
        self._slider = QSlider(Qt.Orientation.Horizontal)
        self._slider.setRange(0, 99)
        self._slider.setToolTip(tip)
        self._slider.setAccessibleName("Smoothing")
        self._slider.setValue(round(self._smoothing * 100))
        self._slider.setFixedWidth(self.fontMetrics().horizontalAdvance("M") * 8)
        self._slider.valueChanged.connect(self._slider_moved)
        label.setBuddy(self._slider)
        self._smoothing_value = QLabel(f"{self._smoothing:.2f}", textFormat=Qt.TextFormat.PlainText)
        self._smoothing_value.setMinimumWidth(self.fontMetrics().horizontalAdvance("0.00"))
        header.addWidget(label)
        header.addWidget(self._slider)
        header.addWidget(self._smoothing_value)
        header.addSpacing(self.fontMetrics().height())

    def _slider_moved(self, value: int) -> None:
        self.set_smoothing(value / 100)

    def _request_redraw(self) -> None:
        if self.isVisible():
            pacer().request(self)

    def _draw(self, plotted: _Plotted) -> None:
        buffer = plotted.buffer
        scale = self._unit.scale
        x = buffer.x
        plotted.raw.setData(x, buffer.y * scale if scale != 1 else buffer.y)
        smoothed = None
        if plotted.smoothed is not None:
            if self._smoothing > 0 and len(buffer):
                smoothed = buffer.smoothed(self._smoothing)
                plotted.smoothed.setData(x, smoothed * scale if scale != 1 else smoothed)
            else:
                plotted.smoothed.setData([], [])
        self._show_latest(plotted, None if smoothed is None else float(smoothed[-1]))
        plotted.dirty = False

    def _show_latest(self, plotted: _Plotted, smoothed: float | None) -> None:
        label, latest = plotted.series.label, plotted.buffer.last()
        if latest is None:
            plotted.entry.set_text(label, "")
            return
        x, y = latest
        where = f"step {x:,.0f}" if self._x_axis is XAxis.STEP else duration_text(x)
        tip = f"{label} at {where}: {self._unit.format(y)}"
        if smoothed is not None:
            tip += f"\nSmoothed: {self._unit.format(smoothed)}"
        plotted.entry.set_text(f"{label}  {self._unit.format(y)}", tip)

    def _show_empty_state(self) -> None:
        has_points = any(len(plotted.buffer) for plotted in self._series.values())
        self._stack.setCurrentIndex(1 if has_points else 0)
        for plotted in self._series.values():
            plotted.entry.setVisible(has_points)

    def _style(self, plotted: _Plotted) -> None:
        color = series_color(plotted.color_index, self.palette())
        style = plotted.series.style
        pen = pg.mkPen(color, width=1)  # Qt strokes wider antialiased paths a hundred times slower
        if style is SeriesStyle.LIMIT:
            pen.setStyle(Qt.PenStyle.DashLine)
        if plotted.smoothed is not None:
            plotted.smoothed.setPen(pen)
            if self._smoothing > 0:
                faint = QColor(color)
                faint.setAlphaF(_RAW_ALPHA_WHEN_SMOOTHED)
                pen = pg.mkPen(faint, width=1)
        plotted.raw.setPen(pen)
        if style is SeriesStyle.POINTS:
            plotted.raw.setSymbol("o")
            plotted.raw.setSymbolSize(6)
            plotted.raw.setSymbolPen(pg.mkPen(color))
            plotted.raw.setSymbolBrush(pg.mkBrush(color))
        plotted.entry.set_color(color)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()

    def _apply_palette(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        self._plot.setBackground(palette.color(QPalette.ColorRole.Base))
        item = self._plot.getPlotItem()
        for side in ("left", "bottom"):
            axis = item.getAxis(side)
            axis.setPen(muted)
            axis.setTextPen(text)
        for plotted in self._series.values():
            self._style(plotted)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if any(plotted.dirty for plotted in self._series.values()):
            pacer().request(self)

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        pacer().cancel(self)  # drawn when shown again
