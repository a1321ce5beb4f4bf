"""The token histogram: the share cut at the maximum length, percentiles, updates in place, dragging."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from widgets.token_histogram import TokenHistogram, TokenLengths, truncation_text

# 40 examples: 10 of up to 512 tokens, 20 of 513..1024, 10 of 1025..2048
LENGTHS = TokenLengths(edges=[0, 512, 1024, 2048], counts=[10, 20, 10], p50=700, p90=1500, p99=2000)


@pytest.fixture
def histogram(qtbot: QtBot) -> TokenHistogram:
    widget = TokenHistogram()
    qtbot.addWidget(widget)
    widget.resize(700, 360)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def label(widget: TokenHistogram, name: str) -> str:
    return widget.findChild(QLabel, name).text()


@pytest.mark.parametrize(
    ("max_length", "text"),
    [
        (1024, "25.0% of examples (10 of 40) are longer than 1,024 tokens and will be cut."),
        (512, "75.0% of examples (30 of 40) are longer than 512 tokens and will be cut."),
        (1536, "About 12.5% of examples are longer than 1,536 tokens and will be cut."),  # inside a bin
        (2048, "Every example fits in 2,048 tokens."),
        (9000, "Every example fits in 9,000 tokens."),
    ],
)
def test_the_share_cut_is_exact_on_a_bin_edge_and_estimated_inside_one(max_length: int, text: str) -> None:
    assert truncation_text(LENGTHS, max_length) == text


def test_tiny_shares_and_no_examples() -> None:
    few = TokenLengths(edges=[0, 100, 200], counts=[9999, 1], p50=50, p90=90, p99=99)
    assert (
        truncation_text(few, 100) == "Under 0.1% of examples (1 of 10,000) are longer than 100 tokens and will be cut."
    )
    none = TokenLengths(edges=[0, 100], counts=[0], p50=0, p90=0, p99=0)
    assert truncation_text(none, 100) == "There are no examples to measure."


def test_the_widget_shows_the_data_and_the_truncation(histogram: TokenHistogram) -> None:
    histogram.set_lengths(LENGTHS)
    histogram.set_max_length(1024)
    assert (
        label(histogram, "truncation") == "25.0% of examples (10 of 40) are longer than 1,024 tokens and will be cut."
    )
    assert label(histogram, "summary") == "40 examples · median 700 tokens · p90 1,500 · p99 2,000"
    lines = {item.label.textItem.toPlainText() for item in _items(histogram, pg.InfiniteLine)}
    assert lines == {"p50 700", "p90 1,500", "p99 2,000", "max 1,024"}


def test_new_data_updates_the_same_plot_items(histogram: TokenHistogram) -> None:
    histogram.set_lengths(LENGTHS)
    before = _items(histogram, object)
    (bars,) = _items(histogram, pg.PlotDataItem)
    shifted = TokenLengths(edges=[0, 256, 512], counts=[3, 1], p50=100, p90=300, p99=500)
    histogram.set_lengths(shifted)
    histogram.set_max_length(256)
    assert _items(histogram, object) == before
    assert list(bars.xData) == [0, 256, 512]
    assert list(bars.yData) == [3, 1]
    assert label(histogram, "truncation") == "25.0% of examples (1 of 4) are longer than 256 tokens and will be cut."


def test_no_data_shows_what_will_appear(histogram: TokenHistogram) -> None:
    plot = histogram.findChild(pg.PlotWidget)
    assert not plot.isVisible()
    assert "Token lengths appear here once the dataset has been measured" in label(histogram, "empty")
    histogram.set_lengths(LENGTHS)
    assert plot.isVisible()
    histogram.set_lengths(None)
    assert not plot.isVisible()


def test_dragging_the_line_reports_the_new_maximum(qtbot: QtBot, histogram: TokenHistogram) -> None:
    histogram.set_lengths(LENGTHS)
    histogram.set_max_length(1024)
    plot = histogram.findChild(pg.PlotWidget)
    view = plot.getPlotItem().getViewBox()

    def at(tokens: float) -> QPoint:
        return plot.mapFromScene(view.mapViewToScene(QPointF(tokens, 5)))

    with qtbot.waitSignal(histogram.maxLengthChanged, timeout=1000) as signal:
        qtbot.mousePress(plot.viewport(), Qt.MouseButton.LeftButton, pos=at(1024))
        for tokens in (1100, 1300, 1536):
            qtbot.mouseMove(plot.viewport(), at(tokens))
        qtbot.mouseRelease(plot.viewport(), Qt.MouseButton.LeftButton, pos=at(1536))
    assert abs(signal.args[0] - 1536) <= 10  # a pixel is a few tokens wide
    assert histogram.max_length() == signal.args[0]
    assert label(histogram, "truncation").startswith("About ")


def test_bins_and_edges_must_agree() -> None:
    with pytest.raises(ValueError, match="2 bins need 3 edges, not 2"):
        TokenLengths(edges=[0, 1], counts=[1, 2], p50=0, p90=0, p99=0)
    with pytest.raises(ValueError, match="bin edges must increase"):
        TokenLengths(edges=[0, 2, 1], counts=[1, 2], p50=0, p90=0, p99=0)


def _items(histogram: TokenHistogram, kind: type) -> list:
    return [i for i in histogram.findChild(pg.PlotWidget).getPlotItem().items if isinstance(i, kind)]
