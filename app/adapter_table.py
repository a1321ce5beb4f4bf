"""The Adapters page's table: every registered version as the registry's index lists it.

A model over the ``Listed`` rows (one list, replaced whole on each fill), with a sort key per
cell so numbers, sizes and dates sort as such; filtering and sorting are a
``QSortFilterProxyModel`` on top. Nothing here reads a folder: the index row holds it all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

from backend.registry.registry import Listed
from widgets.units import format_bytes

COLUMNS = ("Adapter", "Version", "Stage", "Base", "Data", "Rank", "Held-out loss", "Task score", "Size", "Registered")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
_TIPS = {
    "Held-out loss": "The latest evaluation's held-out loss, else the loss on the evaluation split in training",
    "Task score": "The latest evaluation's task score (exact or field match of the answers)",
}
_Index = QModelIndex | QPersistentModelIndex


class VersionsModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Listed] = []

    def set_rows(self, rows: list[Listed]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _TIPS.get(COLUMNS[section])
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.rows[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return display(row, column)
        if role == SORT_ROLE:
            return sort_key(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{row.label} cannot be read fully: {row.problem}" if row.problem else row.folder
        if role == Qt.ItemDataRole.TextAlignmentRole and column in ("Version", "Rank", "Held-out loss", "Task score"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def display(row: Listed, column: str) -> str:
    """The text of one cell; a version with a problem says so in its Stage cell."""
    if column == "Adapter":
        return row.name
    if column == "Version":
        return f"v{row.version}"
    if column == "Stage":
        return f"{row.stage} · problem" if row.problem else row.stage
    if column == "Base":
        return Path(row.base_ref).name if row.base_ref else "unknown"
    if column == "Data":
        name = Path(row.dataset).name if row.dataset else "unknown"
        return f"{name} ({row.dataset_hash[:8]})" if row.dataset_hash else name
    if column == "Rank":
        return "" if row.rank is None else str(row.rank)
    if column == "Held-out loss":
        return "" if row.heldout_loss is None else f"{row.heldout_loss:.3f}"
    if column == "Task score":
        return "" if row.task_score is None else f"{row.task_score:.2f}"
    if column == "Size":
        return "" if row.size_bytes is None else format_bytes(row.size_bytes)
    return (row.registered_at or "").replace("T", " ").removesuffix("Z")


def sort_key(row: Listed, column: str) -> Any:
    """Numbers as numbers (missing ones last when ascending), everything else as its text."""
    numbers = {
        "Version": row.version,
        "Rank": row.rank,
        "Held-out loss": row.heldout_loss,
        "Task score": row.task_score,
        "Size": row.size_bytes,
    }
    if column in numbers:
        value = numbers[column]
        return float("inf") if value is None else float(value)
    return display(row, column).lower()


class VersionsFilter(QSortFilterProxyModel):
    """Rows whose adapter, stage, base, data, tags or notes contain every word typed (any case)."""

    def __init__(self, source: VersionsModel) -> None:
        super().__init__()
        self._source = source
        self._words: list[str] = []
        self.setSourceModel(source)
        self.setSortRole(SORT_ROLE)

    def set_filter(self, text: str) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.9+, where invalidateRowsFilter is deprecated
            self.beginFilterChange()
            self._words = text.lower().split()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._words = text.lower().split()
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        if not self._words:
            return True
        row = self._source.rows[source_row]
        haystack = " ".join(
            [
                *(display(row, c) for c in COLUMNS),
                *row.tags,
                *(n.get("text", "") for n in row.notes),
                row.problem or "",
            ]
        ).lower()
        return all(word in haystack for word in self._words)

    def listed(self, row: int) -> Listed:
        return self._source.rows[self.mapToSource(self.index(row, 0)).row()]
