"""The live chart with real pyqtgraph items: batching, smoothing, log scale, rebuild and 100k points."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QLabel, QSlider
from pytestqt.qtbot import QtBot

from widgets.chart_axes import ElapsedAxis, StepAxis, duration_text
from widgets.chart_grid import ChartGrid
from widgets.live_chart import LiveChart, Series, SeriesStyle, XAxis
from widgets.redraw_pacer import INTERVAL_MS, RedrawPacer
from widgets.series_buffer import EmaState, SeriesBuffer
from widgets.units import GIB, GIBIBYTES

LOSS_SERIES = [Series("train", "Train loss"), Series("eval", "Eval loss", SeriesStyle.POINTS)]


def naive_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing, one point at a time."""
    accumulated, out = 0.0, []
    for count, value in enumerate(values, 1):
        accumulated = accumulated * weight + (1 - weight) * value
        out.append(accumulated / (1 - weight**count))
    return np.array(out)


def drawn(curve) -> tuple[np.ndarray, np.ndarray]:
    x, y = curve.getOriginalDataset()
    return (np.array([]), np.array([])) if x is None else (x, y)


@pytest.fixture
def chart(qtbot: QtBot) -> LiveChart:
    widget = LiveChart("Loss", LOSS_SERIES, smoothing=True, log_scale_toggle=True)
    qtbot.addWidget(widget)
    widget.resize(640, 360)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_appended_points_are_drawn_together_on_the_next_tick(qtbot: QtBot, chart: LiveChart) -> None:
    calls = []
    curve = chart.raw_curve("train")
    original = curve.setData
    curve.setData = lambda *args, **kwargs: (calls.append(1), original(*args, **kwargs))
    for step in range(1, 51):
        chart.append("train", step, 3.0 - step / 100)
    assert len(drawn(curve)[0]) == 0  # nothing drawn per point
    qtbot.waitUntil(lambda: len(drawn(curve)[0]) == 50, timeout=10 * INTERVAL_MS)
    assert len(calls) == 1
    x, y = drawn(curve)
    np.testing.assert_array_equal(x, np.arange(1, 51))
    np.testing.assert_allclose(y, 3.0 - np.arange(1, 51) / 100)


def test_empty_state_until_the_first_point_and_after_clear(qtbot: QtBot, chart: LiveChart) -> None:
    empty = next(label for label in chart.findChildren(QLabel) if label.text() == "Waiting for the first step…")
    assert empty.isVisible()
    assert not chart.plot_widget().isVisible()
    chart.append("train", 1, None)  # a missing value is not a first point
    chart.flush()
    assert empty.isVisible()
    chart.append("eval", 10, 2.5)
    chart.flush()
    assert chart.plot_widget().isVisible() and not empty.isVisible()
    chart.clear()
    chart.flush()
    assert empty.isVisible()
    assert len(drawn(chart.raw_curve("eval"))[0]) == 0


def test_smoothing_changes_the_smoothed_curve_not_the_raw(chart: LiveChart) -> None:
    values = 2 + np.random.default_rng(0).normal(0, 0.3, 500)
    chart.extend("train", np.arange(500), values)
    chart.extend("eval", [100, 200], [2.1, 2.0])
    chart.set_smoothing(0.9)
    chart.flush()
    np.testing.assert_array_equal(drawn(chart.raw_curve("train"))[1], values)
    np.testing.assert_allclose(drawn(chart.smoothed_curve("train"))[1], naive_ema(values, 0.9))
    assert chart.raw_curve("train").opts["pen"].color().alphaF() < 0.5  # raw shown faintly
    assert chart.smoothed_curve("eval") is None  # occasional values are never smoothed

    chart.set_smoothing(0.3)
    chart.flush()
    np.testing.assert_array_equal(drawn(chart.raw_curve("train"))[1], values)
    np.testing.assert_allclose(drawn(chart.smoothed_curve("train"))[1], naive_ema(values, 0.3))

    chart.set_smoothing(0)
    chart.flush()
    assert len(drawn(chart.smoothed_curve("train"))[0]) == 0
    assert chart.raw_curve("train").opts["pen"].color().alphaF() == 1.0


def test_the_slider_sets_the_smoothing(qtbot: QtBot, chart: LiveChart) -> None:
    slider = chart.findChild(QSlider)
    with qtbot.waitSignal(chart.smoothingChanged, timeout=1000) as signal:
        slider.setValue(85)
    assert signal.args == [0.85]
    assert chart.smoothing() == 0.85


