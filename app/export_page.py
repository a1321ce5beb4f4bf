"""The Export page: one click turns an adapter into files other tools run.

Each output is a queued job (merge, export), so a long merge survives the window
closing and shows on the Jobs page like training does. A merged model and a GGUF
of the same adapter are one export job whose GGUF is made from the merge it keeps,
and an export finds a finished merge of the same adapter instead of merging again
(docs/export.md). The page sizes the work first (RAM and disk from the base's
safetensors headers) and refuses, with the reason, an adapter whose base does not match.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QCloseEvent, QShowEvent, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.adapter_picker import AdapterPicker, describe
from app.open_location import open_location
from app.queue_watch import QueueWatch
from app.session import Session
from backend.core.events import Artifact, read_events
from backend.core.task_specs import ExportSpec, MergeSpec
from backend.export.check_ram import gguf_checks
from backend.export.errors import ExportError
from backend.export.gguf.llama_cpp_run import installed as llama_cpp_installed
from backend.export.job import MERGED_DIR
from backend.export.merge import MergePlan, merge_key, plan_merge
from backend.export.merge_reuse import find_merge
from backend.jobs.checks import Check
from backend.jobs.job import FINISHED
from backend.jobs.queue import JobQueue
from backend.jobs.runner import ensure_runner

GGUF_TYPES = {
    "q8_0": "Q8_0: near-exact, half the size of 16-bit (recommended)",
    "f16": "F16: exact, largest",
    "bf16": "BF16: exact, largest (for bfloat16 models)",
    "q6_k": "Q6_K: smaller, very close to the original",
    "q5_k_m": "Q5_K_M: smaller, slight quality loss",
    "q4_k_m": "Q4_K_M: smallest, the usual choice for laptops",
}
K_QUANTS = ("q6_k", "q5_k_m", "q4_k_m")
MERGE_DTYPES = {"auto": "as the base (usually bfloat16)", "bfloat16": "bfloat16", "float16": "float16",
                "float32": "float32 (twice the size)"}  # fmt: skip
_OUTPUT_KINDS = ("model", "gguf", "modelfile", "export")
"""Artifacts worth showing; the last one a job announces is its main output (the export folder)."""


class ExportPage(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None, *, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._queue = JobQueue(session.queue_path, session.jobs_dir)
        self._settings = settings if settings is not None else QSettings()

        self.picker = AdapterPicker(self._queue, self._settings)
        self.picker.follow_requests(session, "Export")
        self._about = QLabel()
        self._about.setWordWrap(True)
        self._about.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.gguf = QCheckBox("GGUF for llama.cpp, Ollama and LM Studio")
        self.gguf.setChecked(True)
        self.gguf_type = QComboBox()
        quants = llama_cpp_installed()
        types = self.gguf_type.model()
        assert isinstance(types, QStandardItemModel)  # a combo box's own model
        for key, label in GGUF_TYPES.items():
            self.gguf_type.addItem(label, key)
            if key in K_QUANTS and not quants:
                item = types.item(self.gguf_type.count() - 1)
                item.setEnabled(False)
                item.setToolTip("Needs the gguf-quant extra: pip install 'lora-studio[gguf-quant]'")
        self.system = QLineEdit()
        self.system.setPlaceholderText("Optional: a system prompt for the Ollama Modelfile")
        self.gguf_lora = QCheckBox(
            "The adapter alone, as a GGUF LoRA (llama.cpp --lora, Ollama ADAPTER; needs the base's GGUF)"
        )
        self.gguf_lora.setToolTip(
            "A small file applied on top of the base model's own GGUF. Ollama 0.34.1 and later reportedly refuse "
            "ADAPTER in ollama create, and LM Studio cannot add a separate adapter: use the GGUF choice for them."
        )
        self.merged = QCheckBox("Merged model in safetensors (Hugging Face, vLLM)")
        self.merge_dtype = QComboBox()
        for key, label in MERGE_DTYPES.items():
            self.merge_dtype.addItem(label, key)
        self.adapter_only = QCheckBox("The adapter alone, as a PEFT folder (vLLM's LoRA support)")
        self.output = QLineEdit()
        self.output.setPlaceholderText("Empty: inside each job's folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_output)

        what = QGroupBox("What to make")
        form = QFormLayout(what)
        form.addRow(self.gguf)
        form.addRow("Weights", self.gguf_type)
        form.addRow("System prompt", self.system)
        form.addRow(self.gguf_lora)
        form.addRow(self.merged)
        form.addRow("Precision", self.merge_dtype)
        form.addRow(self.adapter_only)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output, 1)
        out_row.addWidget(browse)
        form.addRow("Save to", out_row)

        self._needs = QLabel()
        self._needs.setWordWrap(True)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.export)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.results = QTableWidget(0, 4)
        self.results.setHorizontalHeaderLabels(["Job", "State", "Output", ""])
        self.results.verticalHeader().hide()
        self.results.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.results.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addWidget(QLabel("<h2>Export</h2>"))
        layout.addWidget(QLabel("Adapter"))
        layout.addWidget(self.picker)
        layout.addWidget(self._about)
        layout.addWidget(what)
        layout.addWidget(self._needs)
        button_row = QHBoxLayout()
        button_row.addWidget(self.export_button)
        button_row.addWidget(self.message, 1)
        layout.addLayout(button_row)
        layout.addWidget(QLabel("<b>Exports</b>"))
        layout.addWidget(self.results, 1)

        for box in (self.gguf, self.gguf_lora, self.merged, self.adapter_only):
            box.toggled.connect(self._update)
        self.merge_dtype.currentIndexChanged.connect(self._update)
        self.output.editingFinished.connect(self._update)
        self.picker.adapter_changed.connect(self._update)
        self._queued: list[int] = []
        """The jobs this page queued last, while its message about them stands."""
        self._watch = QueueWatch(self, session.queue_state())
        self._watch.changed.connect(self._queue_changed)
        self._update()
        self._watch.check()

    # -- state -----------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        self.picker.refresh()
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._queue.close()
        super().closeEvent(event)

    def _update(self) -> None:
        self.gguf_type.setEnabled(self.gguf.isChecked())
        self.system.setEnabled(self.gguf.isChecked() or self.gguf_lora.isChecked())
        self.merge_dtype.setEnabled(self.merged.isChecked())
        info, problem = self.picker.info()
        self._about.setText(describe(info) if info else problem)
        wanted = any(box.isChecked() for box in (self.gguf, self.gguf_lora, self.merged, self.adapter_only))
        needs, blocked = "", info is None
        if info is not None and (self.gguf.isChecked() or self.merged.isChecked()):
            dtype = self.merge_dtype.currentData() if self.merged.isChecked() else "auto"
            try:
                plan = plan_merge(info.path, None, dtype)
            except ExportError as exc:
                needs, blocked = f"<span style='color:#c62828'>{exc}</span> {exc.hint or ''}", True
            else:
                reused = self._finished_merge(plan)
                needs = (
                    f"The GGUF is made from the finished merge at {reused}, without merging again."
                    if reused is not None
                    else f"Merging into {plan.base_path.name} ({plan.parameter_count / 1e6:,.0f}M parameters) needs "
                    f"about {plan.ram_bytes / 2**30:.1f} GiB of RAM and {plan.output_bytes / 2**30:.2f} GiB of disk."
                )
                notes = list(plan.warnings)
                if self.gguf.isChecked():
                    notes += gguf_checks(plan.parameter_count, plan.largest_tensor)[2]
                if notes:
                    needs += " " + " ".join(notes)
        self._needs.setText(needs)
        self.export_button.setEnabled(wanted and not blocked)

    def _finished_merge(self, plan: MergePlan) -> Path | None:
        """The merge a GGUF export alone would convert instead of merging (the job decides again when it runs)."""
        if not self.gguf.isChecked() or (self.merged.isChecked() and self.output.text().strip()):
            return None  # no GGUF, or the merged model asked for in a folder of its own
        key = merge_key(plan, verify=True)
        return find_merge(key, sorted(self._session.jobs_dir.glob(f"*/{MERGED_DIR}"))) if key else None

    def _queue_changed(self) -> None:
        self.picker.refresh()
        self._fill_results()

    def _fill_results(self) -> None:
        state = self._session.queue_state()  # the jobs as every page sees them, the moment they end
        jobs = [job for job in state.jobs() if job.kind in ("merge", "export")]
        if self._queued and all(job.state in FINISHED for job in jobs if job.id in self._queued):
            self._queued = []  # "Queued job N…" goes once they have ended; the table says how
            self.message.clear()
        self.results.setRowCount(len(jobs))
        for row, job in enumerate(jobs):
            outputs = _outputs(job.layout.events) if job.state == "succeeded" else []
            text = outputs[-1] if outputs else (job.message or "")
            self.results.setItem(row, 0, QTableWidgetItem(f"{job.id} · {job.name}"))
            self.results.setItem(row, 1, QTableWidgetItem(job.label))
            item = QTableWidgetItem(text)
            item.setToolTip("\n".join(outputs) or text)
            self.results.setItem(row, 2, item)
            folder = Path(outputs[-1]) if outputs else job.folder
            shown = self.results.cellWidget(row, 3)
            if isinstance(shown, QPushButton) and shown.property("folder") == str(folder):
                continue  # a new button each fill would stand unplaced at the table's corner until the next layout
            button = QPushButton("Open folder")
            button.setProperty("folder", str(folder))
            button.clicked.connect(lambda _=False, f=folder: open_location(f if f.is_dir() else f.parent, self))
            self.results.setCellWidget(row, 3, button)

    # -- actions ---------------------------------------------------------------------

    def specs(self) -> list[MergeSpec | ExportSpec]:
        """The jobs the current choices make, in the order they are queued."""
        info, _ = self.picker.info()
        if info is None:
            return []
        adapter = str(info.path)
        name = info.name
        out = self.output.text().strip() or None
        specs: list[MergeSpec | ExportSpec] = []
        merged_dir = str(Path(out) / f"{name}-merged") if out else None
        dtype = self.merge_dtype.currentData()
        if self.gguf.isChecked():  # one job that merges (or reuses a finished merge) and converts what it merged
            keep = self.merged.isChecked()
            specs.append(ExportSpec(name=name, source=adapter, gguf_type=self.gguf_type.currentData(),
                                    system=self.system.text().strip() or None, output_dir=out,
                                    merge_dtype=dtype if keep else "auto",
                                    merged_dir=merged_dir if keep else None))  # fmt: skip
        elif self.merged.isChecked():
            specs.append(MergeSpec(name=f"{name}-merged", adapter=adapter, dtype=dtype, output_dir=merged_dir))
        if self.gguf_lora.isChecked():
            specs.append(ExportSpec(name=name, source=adapter, target="gguf_lora",
                                    system=self.system.text().strip() or None, output_dir=out))  # fmt: skip
        if self.adapter_only.isChecked():
            specs.append(ExportSpec(name=f"{name}-adapter", source=adapter, target="adapter",
                                    output_dir=str(Path(out) / f"{name}-adapter") if out else None))  # fmt: skip
        return specs

    def export(self) -> None:
        queued, problems = [], []
        for spec in self.specs():
            added = self._queue.add(spec)
            problems += [check for check in added.checks if check.level != "info"]
            if added.job is not None:
                queued.append(added.job.id)
                self._session.job_queued.emit(added.job.id)
        if queued:
            ensure_runner(self._queue)
        self._queued = queued
        self.message.setText(_summary(queued, problems))
        self._watch.check()

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save exports to", self.output.text() or str(Path.home()))
        if folder:
            self.output.setText(folder)


def _outputs(events: Path) -> list[str]:
    """The model files and folders a finished job announced, in order."""
    return [e.path for e in read_events(events) if isinstance(e, Artifact) and e.kind in _OUTPUT_KINDS]


def _summary(queued: list[int], problems: list[Check]) -> str:
    lines = []
    if queued:
        jobs = ", ".join(str(i) for i in queued)
        lines.append(f"Queued job{'s' if len(queued) > 1 else ''} {jobs}: follow {'them' if len(queued) > 1 else 'it'}"
                     " on the Jobs page.")  # fmt: skip
    lines += [check.message for check in problems]
    return "<br>".join(lines)
