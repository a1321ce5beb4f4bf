"""Preview of a normalized dataset: a table of examples and one example in full.

The detail pane has two views. "Conversation" shows the messages with role-coloured turns.
"As the model sees it" shows the text after the model's chat template, with the characters
that carry loss highlighted; the widget cannot render templates itself (that needs the
tokenizer), so it asks and the app answers with ``show_rendered``: ``exampleSelected`` on every
selection, or ``renderingWanted`` only while that view is on screen and has nothing for the row,
for an app whose rendering is slow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import (
    QFont,
    QFontDatabase,
    QFontMetricsF,
    QPalette,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from widgets.example_table import (
    NUMBER,
    PROMPT,
    REPLY,
    TURNS,
    Example,
    ExampleTableModel,
    TurnsDelegate,
    role_of,
    text_of,
)
from widgets.palette import role_color, role_tint
from widgets.placeholder_view import PlaceholderTableView

_TABLE_PLACEHOLDER = "Drop a dataset to see its examples here."
_RENDERED_PLACEHOLDER = (
    "Once a base model is chosen, the selected example appears here exactly as the model will read it."
)
# Shown in place of a carriage return so that it is visible and still one character wide,
# which keeps the loss spans' offsets valid (Qt would otherwise turn "\r\n" into one break).
_CARRIAGE_RETURN = "\u240d"


@dataclass(frozen=True)
class RenderedExample:
    """One example as the model will see it: the chat template applied, before tokenizing.

    ``loss_spans`` are ``[start, end)`` offsets into ``text`` (Python string indices) of the
    characters the model is trained to produce. ``cut_at`` is the offset where the maximum
    sequence length truncates the text, or None when it all fits.
    """

    text: str
    loss_spans: Sequence[tuple[int, int]]
    token_count: int
    loss_token_count: int | None = None
    cut_at: int | None = None


class ExamplePreview(QWidget):
    """The examples of a dataset in a table, and the selected one in full beside it."""

    exampleSelected = Signal(int)  # the row, in the order of the sequence given to set_examples
    renderingWanted = Signal(int)  # "As the model sees it" is showing this row and has no rendering of it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = ExampleTableModel()
        self._rendered: RenderedExample | None = None

        self._table = PlaceholderTableView(_TABLE_PLACEHOLDER)
        self._table.setModel(self._model)
        self._table.setItemDelegateForColumn(TURNS, TurnsDelegate(self._table))
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        columns = self._table.horizontalHeader()
        columns.setSectionResizeMode(PROMPT, QHeaderView.ResizeMode.Stretch)
        columns.setSectionResizeMode(REPLY, QHeaderView.ResizeMode.Stretch)
        self._table.setColumnWidth(TURNS, TurnsDelegate.badges_width(self.fontMetrics()))
        self._table.selectionModel().currentRowChanged.connect(self._current_changed)

        self._conversation = QTextBrowser()
        self._conversation.setOpenLinks(False)
        self._conversation.setPlaceholderText("Select an example to read it in full.")

        self._summary = QLabel(wordWrap=True)
        self._summary.setObjectName("summary")
        self._summary.setTextFormat(Qt.TextFormat.RichText)
        self._rendered_text = QPlainTextEdit(readOnly=True)
        self._rendered_text.setObjectName("rendered")
        self._rendered_text.setUndoRedoEnabled(False)
        self._rendered_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._rendered_text.setPlaceholderText(_RENDERED_PLACEHOLDER)
        rendered_page = QWidget()
        rendered_layout = QVBoxLayout(rendered_page)
        rendered_layout.addWidget(self._summary)
        rendered_layout.addWidget(self._rendered_text)

        tabs = QTabWidget()
        tabs.addTab(self._conversation, "Conversation")
        tabs.addTab(rendered_page, "As the model sees it")
        tabs.setTabToolTip(1, "The chat template applied; highlighted text is what the model learns to write")
        tabs.currentChanged.connect(self._want_rendering)
        self._tabs = tabs

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._table)
        splitter.addWidget(tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._show_rendered(None)

    # -- public ------------------------------------------------------------------------------

    def set_examples(self, examples: Sequence[Example]) -> None:
        """Show ``examples`` (each a list of ``{role, content}`` messages); only visible rows are read."""
        self._model.set_examples(examples)
        digits = self.fontMetrics().horizontalAdvance(f"{len(examples):,}0")
        self._table.setColumnWidth(NUMBER, digits + self.fontMetrics().height())
        self._table.set_placeholder("This dataset has no usable examples." if not examples else "")
        self._conversation.clear()
        self._show_rendered(None)

    def set_placeholder(self, text: str | None) -> None:
        """What the empty table says (e.g. while a dataset is being read); None: the default."""
        self._table.set_placeholder(text or _TABLE_PLACEHOLDER)

    def select_example(self, row: int) -> None:
        """Select and scroll to ``row``, e.g. when an issue about it is clicked."""
        index = self._model.index(row, NUMBER)
        if not index.isValid():
            return
        self._table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        self._table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    def current_example(self) -> int | None:
        index = self._table.currentIndex()
        return index.row() if index.isValid() else None

    def show_rendered(self, row: int, rendered: RenderedExample) -> None:
        """Show ``rendered`` for ``row``; answers for a row that is no longer selected are dropped."""
        if row == self.current_example():
            self._show_rendered(rendered)

    def clear_rendered(self) -> None:
        """Forget the rendering shown (the model or the maximum length changed): it is asked for again."""
        self._show_rendered(None)
        self._want_rendering()

    def set_rendered_placeholder(self, text: str | None) -> None:
        """What the empty rendered view says (e.g. that it is being rendered, or why it can't be); None: the default."""
        self._rendered_text.setPlaceholderText(text or _RENDERED_PLACEHOLDER)

    def show_rendered_view(self, shown: bool = True) -> None:
        """Bring "As the model sees it" (or, with False, the conversation) to the front."""
        self._tabs.setCurrentIndex(1 if shown else 0)

    def rendered_view_shown(self) -> bool:
        return self._tabs.currentIndex() == 1

    def rendered(self) -> RenderedExample | None:
        """What the rendered view shows for the selected example, if anything."""
        return self._rendered

    # -- internals ---------------------------------------------------------------------------

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_rendered(None)
        if not current.isValid():
            self._conversation.clear()
            return
        _fill_conversation(self._conversation.document(), self._model.example(current.row()), self.palette())
        self._conversation.moveCursor(QTextCursor.MoveOperation.Start)  # read from the first message
        self.exampleSelected.emit(current.row())
        self._want_rendering()

    def _want_rendering(self, *_: object) -> None:
        row = self.current_example()
        if row is not None and self._rendered is None and self.rendered_view_shown():
            self.renderingWanted.emit(row)

    def _show_rendered(self, rendered: RenderedExample | None) -> None:
        self._rendered = rendered
        if rendered is None:
            self._rendered_text.clear()
            self._summary.setText("")
            self._summary.hide()
            return
        palette = self.palette()
        self._rendered_text.setPlainText(rendered.text.replace("\r", _CARRIAGE_RETURN))
        _highlight_spans(self._rendered_text.document(), rendered.text, rendered.loss_spans, _loss_format(palette))
        if rendered.cut_at is not None:
            _highlight_spans(
                self._rendered_text.document(),
                rendered.text,
                [(rendered.cut_at, len(rendered.text))],
                _cut_format(palette),
            )
        self._summary.setText(_summary_html(rendered, palette))
        self._summary.show()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # colours are baked into the documents
            self._show_rendered(self._rendered)
            current = self._table.currentIndex()
            if current.isValid():
                _fill_conversation(self._conversation.document(), self._model.example(current.row()), self.palette())


def _loss_format(palette: QPalette) -> QTextCharFormat:
    """Text that carries loss: the assistant's tint, as in the conversation view."""
    fmt = QTextCharFormat()
    fmt.setBackground(role_tint("assistant", palette))
    return fmt


def _cut_format(palette: QPalette) -> QTextCharFormat:
    """Text past the maximum length: greyed and struck out, since the model never reads it."""
    fmt = QTextCharFormat()
    fmt.setForeground(palette.color(QPalette.ColorRole.PlaceholderText))
    fmt.setFontStrikeOut(True)
    return fmt


def _highlight_spans(
    document: QTextDocument, text: str, spans: Sequence[tuple[int, int]], fmt: QTextCharFormat
) -> None:
    """Merge ``fmt`` into ``document`` over ``spans``, given as Python offsets into ``text``.

    Qt counts positions in UTF-16 units, so characters outside the Basic Multilingual Plane
    (most emoji) take two; offsets are converted so the highlight lands on the same characters.
    """
    units = _utf16_positions(text)
    cursor = QTextCursor(document)
    cursor.beginEditBlock()
    for start, end in spans:
        start, end = max(0, start), min(len(text), end)
        if start >= end:
            continue
        cursor.setPosition(units[start])
        cursor.setPosition(units[end], QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(fmt)
    cursor.endEditBlock()


def _utf16_positions(text: str) -> Sequence[int]:
    """Position in a QTextDocument of each Python offset 0..len(text)."""
    if text.isascii() or max(text) <= "\uffff":
        return range(len(text) + 1)
    return [0, *accumulate(2 if ord(c) > 0xFFFF else 1 for c in text)]


def _summary_html(rendered: RenderedExample, palette: QPalette) -> str:
    """One line over the rendered text: its size in tokens and what the highlight means."""
    tint = role_tint("assistant", palette).name()
    parts = [f"<b>{rendered.token_count:,}</b> tokens"]
    if rendered.loss_token_count is not None and rendered.token_count:
        share = rendered.loss_token_count / rendered.token_count
        parts.append(f"{rendered.loss_token_count:,} train the model ({share:.0%})")
    parts.append(f'<span style="background-color:{tint}">&nbsp;highlighted&nbsp;</span>: what it learns to write')
    if rendered.cut_at is not None:
        parts.append("<s>struck out</s>: past the maximum length, never seen")
    return " · ".join(parts)


def _fill_conversation(document: QTextDocument, example: Example, palette: QPalette) -> None:
    """Write the messages one after another, each under its role's name and on its role's tint."""
    document.clear()
    gap = QFontMetricsF(document.defaultFont()).height() / 3
    cursor = QTextCursor(document)
    for i, message in enumerate(example):
        role = role_of(message)
        heading = QTextBlockFormat()
        heading.setTopMargin(gap * 2 if i else 0)
        heading.setBottomMargin(gap / 2)
        label = QTextCharFormat()
        label.setForeground(role_color(role, palette))
        label.setFontWeight(QFont.Weight.Bold)
        if i:
            cursor.insertBlock(heading, label)
        else:
            cursor.setBlockFormat(heading)
        cursor.insertText(role.capitalize() or "(no role)", label)

        body = QTextBlockFormat()
        body.setBackground(role_tint(role, palette))
        body.setLeftMargin(gap)
        body.setRightMargin(gap)
        cursor.insertBlock(body, QTextCharFormat())
        cursor.insertText(text_of(message).replace("\r", _CARRIAGE_RETURN))