def test_the_log_checkbox_sets_log_mode(qtbot: QtBot, chart: LiveChart) -> None:
    chart.extend("train", [1, 2, 3], [3.0, 1.0, 0.1])
    chart.flush()
    box = chart.findChild(QCheckBox)
    with qtbot.waitSignal(chart.logScaleChanged, timeout=1000) as signal:
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=box.rect().center())
    assert signal.args == [True]
    assert chart.log_scale()
    assert chart.raw_curve("train").opts["logMode"] == [False, True]
    np.testing.assert_allclose(chart.raw_curve("train").getData()[1], np.log10([3.0, 1.0, 0.1]))
    chart.set_log_scale(False)
    assert not box.isChecked()
    assert chart.raw_curve("train").opts["logMode"] == [False, False]


def test_rebuilding_from_a_list_equals_appending_one_by_one(qtbot: QtBot) -> None:
    # A job logs steps 1..30, crashes, resumes from the checkpoint at step 20 and logs 21..40.
    steps = [*range(1, 31), *range(21, 41)]
    rng = np.random.default_rng(1)
    losses = [float(v) for v in 2 + rng.normal(0, 0.2, len(steps))]
    losses[3] = None  # a step whose loss was not reported
    evals = ([10, 20, 30, 20, 30, 40], [2.2, 2.1, 2.05, 2.1, 2.0, 1.9])

    live = LiveChart("Loss", LOSS_SERIES, smoothing=True)
    rebuilt = LiveChart("Loss", LOSS_SERIES, smoothing=True)
    for widget in (live, rebuilt):
        qtbot.addWidget(widget)
    for step, loss in zip(steps, losses, strict=True):
        live.append("train", step, loss)
        if step in evals[0]:
            live.append("eval", step, evals[1][evals[0].index(step)])
    for step, loss in zip(*evals, strict=True):  # the resumed run's eval points, in order
        live.append("eval", step, loss)
    rebuilt.set_points({"train": (steps, losses), "eval": evals})
    live.flush()
    rebuilt.flush()

    for curve in ("raw_curve", "smoothed_curve"):
        for key in ("train", "eval") if curve == "raw_curve" else ("train",):
            for a, b in zip(drawn(getattr(live, curve)(key)), drawn(getattr(rebuilt, curve)(key)), strict=True):
                np.testing.assert_array_equal(a, b)
    x, _y = drawn(rebuilt.raw_curve("train"))
    np.testing.assert_array_equal(x, [s for s in range(1, 41) if s != 4])  # the resumed steps replaced the old
    np.testing.assert_array_equal(drawn(rebuilt.raw_curve("eval"))[0], [10, 20, 30, 40])


def test_100k_points_render_downsampled_and_clipped(qtbot: QtBot, chart: LiveChart) -> None:
    steps = np.arange(100_000, dtype=float)
    chart.extend("train", steps, 0.8 + 2 * np.exp(-steps / 20_000) + np.random.default_rng(2).normal(0, 0.05, 100_000))
    chart.flush()
    image = chart.grab()
    assert not image.isNull() and image.width() > 0
    x, _y = chart.raw_curve("train").getData()  # what is drawn after downsampling
    assert 0 < len(x) < 10_000

    chart.plot_widget().getPlotItem().setXRange(40_000, 41_000, padding=0)
    chart.grab()
    x, _y = chart.raw_curve("train").getData()
    assert x.min() >= 39_000 and x.max() <= 42_000  # clipped to the view


def test_bytes_are_plotted_in_gib_and_the_legend_shows_the_latest(qtbot: QtBot) -> None:
    chart = LiveChart(
        "GPU memory",
        [Series("used", "Used"), Series("total", "Total", SeriesStyle.LIMIT)],
        unit=GIBIBYTES,
        x_axis=XAxis.ELAPSED,
    )
    qtbot.addWidget(chart)
    chart.extend("used", [0, 2, 4], [1 * GIB, 6 * GIB, 7.5 * GIB])
    chart.extend("total", [0, 4], [24 * GIB, 24 * GIB])
    chart.flush()
    np.testing.assert_allclose(drawn(chart.raw_curve("used"))[1], [1, 6, 7.5])
    assert chart.raw_curve("total").opts["pen"].style() == Qt.PenStyle.DashLine
    texts = [label.text() for label in chart.findChildren(QLabel)]
    assert "Used  7.5\u00a0GiB" in texts
    assert "Total  24.0\u00a0GiB" in texts
    assert chart.plot_widget().getPlotItem().getAxis("left").labelText == "GiB"


def test_a_hidden_chart_draws_only_once_shown(qtbot: QtBot) -> None:
    chart = LiveChart("Loss", LOSS_SERIES)
    qtbot.addWidget(chart)
    chart.append("train", 1, 2.0)
    assert len(drawn(chart.raw_curve("train"))[0]) == 0
    chart.show()
    qtbot.waitUntil(lambda: len(drawn(chart.raw_curve("train"))[0]) == 1, timeout=10 * INTERVAL_MS)


