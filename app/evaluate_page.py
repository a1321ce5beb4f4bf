"""The Evaluate page: does the adapter beat its base on held-out data and on the user's own prompts?

"Evaluate" queues an evaluate job (the model runs in a worker, never in the window);
finished reports are read from their ``report.json`` and shown as a loss table and
the answers side by side, words the adapter changed marked.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.adapter_picker import AdapterPicker, describe
from app.open_location import open_location
from app.queue_watch import QueueWatch
from app.session import Session
from backend.core.task_specs import EvaluateSpec
from backend.evaluation.report import REPORT_HTML, REPORT_MD, loss_explanation, prompt_text, word_diff
from backend.evaluation.report_schema import REPORT_JSON, EvaluationReport, read_report
from backend.jobs.job import FINISHED
from backend.jobs.queue import JobQueue
from backend.jobs.runner import ensure_runner
from widgets.diff_view import Column, SideBySideDiff


class EvaluatePage(QWidget):
    report_changed = Signal()
    """The report shown changed (File ▸ Save report… follows it)."""

    def __init__(self, session: Session, parent: QWidget | None = None, *, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._queue = JobQueue(session.queue_path, session.jobs_dir)
        settings = settings if settings is not None else QSettings()
        self._report: EvaluationReport | None = None

        self.picker = AdapterPicker(self._queue, settings)
        self.picker.follow_requests(session, "Evaluate")
        self.compare = QCheckBox("Compare with a second adapter (A/B)")
        self.compare_picker = AdapterPicker(self._queue, settings)
        self.compare_picker.setEnabled(False)
        self.compare.toggled.connect(self.compare_picker.setEnabled)
        self._about = QLabel()
        self._about.setWordWrap(True)
        self.data = QLineEdit()
        self.data.setPlaceholderText("Empty: the held-out part of the adapter's own training data")
        self.data.setToolTip(EvaluateSpec.model_fields["data"].description or "")
        browse_data = QPushButton("Browse…")
        browse_data.clicked.connect(self._browse_data)
        self.prompts = QPlainTextEdit()
        self.prompts.setPlaceholderText(
            "Optional: your own prompts, one per line (for example questions the model must keep answering "
            "well). Empty: the held-out examples' questions, with their reference answers."
        )
        self.prompts.setFixedHeight(64)
        self.max_prompts = QSpinBox(minimum=1, maximum=1000, value=20)
        self.max_new_tokens = QSpinBox(minimum=1, maximum=4096, value=128)
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=0.0, decimals=2)
        self.temperature.setToolTip(EvaluateSpec.model_fields["temperature"].description or "")
        self.max_new_tokens.setToolTip(EvaluateSpec.model_fields["max_new_tokens"].description or "")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.clicked.connect(self.evaluate)
        self.message = QLabel()
        self.message.setWordWrap(True)

        setup = QGroupBox("What to compare")
        form = QFormLayout(setup)
        form.addRow("Adapter", self.picker)
        form.addRow("", self._about)
        form.addRow(self.compare)
        form.addRow("Second adapter", self.compare_picker)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data, 1)
        data_row.addWidget(browse_data)
        form.addRow("Held-out data", data_row)
        form.addRow("Prompts", self.prompts)
        numbers = QHBoxLayout()
        for label, box in (("at most", self.max_prompts), ("answer length (tokens)", self.max_new_tokens),
                           ("temperature", self.temperature)):  # fmt: skip
            numbers.addWidget(QLabel(label))
            numbers.addWidget(box)
        numbers.addStretch(1)
        form.addRow("Answers", numbers)
        run_row = QHBoxLayout()
        run_row.addWidget(self.evaluate_button)
        run_row.addWidget(self.message, 1)
        form.addRow(run_row)

        self.reports = QComboBox()
        self.reports.setPlaceholderText("No finished evaluation yet")
        self.reports.currentIndexChanged.connect(self._show_selected_report)
        self.against = QComboBox()
        self.against.addItems(["Mark changes against the base model", "Mark changes between the two adapters"])
        self.against.setToolTip("With two adapters: compare each with the base, or the second with the first.")
        self.against.currentIndexChanged.connect(lambda _: self._show_generation(self.prompt_list.currentRow()))
        self.open_html = QPushButton("Open full report")
        self.open_html.clicked.connect(self._open_html)
        self.losses = QTableWidget(0, 4)
        self.losses.setHorizontalHeaderLabels(["Model", "Evaluation held-out loss", "Perplexity", "Against the base"])
        self.losses.verticalHeader().hide()
        self.losses.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.losses.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.losses.setMaximumHeight(110)
        self.prompt_list: QListWidget = QListWidget()
        self.prompt_list.currentRowChanged.connect(self._show_generation)
        self.diff = SideBySideDiff()
        answers = QSplitter(Qt.Orientation.Horizontal)
        answers.addWidget(self.prompt_list)
        answers.addWidget(self.diff)
        answers.setStretchFactor(1, 3)
        answers.setSizes([260, 780])

        report_row = QHBoxLayout()
        report_row.addWidget(QLabel("<b>Report</b>"))
        report_row.addWidget(self.reports, 1)
        report_row.addWidget(self.against)
        report_row.addWidget(self.open_html)
        self._data = QLabel()
        self._data.setWordWrap(True)

        scroll = QScrollArea()
        scroll.setWidget(setup)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        report = QWidget()
        report_layout = QVBoxLayout(report)
        report_layout.setContentsMargins(0, 8, 0, 0)
        report_layout.addLayout(report_row)
        report_layout.addWidget(self._data)
        report_layout.addWidget(self.losses)
        report_layout.addWidget(answers, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(report)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([250, 550])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addWidget(QLabel("<h2>Evaluate</h2>"))
        layout.addWidget(self.splitter, 1)

        self.picker.adapter_changed.connect(self._adapter_changed)
        self._waiting_for: int | None = None
        """The evaluation job this page queued last, while its message stands."""
        self._watch = QueueWatch(self, session.queue_state())
        self._watch.changed.connect(self._queue_changed)
        self._adapter_changed()
        self._watch.check()

    # -- lifetime ----------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self._queue.close()
        super().closeEvent(event)

    # -- running -----------------------------------------------------------------------

    def spec(self) -> EvaluateSpec | None:
        info, _ = self.picker.info()
        if info is None:
            return None
        prompts = [line.strip() for line in self.prompts.toPlainText().splitlines() if line.strip()]
        name = (info.record or {}).get("name") or info.path.parent.name
        return EvaluateSpec(
            name=f"{name}-evaluation",
            adapter=str(info.path),
            compare_adapter=self.compare_picker.path() or None if self.compare.isChecked() else None,
            data=self.data.text().strip() or None,
            prompts=prompts or None,
            max_prompts=self.max_prompts.value(),
            max_new_tokens=self.max_new_tokens.value(),
            temperature=self.temperature.value(),
        )

    def evaluate(self) -> None:
        spec = self.spec()
        if spec is None:
            return
        added = self._queue.add(spec)
        lines = [check.message for check in added.checks if check.level != "info"]
        if added.job is not None:
            ensure_runner(self._queue)
            self._session.job_queued.emit(added.job.id)
            lines.insert(0, f"Queued job {added.job.id}; its report appears here when it finishes.")
            self._waiting_for = added.job.id
        self.message.setText("<br>".join(lines))
        self._watch.check()

    def _browse_data(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Held-out data", self.data.text() or str(Path.home()))
        if path:
            self.data.setText(path)

    def _adapter_changed(self) -> None:
        info, problem = self.picker.info()
        self._about.setText(describe(info) if info else problem)
        self.evaluate_button.setEnabled(info is not None)

    # -- reports -----------------------------------------------------------------------

    def _queue_changed(self) -> None:
        self.picker.refresh()
        self.compare_picker.refresh()
        current = self.reports.currentData()
        self._drop_stale_message()
        state = self._session.queue_state()  # the jobs as every page sees them, the moment they end
        jobs = [job for job in state.jobs() if job.state == "succeeded" and job.kind == "evaluate"]
        jobs = [job for job in jobs if (job.folder / REPORT_JSON).is_file()]
        self.reports.blockSignals(True)
        self.reports.clear()
        for job in jobs:
            when = time.strftime("%d %b %H:%M", time.localtime(job.ended_at or job.created_at))
            self.reports.addItem(f"{job.name} (job {job.id}, {when})", str(job.folder))
        index = self.reports.findData(current) if current else 0
        self.reports.setCurrentIndex(index if index >= 0 else 0)
        self.reports.blockSignals(False)
        if self.reports.currentData() != current:
            self._show_selected_report()

    def _drop_stale_message(self) -> None:
        """The "Queued job N…" message stands while job N waits or runs; then its report, or why not, replaces it."""
        if self._waiting_for is None:
            return
        job = self._session.queue_state().job(self._waiting_for)
        if job is not None and job.state not in FINISHED:
            return
        self._waiting_for = None
        if job is None or job.state == "succeeded":
            self.message.clear()
        else:
            why = f": {job.message.strip().splitlines()[0]}" if job.message else ""
            self.message.setText(f"Job {job.id} {job.state}{why}")

    def _show_selected_report(self) -> None:
        folder = self.reports.currentData()
        self._report = None
        if folder:
            try:
                self._report = read_report(Path(folder))
            except (OSError, ValueError) as exc:
                self._data.setText(f"The report cannot be read: {exc}")
        self.open_html.setEnabled(self._report is not None)
        self.report_changed.emit()
        keys = [model.key for model in self._report.models] if self._report else []
        self.against.setVisible("compare" in keys)
        self._fill_losses()
        self.prompt_list.clear()
        self.diff.clear_comparison()
        if self._report is None:
            return
        for generation in self._report.generations:
            self.prompt_list.addItem(_first_line(prompt_text(generation.prompt)))
        if self.prompt_list.count():
            self.prompt_list.setCurrentRow(0)

    def has_report(self) -> bool:
        return self._report is not None

    def save_report(self) -> None:
        """Save a copy of the report shown as Markdown, HTML or JSON, where the user chooses (File ▸ Save report…)."""
        folder = self.reports.currentData()
        if self._report is None or not folder:
            return
        target, _ = QFileDialog.getSaveFileName(
            self,
            "Save the evaluation report",
            f"{Path(folder).name}-report.md",
            "Markdown (*.md);;HTML (*.html);;JSON (*.json)",
        )
        if target:
            kind = {".html": REPORT_HTML, ".json": REPORT_JSON}.get(Path(target).suffix.lower(), REPORT_MD)
            shutil.copyfile(Path(folder) / kind, target)

    def _fill_losses(self) -> None:
        report = self._report
        if report is None:
            self._data.setText("")
            self.losses.setRowCount(0)
            return
        data = report.data
        # Which held-out loss this is, beside the adapter's in-training one and why they differ (loss_note).
        explained = " ".join(loss_explanation(report))
        self._data.setText(f"Held-out data: {data.source}. {explained}".strip())
        self.losses.setRowCount(len(report.models))
        for row, model in enumerate(report.models):
            own, delta = report.losses.get(model.key), report.deltas.get(model.key)
            cells = [
                model.label,
                _number(own.loss if own else None),
                _number(own.perplexity if own else None, ".2f"),
                _change(delta.loss if delta else None) if model.key != "base" else "",
            ]
            for column, text in enumerate(cells):
                self.losses.setItem(row, column, QTableWidgetItem(text))

    def _show_generation(self, row: int) -> None:
        report = self._report
        if report is None or not 0 <= row < len(report.generations):
            self.diff.clear_comparison()
            return
        generation = report.generations[row]
        outputs, diffs = generation.outputs, generation.diff
        between = self.against.currentIndex() == 1 and "compare" in outputs
        if between:  # the first adapter's words against the second's; the base plain
            a_to_b = word_diff(outputs.get("adapter", ""), outputs.get("compare", ""))
            runs = {
                "base": [("equal", outputs.get("base", ""))],
                "adapter": [(op, text) for op, text in a_to_b if op != "insert"],
                "compare": [(op, text) for op, text in a_to_b if op != "delete"],
            }
            names = (report.label("adapter"), report.label("compare"))
        else:
            runs = {"base": [(op, text) for op, text in diffs.get("adapter", []) if op != "insert"]}
            runs |= {key: [(op, text) for op, text in diff if op != "delete"] for key, diff in diffs.items()}
            names = ("the base model", "the adapter")
        plain = {model.key: [("equal", outputs.get(model.key, ""))] for model in report.models}
        columns = [Column(model.label, runs.get(model.key) or plain[model.key]) for model in report.models]
        self.diff.set_comparison(prompt_text(generation.prompt), columns, generation.reference, names)

    def _open_html(self) -> None:
        folder = self.reports.currentData()
        if folder:
            open_location(Path(folder) / REPORT_HTML, self)


def _first_line(text: str, limit: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(empty prompt)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _number(value: Any, fmt: str = ".3f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "–"


def _change(delta: Any) -> str:
    if not isinstance(delta, int | float):
        return ""
    return f"{delta:+.3f} ({'better' if delta < 0 else 'worse' if delta > 0 else 'same'})"
