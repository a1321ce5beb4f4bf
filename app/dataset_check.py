"""Checking a dataset off the GUI thread, and what the Data page says about the result.

``DatasetCheck`` reads and validates every row on a pool thread with the backend's torch-free
reader and answers through queued signals; a workbook's sheets with rows are sent first, so the
page can offer a choice. The functions below turn a finished ``DataReport`` into the page's words:
the summary line, the issues, the format a job spec should name, the recent list's entry, and
whether a column mapping is needed (with the rows the mapping dialog previews).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Signal

from app.recent import RecentDataset, now
from app.spec_fields import in_words
from backend.data.examples import Example
from backend.data.files import KINDS_BY_SUFFIX, find_sources
from backend.data.formats import FORMATS
from backend.data.load import ExampleCollector, check_dataset
from backend.data.problems import DataError, ImportCancelled
from backend.data.readers import read_file
from backend.data.report import DataReport, FileSummary
from backend.data.scan import ImportOptions
from widgets.column_mapping import PREVIEW_ROWS
from widgets.issue_list import Issue

logger = logging.getLogger(__name__)
_TABULAR = ("jsonl", "json", "csv", "tsv", "parquet", "xlsx")


class CheckSignals(QObject):
    sheets = Signal(object, object)  # list[(title, visible)] of a workbook's sheets with rows, the one read
    progress = Signal(float)
    finished = Signal(object, object)  # DataReport, list[Example]
    failed = Signal(str)


class DatasetCheck(QRunnable):
    """Reads and validates every row of one dataset; cancelled through ``cancelled``."""

    def __init__(self, path: Path, options: ImportOptions) -> None:
        super().__init__()
        self.path = path
        self.options = options
        self.signals = CheckSignals()
        self.cancelled = threading.Event()

    def run(self) -> None:
        """Emit ``finished`` or ``failed``, whatever happens: the page waits on "Checking…" until one comes."""
        collect = ExampleCollector()
        try:
            report = self._check(collect)
        except ImportCancelled:
            self.signals.failed.emit("Check cancelled.")
        except DataError as exc:
            self.signals.failed.emit(str(exc))
        except Exception as exc:  # the last resort: an error no reader foresaw, logged with its traceback
            logger.exception("checking %s failed", self.path)
            self.signals.failed.emit(
                f"{self.path.name} could not be checked: an unexpected error ({type(exc).__name__}: {exc}). "
                "If it opens in the program that made it, save it again from there and open that copy."
            )
        else:
            self.signals.finished.emit(report, collect.examples)

    def _check(self, collect: ExampleCollector) -> DataReport:
        workbook = KINDS_BY_SUFFIX.get(self.path.suffix.lower()) == "xlsx" and self.path.is_file()
        if workbook and not self.cancelled.is_set():
            self._offer_sheets()
        if self.cancelled.is_set():  # before the check opens the file
            raise ImportCancelled
        return check_dataset(
            self.path, self.options, sinks=[collect], progress=self.signals.progress.emit, cancel=self.cancelled.is_set
        )

    def _offer_sheets(self) -> None:
        """Send the workbook's sheets with rows for the page to offer. Where there is a choice, the one read by
        default is named, so the check says nothing of the others: the page offers them instead. The check opens the
        workbook again; sharing one opening would need the check to return the sheets, also when it fails on one."""
        from backend.data.workbook import default_sheet, list_sheets  # openpyxl, only for workbooks

        wanted = self.options.sheet
        try:
            sheets = [s for s in list_sheets(self.path) if s.has_rows or s.title == wanted]
        except DataError:
            return  # the check reports why the workbook can't be read
        default = default_sheet(sheets)
        if wanted is None and default is not None and len(sheets) > 1:
            self.options = replace(self.options, sheet=default.title)
        shown = self.options.sheet or (default.title if default else None)
        self.signals.sheets.emit([(s.title, s.visible) for s in sheets], shown)


def issues_from(report: DataReport, examples: list[Example]) -> list[Issue]:
    """Excluded rows are errors, kept-but-suspect rows warnings, dataset advice and unused fields information
    (a warning where the field could change what is learned). A whole file's problem says the rows it keeps
    out, as the summary counts them."""
    index = {(e.file, e.line, e.row): i for i, e in enumerate(examples)}
    issues = [
        Issue(
            "error" if p.excluded else "warning",
            f"{p.message} ({p.covers})" if p.covers else p.message,
            file=p.file,
            line=p.line,
            row=p.row,
            field=p.field or "",
            hint=p.hint,
            example=None if p.excluded else index.get((p.file, p.line, p.row)),
            unit=p.unit,
        )
        for p in report.problems.kept
    ]
    issues += [Issue("info", in_words(advice.message)) for advice in report.advice]
    issues += [
        Issue("warning" if u.learned and not u.refused else "info", u.describe(), file=f.name, field=u.key)
        for f in report.files
        for u in f.unused
    ]
    return issues


def format_name(report: DataReport, options: ImportOptions) -> str:
    """The format a job spec should read the dataset with: the mapping, the choice, or the one detected."""
    if options.columns:
        return "columns"
    if options.format != "auto":
        return options.format
    used = {f.format for f in report.files if f.accepted}
    return used.pop() if len(used) == 1 and next(iter(used)) in FORMATS else "auto"


def format_label(report: DataReport) -> str:
    labels = list(dict.fromkeys(f.format_label for f in report.files if f.accepted or f.format == "unknown"))
    return labels[0] if len(labels) == 1 else "mixed formats" if labels else ""


def recent_entry(path: Path, report: DataReport, options: ImportOptions, known: RecentDataset | None) -> RecentDataset:
    """The recent list's entry for ``path`` as checked; ``known`` is its entry before."""
    same = known is not None and (known.columns, known.sheet) == (options.columns, options.sheet)
    return RecentDataset(
        path=str(path),
        format=format_name(report, options),
        format_label=format_label(report),
        columns=dict(options.columns) if options.columns else None,
        sheet=options.sheet,
        rows=report.rows,
        accepted=report.accepted,
        # The length measured before stays until this check is measured, if nothing changed.
        p99_tokens=known.p99_tokens if known is not None and same else None,
        model=known.model if known is not None and same else None,
        checked_at=now(),
    )


