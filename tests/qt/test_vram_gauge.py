"""The VRAM gauge with real widgets: verdicts, the bar's proportions, no GPU, suggestions, cheap updates."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QColor, QHelpEvent, QPalette
from PySide6.QtWidgets import QComboBox, QLabel, QToolTip, QWidget
from pytestqt.qtbot import QtBot

from widgets.memory_bar import BarSwatch, MemoryBar
from widgets.vram_data import GaugeData, GpuInfo, MemoryTerm, Suggestion, Verdict
from widgets.vram_gauge import NO_GPU_TEXT, VramGauge

GIB = 1024**3
TERMS = [
    MemoryTerm("Base weights", 6 * GIB, "The model's own weights, mostly in 4-bit.", 0),
    MemoryTerm("LoRA + optimizer", 1 * GIB, "The adapter being trained and the optimizer's state.", 2),
    MemoryTerm("Activations", 3 * GIB, "What each layer keeps for the backward pass.", 5),
    MemoryTerm("Logits", 2 * GIB, "A score for every word of the vocabulary at every position.", 6),
]
GPUS = [GpuInfo("NVIDIA GeForce RTX 4090", 24 * GIB, 20 * GIB), GpuInfo("NVIDIA RTX A2000", 12 * GIB, 11 * GIB)]
SUGGESTIONS = [
    Suggestion("Turn on gradient checkpointing", 9 * GIB, Verdict.FITS),
    Suggestion("Halve the micro-batch and double accumulation", 10 * GIB, Verdict.TIGHT),
    Suggestion("Use the 8-bit optimizer", 11 * GIB),
]


def estimate(verdict: Verdict = Verdict.FITS, terms=TERMS, suggestions=()) -> GaugeData:
    return GaugeData(
        terms=terms,
        verdict=verdict,
        suggestions=suggestions,
        ram_load_bytes=7 * GIB,
        ram_merge_bytes=16 * GIB,
        disk_bytes=30 * GIB,
    )


@pytest.fixture
def gauge(qtbot: QtBot) -> VramGauge:
    widget = VramGauge()
    qtbot.addWidget(widget)
    widget.resize(400, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def label(gauge: VramGauge, name: str) -> QLabel:
    return gauge.findChild(QLabel, name)


def visible_texts(gauge: VramGauge) -> list[str]:
    return [w.text() for w in gauge.findChildren(QLabel) if w.isVisible() and w.text()]


@pytest.mark.parametrize(
    ("verdict", "says"),
    [
        (Verdict.FITS, "About 12.0\u00a0GiB needed; 20.0\u00a0GiB of this GPU's 24.0\u00a0GiB is free."),
        (Verdict.TIGHT, "little to spare"),
        (Verdict.WILL_NOT_FIT, "but only 20.0\u00a0GiB of 24.0\u00a0GiB is free"),
    ],
)
def test_the_verdict_is_said_in_words_with_the_numbers(gauge: VramGauge, verdict: Verdict, says: str) -> None:
    gauge.set_gpus(GPUS)
    gauge.set_data(estimate(verdict))
    assert label(gauge, "verdict").text() == verdict.value
    assert says in label(gauge, "verdictDetail").text()


def test_a_peak_beyond_the_gpu_says_so(gauge: VramGauge) -> None:
    gauge.set_gpus(GPUS)
    gauge.set_current_gpu(1)
    gauge.set_data(estimate(Verdict.WILL_NOT_FIT, terms=[*TERMS, MemoryTerm("Overhead", 2 * GIB, "", 8)]))
    assert label(gauge, "verdict").text() == "Will not fit"
    assert "14.0\u00a0GiB needed, more than this GPU's 12.0\u00a0GiB" in label(gauge, "verdictDetail").text()


def test_the_verdict_colours_differ_and_follow_the_palette(gauge: VramGauge) -> None:
    gauge.set_gpus(GPUS)
    colors = {}
    for verdict in Verdict:
        gauge.set_data(estimate(verdict))
        colors[verdict] = label(gauge, "verdict").palette().color(QPalette.ColorRole.WindowText).name()
    assert len(set(colors.values())) == 3
    dark = QPalette(gauge.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    gauge.setPalette(dark)
    assert label(gauge, "verdict").palette().color(QPalette.ColorRole.WindowText).lightness() > 128


def test_the_bar_is_drawn_in_proportion_to_the_terms_and_the_gpu(gauge: VramGauge) -> None:
    gauge.set_gpus(GPUS)
    gauge.set_data(estimate())
    bar = gauge.findChild(MemoryBar)
    usable = bar.width() - 2
    per_byte = usable / (24 * GIB)  # the GPU is larger than the peak, so it spans the width
    left = 1.0
    for index, term in enumerate(TERMS):
        start, width = bar.segment_span(index)
        assert start == pytest.approx(left)
        assert width == pytest.approx(term.bytes * per_byte)
        left += width
    # Memory other programs hold (24 - 20 GiB) is hatched at the right end.
    others = bar.others_rect()
    assert others.left() == pytest.approx(1 + 20 * GIB * per_byte)
    assert others.width() == pytest.approx(4 * GIB * per_byte)


def test_hovering_a_segment_explains_it(gauge: VramGauge) -> None:
    gauge.set_gpus(GPUS)
    gauge.set_data(estimate())
    bar = gauge.findChild(MemoryBar)
    start, width = bar.segment_span(2)
    segment = bar.segment_at(QPoint(round(start + width / 2), bar.height() // 2))
    assert segment.label == "Activations"
    assert (
        segment.tooltip == "Activations: 3.0\u00a0GiB (25% of the peak)\nWhat each layer keeps for the backward pass."
    )
    legend = next(w for w in gauge.findChildren(QLabel) if w.text() == "Activations")
    assert legend.toolTip() == segment.tooltip


@pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")  # a tooltip, offscreen
def test_hovering_the_memory_other_programs_hold_explains_it(gauge: VramGauge) -> None:
    gauge.set_gpus(GPUS)
    gauge.set_data(estimate())
    bar = gauge.findChild(MemoryBar)
    inside = bar.others_rect().center().toPoint()
    assert bar.event(QHelpEvent(QEvent.Type.ToolTip, inside, bar.mapToGlobal(inside)))
    assert "other programs" in QToolTip.text()


def test_no_gpu_says_so_and_still_shows_the_breakdown(gauge: VramGauge) -> None:
    gauge.set_gpus([])
    gauge.set_data(estimate(Verdict.WILL_NOT_FIT, suggestions=SUGGESTIONS))
    assert label(gauge, "verdict").text() == NO_GPU_TEXT
    assert not gauge.findChild(QComboBox).isVisible()
    assert gauge.current_gpu() == -1
    assert not gauge.findChild(QWidget, "suggestions").isVisible()
    bar = gauge.findChild(MemoryBar)
    assert bar.isVisible() and bar.others_rect() is None
    assert bar.segment_span(3)[0] + bar.segment_span(3)[1] == pytest.approx(bar.width() - 1)  # the peak fills it
    assert "Activations" in visible_texts(gauge)
    assert "16.0\u00a0GiB" in visible_texts(gauge)  # RAM to merge


def test_before_an_estimate_the_gauge_says_what_it_waits_for(gauge: VramGauge) -> None:
    gauge.set_gpus(GPUS)
    assert label(gauge, "verdict").text() == "No estimate yet"
    assert not gauge.findChild(MemoryBar).isVisible()
    gauge.set_gpus([])
    assert label(gauge, "verdict").text() == NO_GPU_TEXT


def test_clicking_a_suggestion_emits_its_index(qtbot: QtBot, gauge: VramGauge) -> None:
    gauge.set_gpus(GPUS)
    gauge.set_data(estimate(Verdict.WILL_NOT_FIT, suggestions=SUGGESTIONS))
    buttons = gauge.findChild(QWidget, "suggestions").buttons()
    assert [b.text_shown() for b in buttons] == [
        "Turn on gradient checkpointing\n→ about 9.0\u00a0GiB · fits",
        "Halve the micro-batch and double accumulation\n→ about 10.0\u00a0GiB · tight",
        "Use the 8-bit optimizer\n→ about 11.0\u00a0GiB",
    ]
    with qtbot.waitSignal(gauge.suggestionChosen, timeout=1000) as signal:
        qtbot.mouseClick(buttons[1], Qt.MouseButton.LeftButton, pos=buttons[1].rect().center())
    assert signal.args == [1]
    buttons[2].setFocus()
    with qtbot.waitSignal(gauge.suggestionChosen, timeout=1000) as signal:
        qtbot.keyClick(buttons[2], Qt.Key.Key_Return)
    assert signal.args == [2]


def test_updates_reuse_the_same_widgets(gauge: VramGauge) -> None:
    gauge.set_gpus(GPUS)
    gauge.set_data(estimate(Verdict.WILL_NOT_FIT, suggestions=SUGGESTIONS))
    before = set(map(id, gauge.findChildren(QWidget)))
    for tokens in range(200):  # as if typing in the form
        terms = [MemoryTerm(t.label, t.bytes + tokens * 1024**2, t.explanation, t.color) for t in TERMS]
        gauge.set_data(estimate(Verdict.TIGHT, terms=terms[: 2 + tokens % 3], suggestions=SUGGESTIONS[: tokens % 4]))
    gauge.set_gpus([GpuInfo(g.name, g.total_bytes, g.free_bytes - GIB) for g in GPUS])
    assert set(map(id, gauge.findChildren(QWidget))) == before
    assert "Base weights" in visible_texts(gauge)


def test_refreshing_free_memory_keeps_the_chosen_gpu(qtbot: QtBot, gauge: VramGauge) -> None:
    with qtbot.waitSignal(gauge.gpuChanged, timeout=1000) as signal:
        gauge.set_gpus(GPUS)
    assert signal.args == [0]
    box = gauge.findChild(QComboBox)
    assert box.itemText(1) == "1: NVIDIA RTX A2000 · 12.0\u00a0GiB"
    with qtbot.waitSignal(gauge.gpuChanged, timeout=1000) as signal:
        box.setCurrentIndex(1)
    assert signal.args == [1]
    with qtbot.assertNotEmitted(gauge.gpuChanged):
        gauge.set_gpus([GpuInfo(g.name, g.total_bytes, g.free_bytes - GIB) for g in GPUS])
    assert gauge.current_gpu() == 1
    gauge.set_data(estimate())
    assert "10.0\u00a0GiB of this GPU's 12.0\u00a0GiB is free" in label(gauge, "verdictDetail").text()


@pytest.mark.parametrize("dark", [False, True])
def test_each_term_keeps_its_colour_and_no_two_terms_of_an_estimate_share_one(dark: bool) -> None:
    """Every moment of the step, for every kind of job: a term has the same colour in every estimate (the legend
    does not recolour as terms come and go), and the terms of one estimate all differ."""
    from app.vram import TERM_COLORS, gauge_data
    from backend.core.spec import JobSpec
    from backend.estimator import GpuMemory, estimate, shapes_from_config
    from tests.model_configs import LLAMA_8B
    from widgets.chart_colors import series_color

    palette = QPalette(QColor("#202020") if dark else QColor("#f0f0f0"))
    shapes, gpu = shapes_from_config(LLAMA_8B), GpuMemory("RTX 4090", 24 * GIB, compute_capability=(8, 9))
    phases: set[str] = set()
    colour_of: dict[str, set[str]] = {}
    for quant in ("nf4", "int8", "none"):
        for checkpointing in (True, False):
            for optimizer in ("adamw_torch", "paged_adamw_8bit"):
                for micro_batch, length in ((1, 16), (1, 256), (4, 2048)):
                    training = {
                        "micro_batch_size": micro_batch,
                        "max_seq_length": length,
                        "optimizer": optimizer,
                        "gradient_checkpointing": checkpointing,
                    }
                    spec = JobSpec.from_dict(
                        {"data": {"path": "t.jsonl"}, "quantization": {"mode": quant}, "training": training}
                    )
                    result = estimate(spec, shapes, gpu, with_suggestions=False)
                    phases.add(result.peak_phase)
                    assert {term.key for term in result.terms} <= set(TERM_COLORS), "a term without its colour"
                    colours = [series_color(term.color, palette).name() for term in gauge_data(result).terms]
                    assert len(set(colours)) == len(colours), [t.key for t in result.terms]
                    for term, colour in zip(result.terms, colours, strict=True):
                        colour_of.setdefault(term.key, set()).add(colour)
    assert len(phases) >= 3  # the sweep reaches several peak moments, not one
    assert all(len(colours) == 1 for colours in colour_of.values())


def test_the_legend_keeps_a_terms_colour_when_an_earlier_term_goes(gauge: VramGauge) -> None:
    gauge.set_gpus(GPUS)
    gauge.set_data(estimate())
    before = legend(gauge)
    assert before == {term.label: term.color for term in TERMS}
    gauge.set_data(estimate(terms=TERMS[1:]))  # e.g. the base weights' term gone
    after = legend(gauge)
    assert "Base weights" not in after and after == {k: v for k, v in before.items() if k != "Base weights"}
    bar = gauge.findChild(MemoryBar)
    assert bar is not None
    assert [segment.color for segment in bar.segments()] == [term.color for term in TERMS[1:]]


def legend(gauge: VramGauge) -> dict[str, int | None]:
    """The legend's visible terms: each one's name (its row's tooltip starts with it) and its swatch's colour."""
    return {
        swatch.toolTip().split(":")[0]: swatch.color()
        for swatch in gauge.findChildren(BarSwatch)
        if swatch.isVisibleTo(gauge) and swatch.color() is not None
    }
