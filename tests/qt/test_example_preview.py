"""The example preview: lazy rows, selection by click, and the loss highlight landing on exact characters."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QTableView, QTextBrowser
from pytestqt.qtbot import QtBot

from widgets.example_preview import ExamplePreview, RenderedExample
from widgets.example_table import ExampleTableModel


def conversation(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You triage tickets."},
        {"role": "user", "content": f"Ticket {i}:\nI was charged twice."},
        {"role": "assistant", "content": f"billing, high ({i})"},
    ]


class CountingSequence(Sequence):
    """A dataset that counts how many examples the widget reads."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.reads = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> list[dict[str, str]]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        self.reads += 1
        return conversation(i)


@pytest.fixture
def preview(qtbot: QtBot) -> ExamplePreview:
    widget = ExamplePreview()
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_the_model_passes_qts_model_checks(qtmodeltester) -> None:
    model = ExampleTableModel()
    model.set_examples([conversation(i) for i in range(20)])
    qtmodeltester.check(model, force_py=True)


def test_rows_show_number_roles_prompt_and_reply(preview: ExamplePreview) -> None:
    preview.set_examples([conversation(0), [{"role": "user", "content": "no reply"}]])
    model = preview.findChild(QTableView).model()
    cells = [[model.index(r, c).data() for c in range(4)] for r in range(2)]
    assert cells[0] == ["1", "system, user, assistant", "Ticket 0: I was charged twice.", "billing, high (0)"]
    assert cells[1] == ["2", "user", "no reply", None]


def test_100k_rows_are_read_only_where_shown(qtbot: QtBot, preview: ExamplePreview) -> None:
    """How long that takes is bench/data_preview.py's to measure (a busy machine is no test failure)."""
    examples = CountingSequence(100_000)
    preview.set_examples(examples)
    table = preview.findChild(QTableView)
    table.scrollToBottom()
    qtbot.wait(1)  # paint
    assert table.model().rowCount() == 100_000
    assert examples.reads < 2_000, "only the visible rows are read"
    with qtbot.waitSignal(preview.exampleSelected, timeout=1000) as signal:
        preview.select_example(99_999)
    assert signal.args == [99_999]


def test_clicking_a_row_shows_the_conversation_and_asks_for_its_rendering(
    qtbot: QtBot, preview: ExamplePreview
) -> None:
    preview.set_examples([conversation(i) for i in range(10)])
    table = preview.findChild(QTableView)
    cell = table.visualRect(table.model().index(3, 2)).center()
    with qtbot.waitSignal(preview.exampleSelected, timeout=1000) as signal:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    assert signal.args == [3]
    text = preview.findChild(QTextBrowser).toPlainText()
    assert text == "System\nYou triage tickets.\nUser\nTicket 3:\nI was charged twice.\nAssistant\nbilling, high (3)"


def highlighted(document: QTextDocument) -> set[int]:
    """Python offsets of the characters drawn with a background, found from the document's fragments."""
    offsets, at = set(), 0
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().background().style() != Qt.BrushStyle.NoBrush:
                offsets.update(range(at, at + len(fragment.text())))
            at += len(fragment.text())
            it += 1
        at += 1  # the line break between blocks
        block = block.next()
    return offsets


def struck_out(document: QTextDocument) -> str:
    out = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            if it.fragment().charFormat().fontStrikeOut():
                out.append(it.fragment().text())
            it += 1
        block = block.next()
    return "".join(out)


def test_the_rendered_text_highlights_exactly_the_loss_spans(qtbot: QtBot, preview: ExamplePreview) -> None:
    preview.set_examples([conversation(0)])
    preview.select_example(0)
    # An emoji takes two positions in Qt's text and one in Python's; the spans are Python offsets.
    text = "<|user|>\nHi 😀 there<|end|>\n<|assistant|>\nHello 😀!\nBye<|end|>\n"
    reply = text.index("Hello")
    spans = [(reply, text.rindex("<|end|>") + len("<|end|>")), (text.index("there"), text.index("there") + 5)]
    preview.show_rendered(0, RenderedExample(text=text, loss_spans=spans, token_count=21, loss_token_count=7))

    document = preview.findChild(QPlainTextEdit, "rendered").document()
    assert document.toPlainText() == text
    expected = {i for start, end in spans for i in range(start, end) if text[i] != "\n"}
    assert highlighted(document) == expected


def test_the_summary_counts_tokens_and_the_cut_is_struck_out(preview: ExamplePreview) -> None:
    preview.set_examples([conversation(0)])
    preview.select_example(0)
    text = "prompt reply that is too long"
    preview.show_rendered(
        0, RenderedExample(text=text, loss_spans=[(7, len(text))], token_count=400, loss_token_count=100, cut_at=17)
    )
    label = preview.findChild(QLabel, "summary")
    assert "<b>400</b> tokens · 100 train the model (25%)" in label.text()
    assert "struck out" in label.text()
    assert struck_out(preview.findChild(QPlainTextEdit, "rendered").document()) == text[17:]


def test_carriage_returns_are_shown_and_keep_offsets(preview: ExamplePreview) -> None:
    preview.set_examples([conversation(0)])
    preview.select_example(0)
    text = "a\r\nbc"
    preview.show_rendered(0, RenderedExample(text=text, loss_spans=[(3, 5)], token_count=3))
    document = preview.findChild(QPlainTextEdit, "rendered").document()
    assert document.toPlainText() == "a\u240d\nbc"
    assert highlighted(document) == {3, 4}


def test_a_rendering_for_a_row_no_longer_selected_is_dropped(preview: ExamplePreview) -> None:
    preview.set_examples([conversation(i) for i in range(3)])
    preview.select_example(2)
    preview.show_rendered(1, RenderedExample(text="stale", loss_spans=[], token_count=1))
    assert preview.findChild(QPlainTextEdit, "rendered").toPlainText() == ""


def test_an_empty_dataset_says_so(preview: ExamplePreview) -> None:
    table = preview.findChild(QTableView)
    assert table.placeholder() == "Drop a dataset to see its examples here."
    preview.set_examples([])
    assert table.placeholder() == "This dataset has no usable examples."


def test_a_rendering_is_wanted_only_while_the_model_view_shows_a_row_without_one(
    qtbot: QtBot, preview: ExamplePreview
) -> None:
    wanted: list[int] = []
    preview.renderingWanted.connect(wanted.append)
    preview.set_examples([conversation(i) for i in range(3)])
    preview.select_example(1)
    assert wanted == [], "the conversation view needs no rendering"
    preview.show_rendered_view()
    assert wanted == [1]
    preview.show_rendered(1, RenderedExample(text="abc", loss_spans=[(1, 3)], token_count=2))
    preview.show_rendered_view(False)
    preview.show_rendered_view()
    assert wanted == [1], "a row already rendered is not asked for again"
    preview.clear_rendered()  # e.g. another model was chosen
    assert wanted == [1, 1] and preview.rendered() is None
    preview.set_rendered_placeholder("Rendering example 2…")
    assert preview.findChild(QPlainTextEdit, "rendered").placeholderText() == "Rendering example 2…"
