"""Telling LoRA Studio which column holds what, for tables in no format it recognizes.

The mapping is plain data, ``{role: column}`` with roles from ``ROLES`` (columns not named
are ignored), so it can be saved with the dataset and given back here to edit. The dialog offers only
what works: the app tries each mapping on the file's first rows as the import reads them (``trial``,
a ``MappingTrial``), the preview shows what each mapped column yields (or why it can't be read as
text), and OK stays disabled, with the reason, until the mapping imports rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QBrush, QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from widgets.palette import negative_color

# (role, name shown, what it means)
_CHOICES = (
    ("instruction", "Instruction", "What the user asks, or tells the model to do"),
    ("input", "Input", "Extra context that goes with the instruction (optional)"),
    ("response", "Response", "The answer the model should learn to give"),
    ("system", "System prompt", "A standing instruction given before the conversation (optional)"),
    ("ignore", "Ignore", "Not used for training"),
)
ROLES = tuple(role for role, _, _ in _CHOICES if role != "ignore")
REQUIRED = ("instruction", "response")
_NAMES = {role: name for role, name, _ in _CHOICES}
PREVIEW_ROWS = 5


@dataclass(frozen=True)
class PreviewCell:
    text: str
    """What the column gives the role, as the import reads it; or, with ``problem``, why it can't."""
    problem: bool = False


@dataclass(frozen=True)
class MappingTrial:
    """What a mapping makes of the file's first rows, tried the way the import reads them."""

    cells: Sequence[Mapping[str, PreviewCell]]
    """Per previewed row, per role mapped."""
    imported: int
    """How many of the rows tried the import accepts."""
    tried: int
    reason: str = ""
    """Why a row tried is refused (the first such), e.g. "row 1: 'input' is an object, not text"."""


Trial = Callable[[dict[str, str]], MappingTrial]