def test_a_fixed_range_stays_put(qtbot: QtBot) -> None:
    chart = LiveChart("GPU use", [Series("gpu0", "GPU 0")], y_range=(0, 100))
    qtbot.addWidget(chart)
    chart.extend("gpu0", [1, 2, 3], [10, 20, 30])
    chart.flush()
    low, high = chart.plot_widget().getPlotItem().viewRange()[1]
    assert low < 0 < 100 < high < 110


def test_smoothing_and_series_are_checked(qtbot: QtBot) -> None:
    chart = LiveChart("Learning rate", [Series("lr", "Learning rate")])
    qtbot.addWidget(chart)
    with pytest.raises(RuntimeError):
        chart.set_smoothing(0.5)
    with pytest.raises(KeyError):
        chart.append("loss", 1, 1.0)
    with pytest.raises(KeyError):
        chart.set_points({"loss": ([1], [1.0])})
    with pytest.raises(ValueError):
        chart.add_series(Series("lr", "Again"))


def test_the_grid_places_and_clears_its_charts(qtbot: QtBot) -> None:
    grid = ChartGrid(columns=2)
    qtbot.addWidget(grid)
    charts = [grid.add(LiveChart(f"Chart {i}", [Series("s", "S")])) for i in range(3)]
    for chart in charts:
        chart.append("s", 1, 1.0)
        chart.flush()
    assert grid.charts() == charts
    positions = [grid.layout().getItemPosition(grid.layout().indexOf(chart))[:2] for chart in charts]
    assert positions == [(0, 0), (0, 1), (1, 0)]
    grid.clear()
    for chart in charts:
        chart.flush()
        assert len(drawn(chart.raw_curve("s"))[0]) == 0


def test_the_pacer_redraws_one_chart_per_turn_and_each_once_a_round(qtbot: QtBot) -> None:
    pacer = RedrawPacer()
    flushed: list[str] = []

    class Chart:
        def __init__(self, name: str) -> None:
            self.name = name

        def flush(self) -> None:
            flushed.append(self.name)
            QTimer.singleShot(0, lambda: flushed.append("other work"))  # runs before the next chart

    a, b, c = Chart("a"), Chart("b"), Chart("c")
    for chart in (a, b, c, a):
        pacer.request(chart)
    pacer.cancel(c)
    qtbot.waitUntil(lambda: len(flushed) == 4, timeout=10 * INTERVAL_MS)
    assert flushed == ["a", "other work", "b", "other work"]


# -- the buffers and axes, without widgets ---------------------------------------------------------


@pytest.mark.parametrize("weight", [0.01, 0.6, 0.9, 0.999])
def test_ema_matches_tensorboard_in_any_number_of_pieces(weight: float) -> None:
    values = np.random.default_rng(3).normal(5, 2, 20_000)
    state = EmaState(weight)
    pieces = np.concatenate([state.feed(values[:1]), state.feed(values[1:7]), state.feed(values[7:])])
    np.testing.assert_allclose(pieces, naive_ema(values, weight), rtol=1e-9)
    np.testing.assert_allclose(EmaState(weight).feed(np.full(100, 3.0)), 3.0, rtol=1e-12)  # debiased: no ramp


def test_a_buffer_grows_and_rewrites_history_from_a_repeated_step() -> None:
    buffer = SeriesBuffer()
    buffer.extend(np.arange(5000), np.arange(5000) * 0.5)
    assert len(buffer) == 5000
    before = buffer.smoothed(0.5).copy()
    buffer.append(4000, -1.0)
    assert len(buffer) == 4001 and buffer.last() == (4000.0, -1.0)
    np.testing.assert_allclose(buffer.smoothed(0.5)[:4000], before[:4000])
    assert not buffer.append(4001, float("nan"))
    buffer.extend([3, 1, 2], [1.0, 2.0, 3.0])  # out of order: as appended one by one
    np.testing.assert_array_equal(buffer.x, [0, 1, 2])
    np.testing.assert_array_equal(buffer.y, [0.0, 2.0, 3.0])


def test_axes_tick_at_whole_steps_and_round_durations(qapp) -> None:
    step = StepAxis()
    assert all(spacing >= 1 for spacing, _offset in step.tickSpacing(0, 3, 400))
    assert step.tickStrings([0, 1500, 12000], 1, 500) == ["0", "1,500", "12,000"]
    elapsed = ElapsedAxis()
    (major, _offset), *_ = elapsed.tickSpacing(0, 5400, 600)
    assert major in (600, 900, 1800)
    assert [duration_text(s) for s in (0, 45, 75, 3600, 5400, 90000)] == [
        "0",
        "45 s",
        "1 min 15 s",
        "1 h",
        "1 h 30 min",
        "1 d 1 h",
    ]
