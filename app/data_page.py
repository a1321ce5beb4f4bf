"""The Data page: drop a dataset, see what will be trained on and what is wrong with which rows.

The check runs on a pool thread (a million rows take seconds) with the backend's
torch-free reader; results come back to the GUI thread through a queued signal.
Token statistics need the model's tokenizer and arrive with the Model page's work.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from backend.data.examples import Example
from backend.data.load import ExampleCollector, check_dataset
from backend.data.problems import DataError, ImportCancelled
from backend.data.report import DataReport
from widgets.drop_zone import DropZone
from widgets.example_preview import ExamplePreview
from widgets.issue_list import Issue, IssueList


class _Signals(QObject):
    progress = Signal(float)
    finished = Signal(object, object)  # DataReport, list[Example]
    failed = Signal(str)


class _Check(QRunnable):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.signals = _Signals()
        self.cancelled = threading.Event()

    def run(self) -> None:
        collect = ExampleCollector()
        try:
            report = check_dataset(
                self.path, sinks=[collect], progress=self.signals.progress.emit, cancel=self.cancelled.is_set
            )
        except ImportCancelled:
            self.signals.failed.emit("Check cancelled.")
        except DataError as exc:
            self.signals.failed.emit(str(exc))
        else:
            self.signals.finished.emit(report, collect.examples)


def issues_from(report: DataReport, examples: list[Example]) -> list[Issue]:
    """Excluded rows are errors, kept-but-suspect rows warnings, dataset advice information."""
    index = {(e.file, e.line, e.row): i for i, e in enumerate(examples)}
    issues = [
        Issue(
            "error" if p.excluded else "warning",
            p.message,
            file=p.file,
            line=p.line,
            row=p.row,
            field=p.field or "",
            hint=p.hint,
            example=None if p.excluded else index.get((p.file, p.line, p.row)),
        )
        for p in report.problems.kept
    ]
    issues += [Issue("info", advice.message) for advice in report.advice]
    return issues


class DataPage(QWidget):
    """Drop zone, summary, examples as the model will see them, and every issue with its line."""

    checked = Signal(object)  # DataReport, once a dataset has been read

    def __init__(self, pool: QThreadPool | None = None) -> None:
        super().__init__()
        self._pool = pool or QThreadPool.globalInstance()
        self._check: _Check | None = None
        self.report: DataReport | None = None  # the last finished check, for "Save report…"
        self.drop_zone = DropZone()
        self.summary = QLabel("No dataset yet.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = QPushButton("Cancel check")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.preview = ExamplePreview()
        self.issues = IssueList()
        self.issues.issueActivated.connect(self.preview.select_example)
        self.issues.saveReportRequested.connect(self._save_report)
        self.drop_zone.pathsDropped.connect(self._on_paths)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.preview)
        split.addWidget(self.issues)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.drop_zone)
        layout.addWidget(self.summary)
        layout.addWidget(self.cancel_button, alignment=Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(split, 1)

    def open(self, path: Path) -> None:
        """Check ``path`` in the background; the page fills when it is done."""
        self.cancel()
        check = _Check(path)
        check.signals.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        check.signals.finished.connect(self._on_finished, Qt.ConnectionType.QueuedConnection)
        check.signals.failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)
        self._check = check
        self.summary.setText(f"Checking {path.name}…")
        self.cancel_button.setVisible(True)
        self._pool.start(check)

    def cancel(self) -> None:
        if self._check is not None:
            self._check.cancelled.set()

    def is_checking(self) -> bool:
        return self._check is not None

    def _on_paths(self, paths: list[Path]) -> None:
        self.open(paths[0])

    @Slot(float)
    def _on_progress(self, fraction: float) -> None:
        if self._check is not None:
            self.summary.setText(f"Checking {self._check.path.name}… {fraction:.0%}")

    @Slot(object, object)
    def _on_finished(self, report: DataReport, examples: list[Example]) -> None:
        if self.sender() is not (self._check.signals if self._check else None):
            return  # a check that was replaced by a newer one
        self._check = None
        self.cancel_button.setVisible(False)
        self.summary.setText("\n".join(report.summary_lines()))
        # Plain text (for continued pre-training) shows as one "text" turn.
        shown = [[{"role": "text", "content": e.text}] if e.is_text else e.messages for e in examples]
        self.preview.set_examples(shown)
        self.issues.set_issues(issues_from(report, examples))
        self.report = report
        self.checked.emit(report)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self.sender() is not (self._check.signals if self._check else None):
            return
        self._check = None
        self.cancel_button.setVisible(False)
        self.summary.setText(message)
        self.issues.set_issues([Issue("error", message)])

    def _save_report(self) -> None:
        if self.report is None:
            return
        name = Path(self.report.source).stem + "-report.md"
        target, _ = QFileDialog.getSaveFileName(self, "Save the dataset report", name, "Markdown (*.md);;JSON (*.json)")
        if target:
            self.report.save(Path(target))