def summary_text(report: DataReport) -> str:
    """The check in one or two lines: the format and why, rows usable, duplicates, the split."""
    if len(report.files) == 1:
        f = report.files[0]
        head = f"{f.format_label} ({f.reason})" if f.reason else f.format_label
    else:
        head = f"{len(report.files):,} files, {format_label(report)}"
    parts = [head[:1].upper() + head[1:], f"{report.accepted:,} of {report.rows:,} rows usable"]
    if report.excluded:
        parts.append(f"{report.excluded:,} excluded")
    if report.duplicates:
        parts.append(f"{report.duplicates:,} exact duplicates")
    if report.split and report.accepted:
        parts.append(f"{report.split.train:,} for training, {report.split.eval:,} held out to evaluate")
    return " · ".join(parts)


def mappable_file(report: DataReport) -> FileSummary | None:
    """The file whose columns a mapping is made from: the first not recognised, else the first table."""
    tables = [f for f in report.files if f.kind in _TABULAR and f.columns]
    return next((f for f in tables if f.format == "unknown"), tables[0] if tables else None)


def needs_mapping(report: DataReport) -> bool:
    """Nothing recognised, but there are rows with columns: only a mapping can make them usable."""
    return bool(report.files) and report.rows > 0 and all(f.format == "unknown" for f in report.files)


def first_rows(path: Path, sheet: str | None = None, count: int = PREVIEW_ROWS) -> list[dict]:
    """The first ``count`` rows of a table file (of ``sheet`` in a workbook) as ``{column: value}``, for the
    mapping dialog's preview."""
    try:
        sources = find_sources(path)
        for source in sources.files:
            with contextlib.closing(read_file(source, 4000, sheet)) as chunks:
                for chunk in chunks:
                    rows = [value for _, value in chunk.records if isinstance(value, dict)]
                    if rows:
                        return rows[:count]
    except DataError:
        pass  # the check reports why the file can't be read; the dialog then shows no preview
    return []


def columns_in_order(rows: list[dict], seen: list[str]) -> list[str]:
    """The columns as the file orders them (a CSV's header), then any the check saw that the rows lack."""
    ordered = list(dict.fromkeys(key for row in rows for key in row))
    return ordered + [c for c in seen if c not in ordered]