def _one_line(value: object, limit: int) -> str:
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)  # as the file has it, not as Python prints it
    text = " ".join(("" if value is None else str(value))[: limit * 2].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ColumnMappingDialog(QDialog):
    """Choose a role for each column; OK is enabled once instruction and response are chosen and the
    mapping imports rows.

    ``rows`` are the file's first rows as ``{column: value}``, shown beside the columns; ``trial`` says
    what a mapping makes of them, for the preview and OK. ``mapping`` pre-fills the choices, e.g. the one
    saved before. ``column_notes`` flags columns that hold no text ("an object, not text"); ``advice``
    says, for a file in a layout another objective trains (preference pairs), which one and how.
    """

    def __init__(
        self,
        columns: Sequence[str],
        rows: Sequence[Mapping[str, object]],
        trial: Trial,
        mapping: Mapping[str, str] | None = None,
        parent: QWidget | None = None,
        *,
        file_name: str = "",
        column_notes: Mapping[str, str] | None = None,
        advice: str = "",
    ) -> None:
        mapping = dict(mapping or {})
        if unknown := sorted(set(mapping) - set(ROLES)):
            raise ValueError(f"unknown roles {unknown}; a mapping's roles are {', '.join(ROLES)}")
        super().__init__(parent)
        self.setWindowTitle(f"Columns of {file_name}" if file_name else "Map columns")
        self._columns = list(columns)
        self._rows = list(rows[:PREVIEW_ROWS])
        self._trial = trial
        self._result = MappingTrial([], 0, 0)
        self._notes = dict(column_notes or {})
        self._missing = sorted({c for c in mapping.values() if c not in self._columns})
        role_of = {column: role for role, column in mapping.items()}

        intro = QLabel(
            "LoRA Studio couldn't tell which column holds what. Choose what each column holds; "
            "the preview below shows the first rows as they will be used.",
            wordWrap=True,
        )
        self._advice = QLabel(advice, wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self._advice.setObjectName("advice")
        self._advice.setVisible(bool(advice))

        grid = QGridLayout()
        for i, title in enumerate(("Column", "Holds", "First row")):
            header = QLabel(f"<b>{title}</b>")
            grid.addWidget(header, 0, i)
        self._combos: dict[str, QComboBox] = {}
        first = self._rows[0] if self._rows else {}
        for row, column in enumerate(self._columns, start=1):
            combo = QComboBox()
            combo.setObjectName(f"role:{column}")
            combo.setAccessibleName(f"What column {column} holds")
            for i, (role, name, meaning) in enumerate(_CHOICES):
                combo.addItem(name, role)
                combo.setItemData(i, meaning, Qt.ItemDataRole.ToolTipRole)
            combo.setCurrentIndex(combo.findData(role_of.get(column, "ignore")))
            combo.currentIndexChanged.connect(self._update)
            label = QLabel(column, textFormat=Qt.TextFormat.PlainText)
            label.setBuddy(combo)
            note = self._notes.get(column)
            sample = QLabel(
                f"⚠ {note}" if note else _one_line(first.get(column), 60), textFormat=Qt.TextFormat.PlainText
            )
            sample.setObjectName(f"sample:{column}")
            sample.setToolTip(_one_line(first.get(column), 800))
            if note:
                red = sample.palette()
                red.setColor(QPalette.ColorRole.WindowText, negative_color(self.palette()))
                sample.setPalette(red)
                combo.setToolTip(
                    f"{column} holds {note}: it can't be the instruction, input, response or system prompt"
                )
            else:
                sample.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            grid.addWidget(label, row, 0)
            grid.addWidget(combo, row, 1)
            grid.addWidget(sample, row, 2)
            self._combos[column] = combo
        grid.setColumnStretch(2, 1)
        choices = QWidget()
        choices.setLayout(grid)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(choices)
        # No taller than the choices: the room left over goes to the preview.
        scroll.setMaximumHeight(choices.sizeHint().height())

        self._preview = QTableWidget(0, 0)
        self._preview.setObjectName("preview")
        self._preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._preview.setWordWrap(False)
        self._preview.verticalHeader().hide()
        self._preview.verticalHeader().setDefaultSectionSize(round(self.fontMetrics().height() * 1.6))
        self._preview.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

        self._problem_icon = QLabel()
        side = self.fontMetrics().height()
        icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self._problem_icon.setPixmap(icon.pixmap(QSize(side, side), self.devicePixelRatioF()))
        self._problem = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self._problem.setObjectName("problem")
        problem_row = QHBoxLayout()
        problem_row.addWidget(self._problem_icon, 0, Qt.AlignmentFlag.AlignTop)
        problem_row.addWidget(self._problem, 1)

        self._buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self._advice)
        layout.addWidget(scroll, 1)
        shown = f"the first {len(self._rows)} rows" if len(self._rows) > 1 else "the first row"
        layout.addWidget(QLabel(f"<b>Preview</b> ({shown})" if self._rows else "<b>Preview</b> (the file has no rows)"))
        layout.addWidget(self._preview)
        layout.addStretch(0)  # takes what is left only once the choices show every column
        layout.addLayout(problem_row)
        layout.addWidget(self._buttons)
        self._update()
        self.resize(max(self.sizeHint().width(), side * 40), self.sizeHint().height())

    def mapping(self) -> dict[str, str]:
        """``{role: column}`` for every role given a column; the other columns are ignored."""
        chosen = {}
        for column, combo in self._combos.items():
            role = combo.currentData()
            if role in ROLES and role not in chosen:
                chosen[role] = column
        return {role: chosen[role] for role in ROLES if role in chosen}

    def problems(self) -> list[str]:
        """Why the mapping can't be used yet; empty when it can."""
        found = self._choice_problems()
        if not found and not self._result.imported:
            tried, reason = self._result.tried, self._result.reason
            rows = f"the first {tried} rows" if tried != 1 else "the first row"
            found.append(
                f"With this mapping none of {rows} can be imported: {reason}." if tried else "The file has no rows."
            )
        return found

    def _choice_problems(self) -> list[str]:
        taken: dict[str, list[str]] = {}
        for column, combo in self._combos.items():
            taken.setdefault(combo.currentData(), []).append(column)
        found = [f"Choose the column that holds the {_NAMES[role].lower()}." for role in REQUIRED if role not in taken]
        for role in ROLES:
            if len(taken.get(role, ())) > 1:
                listed = ", ".join(f"“{c}”" for c in taken[role])
                found.append(f"Only one column can be the {_NAMES[role].lower()}; now {listed} are.")
        return found

    def accept(self) -> None:
        if not self.problems():
            super().accept()

    def _update(self) -> None:
        self._result = self._trial(self.mapping())
        problems = self.problems()
        notes = list(problems)
        result = self._result
        if not problems and result.imported < result.tried:
            notes.append(f"{result.imported} of the first {result.tried} rows can be imported; {result.reason}.")
        if self._missing:
            listed = ", ".join(f"“{c}”" for c in self._missing)
            notes.append(f"The saved mapping named columns this file doesn't have: {listed}.")
        self._problem.setText("\n".join(notes))
        self._problem.setVisible(bool(notes))
        self._problem_icon.setVisible(bool(notes))
        self._buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problems)
        self._fill_preview()

    def _fill_preview(self) -> None:
        mapping = self.mapping()
        self._preview.clear()
        self._preview.setColumnCount(len(mapping))
        self._preview.setRowCount(len(self._rows))
        self._preview.setHorizontalHeaderLabels([_NAMES[role] for role in mapping])
        # Exactly as tall as its rows, so the choices above get the rest of the room.
        header = self._preview.horizontalHeader()
        rows = self._preview.verticalHeader().defaultSectionSize() * max(1, len(self._rows))
        self._preview.setFixedHeight(header.sizeHint().height() + rows + 2 * self._preview.frameWidth())
        red = QBrush(negative_color(self.palette()))
        for r, cells in enumerate(self._result.cells):
            for c, role in enumerate(mapping):
                cell = cells.get(role, PreviewCell(""))
                item = QTableWidgetItem(("⚠ " if cell.problem else "") + _one_line(cell.text, 200))
                item.setToolTip(_one_line(cell.text, 800))
                if cell.problem:
                    item.setForeground(red)
                    font = QFont(item.font())
                    font.setItalic(True)
                    item.setFont(font)
                self._preview.setItem(r, c, item)
