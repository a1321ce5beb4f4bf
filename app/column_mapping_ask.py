"""The Data page's column mapping question: which column holds the instruction, the response and the rest.

``ColumnMappingAsk`` opens ``widgets.column_mapping.ColumnMappingDialog`` over the first rows of
the table a mapping is made from (of the sheet read, in a workbook), each mapping tried on them as the
import reads them (``app.mapping_trial``), one dialog at a time: asking
again replaces the open one, and a dialog for a file that is no longer open is closed. OK says
which dataset was mapped and how (``mapped``); the page checks it again with that mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QDialog, QWidget

from app.dataset_check import columns_in_order, first_rows, mappable_file
from app.mapping_trial import MappingTrier
from backend.data.report import DataReport
from widgets.column_mapping import PREVIEW_ROWS, ColumnMappingDialog

TRIAL_ROWS = 200
"""The rows a mapping is tried on before OK is offered, as many as format detection looks at."""


class ColumnMappingAsk(QObject):
    """Asks for the column mapping of the dataset shown on ``page``."""

    mapped = Signal(object, object)  # the dataset's path, {role: column}

    def __init__(self, page: QWidget) -> None:
        super().__init__(page)
        self._page = page
        self.dialog: ColumnMappingDialog | None = None
        self._path: Path | None = None  # the dataset the open dialog is for

    def ask(
        self, path: Path, report: DataReport, sheet: str | None, mapping: Mapping[str, str] | None
    ) -> ColumnMappingDialog | None:
        """Open the dialog for the dataset at ``path`` as ``report`` found it, read from ``sheet`` with ``mapping``
        (else the mapping the check suggested, which it tried on the file's rows)."""
        summary = mappable_file(report)
        if summary is None:
            return None
        if not mapping and summary.suggested is not None:
            mapping = summary.suggested.columns
        file_path = path / summary.name if path.is_dir() else path
        rows = first_rows(file_path, sheet, TRIAL_ROWS)
        trier = MappingTrier(rows)
        columns = columns_in_order(rows[:PREVIEW_ROWS], summary.columns)
        self.close()
        dialog = ColumnMappingDialog(
            columns,
            rows[:PREVIEW_ROWS],
            trier,
            mapping=mapping,
            parent=self._page,
            file_name=f"{summary.name}, sheet {sheet}" if sheet else summary.name,
            column_notes=trier.column_notes(columns),
            advice=trier.layout_advice(),
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._finished)
        self.dialog, self._path = dialog, path
        dialog.open()
        return dialog

    def close_unless_for(self, path: Path) -> None:
        """Close the open dialog if it is for another dataset than ``path``: its choices are for that one."""
        if self.dialog is not None and self._path != path:
            self.dialog.close()

    def close(self) -> None:
        if self.dialog is not None:
            self.dialog.close()

    @Slot(int)
    def _finished(self, result: int) -> None:
        dialog, path = self.dialog, self._path
        if dialog is None or self.sender() is not dialog:
            return  # a dialog replaced by a newer one
        self.dialog = self._path = None
        if result == QDialog.DialogCode.Accepted and path is not None:
            self.mapped.emit(path, dialog.mapping())
