"""Excel workbooks (.xlsx, .xlsm) as tables, read like CSV: one sheet, its first non-empty row naming the columns.

openpyxl's read-only mode streams a sheet's rows from the file, so memory is bounded by a
chunk of rows. Cells become the text a CSV export would hold: numbers without their display
format (to Excel's 15 significant digits), dates as ISO dates, TRUE and FALSE, and a formula
as the value Excel last saved for it (an error as its text, e.g. #N/A). An empty cell is a
missing value. A merged cell's value belongs to its top-left cell, as in Excel; the cells it
covers are empty. Rows are placed by their number in Excel, with the sheet's name. Without a sheet
named, ``default_sheet`` is read; ``list_sheets`` is what a choice of another is offered from.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NamedTuple

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from backend.data.chunk import CHUNK_ROWS, Chunk, Unreadable
from backend.data.files import check_office_zip
from backend.data.problems import DataError, said

# openpyxl warns about what it would drop when saving a workbook (data validation, a missing style); none is saved.
warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")


class Sheet(NamedTuple):
    """A sheet as a choice of the one to read sees it."""

    title: str
    visible: bool
    has_rows: bool


def list_sheets(path: Path) -> list[Sheet]:
    """The workbook's sheets in tab order, to offer a choice; each is read only up to its first row with a value."""
    with _opened(path) as sheets:
        return [_listed(sheet) for sheet, _ in sheets]


def default_sheet(sheets: Sequence[Sheet]) -> Sheet | None:
    """The sheet read when none is named: the first visible one with rows, a hidden one only as a last resort."""
    return min((s for s in sheets if s.has_rows), key=lambda s: not s.visible, default=None)


def read_workbook(path: Path, wanted: str | None) -> Generator[Chunk, None, None]:
    """The rows of sheet ``wanted`` (default: ``default_sheet``) as ``{column: text or None}``."""
    with _opened(path) as sheets:
        chosen, notes = _choose(path.name, [sheet for sheet, _ in sheets], wanted)
        if chosen is not None:
            yield from _rows(*sheets[chosen], notes)


@contextmanager
def _opened(path: Path) -> Iterator[list[tuple[Any, int | None]]]:
    """The workbook's sheets, each with the number of rows the file states (for progress only: some writers save a
    wrong one, so every row there is gets read). A sheet's XML is parsed as its rows are read, so damage in it
    surfaces in the ``with`` body: whatever the reader raises there becomes a DataError too."""
    check_office_zip(path, "an Excel 97-2003 workbook (.xls)")
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            sheets = [(sheet, sheet.max_row) for sheet in workbook.worksheets]
            for sheet, _ in sheets:
                sheet.reset_dimensions()
            yield sheets
        finally:
            workbook.close()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl, zipfile and the XML parser raise many types for a damaged file
        raise DataError(
            f"{path.name} is not a readable Excel workbook ({said(exc)}); open it in Excel and save it again as .xlsx"
        ) from None


def _choose(name: str, sheets: list[Any], wanted: str | None) -> tuple[int | None, list[str]]:
    """The index of the sheet to read (None when every sheet is empty), and a note naming the others with rows."""
    titles = [sheet.title for sheet in sheets]
    if wanted is not None:
        if wanted not in titles:
            named = ", ".join(f"'{title}'" for title in titles)
            raise DataError(f"{name} has no sheet named '{wanted}'; its sheets are {named}", code="no_sheet")
        return titles.index(wanted), []
    listed = [_listed(sheet) for sheet in sheets]
    chosen = default_sheet(listed)
    if chosen is None:
        return None, []
    others = [_label(s) for s in listed if s.has_rows and s != chosen]
    if not others:
        return titles.index(chosen.title), []
    note = (
        f"{name}: the sheet {_label(chosen)} is read; rows in {', '.join(others)} are not. To read another "
        "sheet, give its name (--sheet NAME; data.sheet in a job spec), or move it to the front in Excel"
    )
    return titles.index(chosen.title), [note]


def _listed(sheet: Any) -> Sheet:
    return Sheet(sheet.title, sheet.sheet_state == "visible", _header(sheet) is not None)


def _label(sheet: Sheet) -> str:
    return f"'{sheet.title}'" + ("" if sheet.visible else " (hidden)")


def _header(sheet: Any) -> tuple[int, tuple[Any, ...]] | None:
    """The first row with a value: its number and values."""
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        if any(_filled(v) for v in values):
            return number, values
    return None


def _rows(sheet: Any, size: int | None, notes: list[str]) -> Iterator[Chunk]:
    unit = f"{sheet.title} row"
    found = _header(sheet)
    if found is None:
        return
    header_row, header = found
    columns = _columns(header)
    width = len(columns)
    records: list[tuple[int | None, Any]] = []
    rows = enumerate(sheet.iter_rows(min_row=header_row + 1, values_only=True), start=header_row + 1)
    for number, values in rows:
        if not any(_filled(v) for v in values):
            continue
        beyond = next((i for i in range(width, len(values)) if _filled(values[i])), None)
        if beyond is not None:
            cell = f"{get_column_letter(beyond + 1)}{number}"
            message = (
                f"cell {cell} holds a value, but row {header_row} names only columns A to "
                f"{get_column_letter(width)}; give its column a name in row {header_row}, or clear the cell"
            )
            records.append((number, Unreadable("extra_fields", message)))
        else:
            cells = [*values[:width], *(None,) * (width - len(values))]
            records.append((number, dict(zip(columns, map(_text, cells), strict=True))))
        if len(records) >= CHUNK_ROWS:
            yield Chunk(records, min(1.0, number / size) if size else 0.0, unit, notes)
            records, notes = [], []
    yield Chunk(records, 1.0, unit, notes)


def _columns(header: tuple[Any, ...]) -> list[str]:
    """The column names of a header row; a column without one is named by its letter, a repeated name too."""
    width = max(i for i, v in enumerate(header, start=1) if _filled(v))
    names: list[str] = []
    for index, value in enumerate(header[:width], start=1):
        name = (_text(value) or "").strip()
        letter = get_column_letter(index)
        if not name:
            name = f"column {letter}"
        elif name in names:
            name = f"{name} (column {letter})"
        names.append(name)
    return names


def _filled(value: Any) -> bool:
    return value is not None and value != ""


def _text(value: Any) -> str | None:
    """A cell's value as the text a CSV export would hold."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return format(value, ".15g")  # Excel keeps 15 significant digits: 0.1 + 0.2 is 0.3
    if isinstance(value, datetime):
        if value.time() == time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if value.second or value.microsecond else "minutes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="seconds" if value.second or value.microsecond else "minutes")
    return str(value)  # whole numbers, and durations (timedelta)
