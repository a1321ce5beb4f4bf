"""The Data page: drop a dataset, see what will be trained on, how long it is in tokens, and what is wrong.

Three kinds of work run off the GUI thread:

* the check (every row read and validated) on a pool thread, with the backend's torch-free
  reader; results come back through a queued signal;
* the token count, which needs the model's tokenizer and chat template: ``lora-studio data
  check --model M --json`` in a child process (``app.token_count``), so this process never
  imports transformers;
* one example rendered as the model sees it, only while the "As the model sees it" view is
  showing: by one long-lived ``data preview --serve`` child (``RenderJob``) that has read the
  dataset and loaded the tokenizer once, so each example clicked comes back in milliseconds.
  It is stopped when the dataset, its reading options, the model or the maximum length
  change, and when the page closes.

A workbook with rows in more than one sheet gets a sheet picker; choosing a sheet reads the
dataset again from it. A checked dataset becomes the session's ``DatasetChoice`` (again with its
99th-percentile length once the tokens are counted), and is kept in the recent list with its
column mapping and sheet.

The page ties together parts that live in their own modules: the check and the words for its
report (``app.dataset_check``), the drop zone, recent datasets and "Open another" menu
(``app.dataset_landing``), the header with the dataset's name, summary and buttons
(``widgets.dataset_header``), the token count (``app.token_count``), the column mapping question
(``app.column_mapping_ask``) and the rendered example (``app.example_rendering``). What stays here
is one dataset's sequence, checking, checked, counting its tokens, mapping its columns, choosing
its sheet, which every part's signal moves on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QCloseEvent, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.column_mapping_ask import ColumnMappingAsk
from app.dataset_check import (
    DatasetCheck,
    issues_from,
    mappable_file,
    needs_mapping,
    recent_entry,
    summary_text,
)
from app.dataset_landing import DatasetLanding, OpenMenu, bold_label
from app.example_rendering import ExampleRendering
from app.recent import RecentDataset, RecentDatasets
from app.session import DatasetChoice, Session
from app.token_count import TokenCount
from app.token_job import with_tokens
from backend.data.examples import Example
from backend.data.files import KINDS_BY_SUFFIX, OLD_FORMATS
from backend.data.report import DataReport
from backend.data.scan import ImportOptions
from widgets.column_mapping import ColumnMappingDialog
from widgets.dataset_header import DatasetHeader
from widgets.drop_overlay import DropOverlay
from widgets.example_preview import ExamplePreview
from widgets.issue_list import Issue, IssueList
from widgets.palette import negative_color
from widgets.token_panel import TokenPanel, TokenSummary


class DataPage(QWidget):
    """Drop zone and recent datasets; then the summary, examples as the model sees them, tokens and issues."""

    checked = Signal(object)  # DataReport, once a dataset has been read
    measured = Signal(object)  # TokenSummary (or None: nothing measurable), once the tokens are counted
    report_changed = Signal()  # a report is shown, or none (File ▸ Save report… follows it)

    def __init__(
        self,
        session: Session,
        parent: QWidget | None = None,
        *,
        settings: QSettings | None = None,
        pool: QThreadPool | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self._settings = settings if settings is not None else QSettings()
        self._recent = RecentDatasets(self._settings)
        self._pool = pool or QThreadPool.globalInstance()
        self._check: DatasetCheck | None = None
        self._path: Path | None = None
        self._options = ImportOptions()
        self._base: DataReport | None = None  # the check made here, without tokens
        self._examples: list[Example] = []
        self._choice: DatasetChoice | None = None
        self._ask_mapping = True  # whether the check about to finish may open the mapping dialog by itself
        self.report: DataReport | None = None  # the last finished check, with tokens once counted
        self.mapping = ColumnMappingAsk(self)
        self.mapping.mapped.connect(self._mapped)

        self._build()
        self.rendering = ExampleRendering(session.home, self.preview, self)
        self.rendering.noticed.connect(self._show_template_note)
        self.counting = TokenCount(session.home, self.tokens, self._settings, self)
        self.counting.counted.connect(self._on_counted)
        self.counting.changed.connect(self._render_again)
        self.counting.settled.connect(self._render_shown)
        self.counting.refresh_models()
        self.landing.refresh()
        self.counting.restore_max_length()
        self._stack.setCurrentIndex(0)
        if (app := QCoreApplication.instance()) is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -- building ----------------------------------------------------------------------------

    def _build(self) -> None:

        # The empty page: where a dataset comes in, and the ones opened before.
        self.landing = DatasetLanding(self._recent)
        self.landing.openRequested.connect(self.open)

        # The dataset: what it is and what the check found, then examples, tokens and issues.
        self.header = DatasetHeader()
        self.title, self.summary, self.progress = self.header.title, self.header.summary, self.header.progress
        self.cancel_button, self.map_button = self.header.cancel_button, self.header.map_button
        self.detect_button, self.open_button = self.header.detect_button, self.header.open_button
        self.sheet_picker = self.header.sheet_picker
        self.cancel_button.clicked.connect(self.cancel)
        self.map_button.clicked.connect(self.ask_mapping)
        self.detect_button.clicked.connect(self._detect_format)
        self._open_menu = OpenMenu(self._recent, self.landing.drop_zone, lambda: self._path, self.open_button)
        self._open_menu.openRequested.connect(self.open)
        self.open_button.setMenu(self._open_menu)
        self.sheet_picker.sheetChosen.connect(self._sheet_chosen)

        self.preview = ExamplePreview()
        self.preview.renderingWanted.connect(self._render)
        self.tokens = TokenPanel()
        self.issues = IssueList()
        self.issues.issueActivated.connect(self.preview.select_example)
        self.issues.saveReportRequested.connect(self.save_report)

        below = QSplitter(Qt.Orientation.Horizontal)
        below.addWidget(_section("Token lengths", self.tokens))
        below.addWidget(_section("Issues", self.issues))
        below.setStretchFactor(0, 2)
        below.setStretchFactor(1, 3)
        below.setSizes([450, 550])  # scaled to the width there is; the plot's size hint would take half
        below.setChildrenCollapsible(False)
        self._content = QSplitter(Qt.Orientation.Vertical)
        self._content.addWidget(_section("Examples", self.preview))
        self._content.addWidget(below)
        self._content.setStretchFactor(0, 1)
        self._content.setStretchFactor(1, 1)
        self._content.setChildrenCollapsible(False)
        loaded = QWidget()
        loaded_layout = QVBoxLayout(loaded)
        loaded_layout.setContentsMargins(0, 0, 0, 0)
        loaded_layout.addWidget(self.header)
        # What the rendered example holds that the data does not, e.g. the chat template's own system prompt.
        self.template_note = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self.template_note.setObjectName("templateNote")
        self.template_note.hide()
        loaded_layout.addWidget(self.template_note)
        loaded_layout.addWidget(self._content, 1)

        # A refused drop anywhere on the page says why here.
        self.notice = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self.notice.setObjectName("notice")
        self.notice.hide()
        self._stack = QStackedWidget()
        self._stack.addWidget(self.landing)
        self._stack.addWidget(loaded)
        layout = QVBoxLayout(self)
        layout.addWidget(self.notice)
        layout.addWidget(self._stack, 1)

        self.overlay = DropOverlay(self, extensions=tuple(KINDS_BY_SUFFIX), refusals=OLD_FORMATS)
        self.overlay.pathsDropped.connect(self._on_paths)
        self.overlay.refused.connect(self._show_notice)

    # -- public ------------------------------------------------------------------------------

    def open(self, path: Path, options: ImportOptions | None = None, *, ask_mapping: bool = True) -> None:
        """Check ``path`` in the background, read as ``options`` (default: its remembered column mapping and sheet).

        ``ask_mapping``: open the column mapping dialog when nothing in the file is recognised; not when
        the user asked to read it again without their mapping ("Detect format"), who can still choose "Map columns…".
        """
        self.cancel()
        self._ask_mapping = ask_mapping
        path = Path(path)
        if options is None:
            known = self._recent.get(path) or RecentDataset(str(path))
            fmt = "columns" if known.columns else "auto"
            options = ImportOptions(format=fmt, columns=known.columns, sheet=known.sheet)
        self.mapping.close_unless_for(path)
        if path != self._path:
            self.sheet_picker.set_sheets([], None)  # until the new file's sheets are listed
        self._path, self._options = path, options
        self._base = self.report = None
        self.report_changed.emit()
        self._examples = []
        self._choice = None
        self.counting.clear()
        self.rendering.forget()
        self._show_notice("")
        check = DatasetCheck(path, options)
        check.signals.sheets.connect(self._on_sheets, Qt.ConnectionType.QueuedConnection)
        check.signals.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        check.signals.finished.connect(self._on_finished, Qt.ConnectionType.QueuedConnection)
        check.signals.failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)
        self._check = check
        self._stack.setCurrentIndex(1)
        self.title.setText(path.name or str(path))
        self.title.setToolTip(str(path))
        self.header.set_summary(f"Checking every row of {path.name}…")
        self.progress.setValue(0)
        self.header.show_busy(True)
        self._content.setEnabled(False)
        self.preview.set_examples([])
        self.preview.set_placeholder(f"The examples appear here once {path.name} has been read.")
        self.preview.set_rendered_placeholder(None)
        self.issues.clear()
        self.map_button.hide()
        self.detect_button.hide()
        self.tokens.show_idle("Token lengths are measured once the check is done.")
        self._pool.start(check)

    def browse(self) -> None:
        """Ask for a dataset file with the same dialog as the drop zone's button (File ▸ Open dataset…)."""
        self.landing.drop_zone.browse_files()

    def cancel(self) -> None:
        """Stop the check (the token count has its own Cancel)."""
        if self._check is not None:
            self._check.cancelled.set()

    def is_checking(self) -> bool:
        return self._check is not None

    def is_measuring(self) -> bool:
        return self.counting.is_running()

    @property
    def mapping_dialog(self) -> ColumnMappingDialog | None:
        """The column mapping dialog open, if one is."""
        return self.mapping.dialog

    def ask_mapping(self) -> ColumnMappingDialog | None:
        """Open the column mapping dialog for the dataset shown; OK checks it again with the mapping."""
        if self._path is None or self._base is None:
            return None
        return self.mapping.ask(self._path, self._base, self._options.sheet, self._options.columns)

    def shutdown(self) -> None:
        """Stop everything this page started: the check, the token count, the rendering."""
        self.cancel()
        self.counting.stop()
        self.rendering.forget()
        self.mapping.close()

    # -- events ------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.counting.refresh_models()  # a model may have been imported on another page

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # -- the check ---------------------------------------------------------------------------

    def _on_paths(self, paths: list[Path]) -> None:
        self.open(paths[0])

    @Slot(object, object)
    def _on_sheets(self, sheets: list[tuple[str, bool]], current: str | None) -> None:
        if self.sender() is (self._check.signals if self._check else None):
            self.sheet_picker.set_sheets(sheets, current)

    @Slot(float)
    def _on_progress(self, fraction: float) -> None:
        if self._check is not None:
            self.progress.setValue(round(fraction * 100))
            self.header.set_summary(f"Checking every row of {self._check.path.name}… {fraction:.0%}")

    @Slot(object, object)
    def _on_finished(self, report: DataReport, examples: list[Example]) -> None:
        if self.sender() is not (self._check.signals if self._check else None):
            return  # a check that was replaced by a newer one
        assert self._check is not None  # the sender is its signals
        path, options = self._check.path, self._check.options  # the sheet read named where there was a choice
        self._check = None
        self._options = options
        self.header.show_busy(False)
        self._content.setEnabled(True)
        self._base = self.report = report
        self.report_changed.emit()
        self._examples = examples
        if report.usable:
            self.counting.set_dataset(path, options)
        self.header.set_summary(summary_text(report), error=not report.usable)
        self.summary.setToolTip("\n".join(report.summary_lines()))
        # Plain text (for continued pre-training) shows as one "text" turn.
        shown = [[{"role": "text", "content": e.text}] if e.is_text else e.messages for e in examples]
        self.rendering.forget()
        self.preview.set_examples(shown)
        self.preview.select_example(0)
        self.issues.set_issues(issues_from(report, examples))
        self.map_button.setVisible(mappable_file(report) is not None)
        self.map_button.setText("Change column mapping…" if options.columns else "Map columns…")
        self.detect_button.setVisible(bool(options.columns))
        self.map_button.setDefault(needs_mapping(report) and not options.columns)  # the way forward, emphasised
        entry = recent_entry(path, report, options, self._recent.get(path))
        self._recent.remember(entry)
        self.landing.refresh()
        self.checked.emit(report)
        if report.usable:
            columns = dict(options.columns) if options.columns else None
            self._choice = DatasetChoice(str(path), entry.format, columns, report.accepted, sheet=options.sheet)
            self.session.dataset_changed.emit(self._choice)
            self.counting.measure()
        else:
            self.tokens.show_idle("Nothing to measure: no row of this dataset can be used yet. See the issues.")
        if needs_mapping(report) and not options.columns and self._ask_mapping:
            self.ask_mapping()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self.sender() is not (self._check.signals if self._check else None):
            return
        self._check = None
        self.header.show_busy(False)
        self._content.setEnabled(True)
        self.header.set_summary(message, error=True)
        self.summary.setToolTip("")
        self.preview.set_examples([])
        self.issues.set_issues([Issue("error", message)])
        self.tokens.show_idle("")

    # -- tokens ------------------------------------------------------------------------------

    def _render_again(self) -> None:
        """Forget the renderings and stop the child that made them; the example shown is asked for again."""
        self.rendering.forget()
        self.preview.clear_rendered()

    def _on_counted(self, summary: TokenSummary | None, measured: dict) -> None:
        """The report again with the token statistics, and the 99th-percentile length for the session."""
        if self._base is None:
            return
        self.report = with_tokens(self._base, measured)
        self.issues.set_issues(issues_from(self.report, self._examples))
        p99 = (measured.get("tokens") or {}).get("percentiles", {}).get("p99")
        if self._choice is not None and p99 is not None:
            self._choice = replace(self._choice, p99_tokens=int(p99))
            self.session.dataset_changed.emit(self._choice)
        if self._path is not None:
            self._recent.update(self._path, p99_tokens=p99, model=self.tokens.current_model())
            self.landing.refresh()
        self.measured.emit(summary)

    # -- rendering one example ---------------------------------------------------------------

    def _render(self, row: int) -> None:
        request = self.counting.request()
        self.rendering.render(row, request, self.tokens.current_model_name(), settling=self.counting.settling())

    def _render_shown(self) -> None:
        row = self.preview.current_example()
        if row is not None:
            self._render(row)

    # -- column mapping ----------------------------------------------------------------------

    def _mapped(self, path: Path, columns: dict[str, str]) -> None:
        self.open(path, ImportOptions(format="columns", columns=columns, sheet=self._options.sheet))

    def _detect_format(self) -> None:
        if self._path is not None:
            self.open(self._path, ImportOptions(sheet=self._options.sheet), ask_mapping=False)

    def _sheet_chosen(self, sheet: str) -> None:
        """Read the dataset again from ``sheet``, with the same column mapping (the check says if it doesn't fit)."""
        if self._path is not None:
            self.open(self._path, replace(self._options, sheet=sheet))

    # -- small things ------------------------------------------------------------------------

    def _show_template_note(self, text: str) -> None:
        self.template_note.setText(text)
        self.template_note.setVisible(bool(text))

    def _show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        if text:
            palette = self.notice.palette()
            palette.setColor(QPalette.ColorRole.WindowText, negative_color(self.palette()))
            self.notice.setPalette(palette)

    def has_report(self) -> bool:
        return self.report is not None

    def save_report(self) -> None:
        """Ask where, and save the report of the dataset shown as Markdown or JSON."""
        if self.report is None:
            return
        name = Path(self.report.source).stem + "-report.md"
        target, _ = QFileDialog.getSaveFileName(self, "Save the dataset report", name, "Markdown (*.md);;JSON (*.json)")
        if target:
            self.report.save(Path(target))


def _section(title: str, body: QWidget) -> QWidget:
    """``body`` under a bold heading, so the page reads as named parts."""
    section = QWidget()
    layout = QVBoxLayout(section)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(section.fontMetrics().height() // 3)
    layout.addWidget(bold_label(title))
    layout.addWidget(body, 1)
    return section
