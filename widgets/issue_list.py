"""The problems validation found, one per row, with where each is and what to do about it.

Severity toggles double as count badges. Clicking an issue about a kept row emits
``issueActivated`` with its example index so the app can show it in the preview; the report
itself is written by the app (the backend knows the formats), on ``saveReportRequested``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Literal, get_args

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from widgets.placeholder_view import PlaceholderTableView
from widgets.sequence_model import SequenceTableModel

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
_NAMES = {"error": ("error", "errors"), "warning": ("warning", "warnings"), "info": ("note", "notes")}
_ICONS = {
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
}


@dataclass(frozen=True)
class Issue:
    """One problem in a dataset, said so that a person can find it and fix it.

    ``line`` (counted in ``unit``: a text file's lines, a PDF's pages, a workbook's rows) or
    ``row`` (other tables) is where the person finds it in the file, as their editor or
    spreadsheet numbers it; ``example`` is its index in the example preview when the row was
    kept, else None.
    """

    severity: Severity
    message: str
    _: KW_ONLY
    file: str = ""
    line: int | None = None
    row: int | None = None
    field: str = ""
    hint: str = ""
    example: int | None = None
    unit: str = "line"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")


_COLUMNS = ("Severity", "File", "Where", "Field", "Problem", "What to do")
SEVERITY, FILE, WHERE, FIELD, PROBLEM, HINT = range(len(_COLUMNS))


def _cells(issue: Issue) -> tuple[str, ...]:
    if issue.line is not None:
        where = f"{issue.unit} {issue.line:,}"
    elif issue.row is not None:
        where = f"row {issue.row:,}"
    else:
        where = ""
    return (_NAMES[issue.severity][0].capitalize(), issue.file, where, issue.field, issue.message, issue.hint)


class IssueTableModel(SequenceTableModel[Issue]):
    """Issues as rows; icons come from the widget's style."""

    def __init__(self, icons: dict[str, QIcon]) -> None:
        super().__init__(_COLUMNS)
        self._icons = icons

    def set_issues(self, rows: Sequence[Issue]) -> None:
        self.set_rows(rows)

    def issue(self, row: int) -> Issue:
        return self.row_item(row)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        issue = self.row_item(index.row())
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _cells(issue)[column]
        if role == Qt.ItemDataRole.DecorationRole and column == SEVERITY:
            return self._icons[issue.severity]
        if role == Qt.ItemDataRole.ToolTipRole and column in (FILE, FIELD):
            return _cells(issue)[column] or None
        if role == Qt.ItemDataRole.ToolTipRole:
            return issue.message + (f"\n\nWhat to do: {issue.hint}" if issue.hint else "")
        return None


class _SeverityFilter(QSortFilterProxyModel):
    def __init__(self, issues: IssueTableModel) -> None:
        super().__init__()
        self.shown: set[str] = set(SEVERITIES)
        self._issues = issues
        self.setSourceModel(issues)

    def set_shown(self, severity: Severity, shown: bool) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.9+, where invalidateRowsFilter is deprecated
            self.beginFilterChange()
            self._toggle(severity, shown)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._toggle(severity, shown)
            self.invalidateRowsFilter()

    def _toggle(self, severity: Severity, shown: bool) -> None:
        if shown:
            self.shown.add(severity)
        else:
            self.shown.discard(severity)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        return self._issues.issue(source_row).severity in self.shown


class IssueList(QWidget):
    """Validation issues with severity filters, copy, and a request to save the report."""

    issueActivated = Signal(int)  # Issue.example of the clicked issue
    saveReportRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        style = self.style()
        icons = {severity: style.standardIcon(pixmap) for severity, pixmap in _ICONS.items()}
        self._model = IssueTableModel(icons)
        self._filter = _SeverityFilter(self._model)
        self._checked = False  # whether set_issues has been called: "no problems" needs a check first

        self._buttons: dict[Severity, QToolButton] = {}
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for severity in SEVERITIES:
            button = QToolButton(autoRaise=True)
            button.setCheckable(True)
            button.setChecked(True)
            button.setIcon(icons[severity])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setToolTip(f"Show or hide {_NAMES[severity][1]}")
            # A bound method, not a lambda holding self: PySide may crash deleting the widget otherwise.
            button.toggled.connect(self._follow_buttons)
            self._buttons[severity] = button
            bar.addWidget(button)
        bar.addStretch()

        self._copy = QAction("Copy", self, shortcut=QKeySequence(QKeySequence.StandardKey.Copy), enabled=False)
        self._copy.setToolTip("Copy the selected issues, to paste into a spreadsheet or a message")
        self._copy.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._copy.triggered.connect(self.copy_selected)
        self._save = QAction("Save report…", self, enabled=False)
        self._save.setIconText(self._save.text())  # keep the ellipsis on the button: a dialog follows
        self._save.setToolTip("Save every issue to a file")
        self._save.triggered.connect(self.saveReportRequested)
        for action in (self._copy, self._save):
            button = QToolButton()
            button.setDefaultAction(action)
            bar.addWidget(button)

        self._table = PlaceholderTableView()
        self._table.setModel(self._filter)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self._table.horizontalHeader()
        # The advice takes the room left; when there is little, the table scrolls sideways
        # rather than squeezing the problem into a few letters.
        header.setStretchLastSection(True)
        em = self.fontMetrics().horizontalAdvance("M")
        icon = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self._table.setColumnWidth(SEVERITY, icon + self.fontMetrics().horizontalAdvance("Warning") + 2 * em)
        for column, ems in ((FILE, 9), (WHERE, 6), (FIELD, 7), (PROBLEM, 24)):
            self._table.setColumnWidth(column, em * ems)
        self._table.addActions([self._copy, self._save])
        self._table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self._table.clicked.connect(self._activate)
        self._table.activated.connect(self._activate)
        self._table.selectionModel().selectionChanged.connect(self._selection_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self._table)
        self.clear()

    # -- public ------------------------------------------------------------------------------

    def set_issues(self, issues: Iterable[Issue]) -> None:
        """Show the issues of one validation, replacing any earlier ones."""
        self._checked = True
        self._model.set_issues(list(issues))
        self._refresh()

    def clear(self) -> None:
        """Back to the state before any validation."""
        self._checked = False
        self._model.set_issues(())
        self._refresh()

    def counts(self) -> dict[str, int]:
        """How many issues of each severity, whatever the filter shows."""
        counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
        for row in range(self._model.rowCount()):
            counts[self._model.issue(row).severity] += 1
        return counts

    def set_severity_shown(self, severity: Severity, shown: bool) -> None:
        self._buttons[severity].setChecked(shown)
        if shown != (severity in self._filter.shown):
            self._filter.set_shown(severity, shown)
            self._refresh_placeholder()

    def issues(self) -> list[Issue]:
        """Every issue set, shown or filtered out, in order."""
        return [self._model.issue(row) for row in range(self._model.rowCount())]

    def selected_issues(self) -> list[Issue]:
        """The selected issues, top to bottom as shown."""
        rows = sorted(index.row() for index in self._table.selectionModel().selectedRows())
        return [self._model.issue(self._filter.mapToSource(self._filter.index(r, 0)).row()) for r in rows]

    def copy_selected(self) -> None:
        """Put the selected issues on the clipboard as tab-separated text, with a header line."""
        issues = self.selected_issues()
        if issues:
            lines = ["\t".join(_COLUMNS)] + ["\t".join(_tsv_cell(c) for c in _cells(i)) for i in issues]
            QGuiApplication.clipboard().setText("\n".join(lines) + "\n")

    # -- internals ---------------------------------------------------------------------------

    def _follow_buttons(self) -> None:
        for severity, button in self._buttons.items():
            self.set_severity_shown(severity, button.isChecked())

    def _activate(self, index: QModelIndex) -> None:
        issue = self._model.issue(self._filter.mapToSource(index).row())
        if issue.example is not None:
            self.issueActivated.emit(issue.example)

    def _selection_changed(self) -> None:
        self._copy.setEnabled(self._table.selectionModel().hasSelection())

    def _refresh(self) -> None:
        counts = self.counts()
        for severity, button in self._buttons.items():
            one, many = _NAMES[severity]
            count = counts[severity]
            # Before a check, "0 errors" would read as a clean result.
            button.setText(f"{count:,} {one if count == 1 else many}" if self._checked else many.capitalize())
        self._save.setEnabled(self._checked)
        self._copy.setEnabled(False)
        self._refresh_placeholder()

    def _refresh_placeholder(self) -> None:
        if not self._checked:
            text = "Problems found in the dataset are listed here, with what to do about each."
        elif not self._model.rowCount():
            text = "No problems found."
        else:
            text = "Every issue is hidden. Turn on a severity above to see them."
        self._table.set_placeholder(text)


def _tsv_cell(text: str) -> str:
    return " ".join(text.split())  # tabs and line breaks would split the cell
