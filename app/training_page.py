"""The Model & training page: base model, dataset, hyperparameters, and whether the job fits the GPU.

The form on the left is checked on every edit by building the spec with ``JobSpec.from_dict``;
each problem line goes under the field it names, and while any remains the job cannot be
queued. The gauge on the right is the estimator's answer for the selected GPU, recomputed
100 ms after the last keystroke (an estimate takes well under a millisecond; the pause keeps
the gauge from flickering while a number is typed). Its suggestions change the form.

Nothing here imports torch: the model is described from its files, the estimate is
arithmetic over safetensors headers, and queueing a job writes a row and a folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from PySide6.QtCore import QObject, QRunnable, QSettings, QSignalBlocker, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.model_picker import ModelInfo, ModelPicker
from app.session import DatasetChoice, Session
from app.spec_form import SpecForm, errors_by_field
from app.vram import gauge_data, gpu_info
from backend.core.presets import DEFAULT_PRESET, PRESETS, flatten, matching_preset, nest
from backend.core.spec import DataFormat, JobSpec, SpecError
from backend.estimator import DataStats, Estimate, GpuMemory, ModelShapes, estimate
from backend.estimator.calibration import CalibrationStore
from backend.estimator.gpus import machine_gpus
from backend.jobs.job import Job
from backend.jobs.queue import JobQueue
from backend.jobs.runner import ensure_runner
from backend.models.errors import ModelError
from backend.models.hub_facts import HubFacts, read_hub_facts
from backend.models.shapes import shapes_from_config, shapes_from_folder
from backend.models.store import DEFAULT_CONFIG
from widgets.form_field import FormField
from widgets.labels import wrapping_label
from widgets.message_list import MessageList
from widgets.vram_gauge import VramGauge

ESTIMATE_DELAY_MS = 100
SETTINGS_VALUES = "training/last_values"
SETTINGS_MODEL = "training/last_model"
SETTINGS_SPLITTER = "training/splitter"
SETTINGS_ADVANCED = "training/advanced_open"
PLACEHOLDER_DATA = "(no dataset chosen yet)"
STALE_ESTIMATE = "Some settings are not valid yet: the estimate above is for the last valid ones."
NO_DATASET = "Choose a dataset on the Data page first: the job needs something to train on."
_FORMATS = set(get_args(DataFormat))
_DATA_PATHS = ("data", "data.path", "data.format", "data.columns")


class _HubSignals(QObject):
    done = Signal(str, object)  # ref, HubFacts
    failed = Signal(str, str)  # ref, reason


class _HubRead(QRunnable):
    """Reads a hub model's facts and shapes (model info, config, safetensors headers) off the GUI thread."""

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref
        self.signals = _HubSignals()

    def run(self) -> None:
        try:
            facts = read_hub_facts(self.ref)
        except Exception as exc:  # noqa: BLE001 - offline, missing, the Hub down: all say "not known yet"
            self.signals.failed.emit(self.ref, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        else:
            self.signals.done.emit(self.ref, facts)


class TrainingPage(QWidget):
    """Model picker, dataset, hyperparameter form with presets, VRAM gauge, Add to queue and Start now."""

    estimated = Signal(object)  # the Estimate now shown, or None when there is none
    validated = Signal(bool)  # whether the form makes a valid spec

    def __init__(
        self,
        session: Session,
        parent: QWidget | None = None,
        *,
        settings: QSettings | None = None,
        pool: QThreadPool | None = None,
        read_gpus: Callable[[], list[GpuMemory]] | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self._settings = settings if settings is not None else QSettings()
        self._pool = pool or QThreadPool.globalInstance()
        self._read_gpus = read_gpus or machine_gpus
        self.start_runner: Callable[[JobQueue], int | None] = ensure_runner
        """What Start now calls to make sure a runner works through the queue (tests replace it)."""
        self._gpus: list[GpuMemory] = []
        self._shapes: dict[str, tuple[object, ModelShapes | None, str]] = {}
        self._hub_reads: dict[str, _HubRead] = {}
        self._calibration = CalibrationStore(session.home / "vram_calibration.json")
        self.spec: JobSpec | None = None
        self.estimate: Estimate | None = None
        self.problems: list[str] = []
        line = self.fontMetrics().height()

        # -- the left column: model, dataset, settings --------------------------------------------
        self.picker = ModelPicker(self._settings, home=session.home)
        self.picker.changed.connect(self._model_changed)
        self.picker.imported.connect(self._model_imported)
        model_box = _group("Base model", self.picker)

        self.dataset_title = wrapping_label(name="datasetTitle")
        bold = self.dataset_title.font()
        bold.setBold(True)
        self.dataset_title.setFont(bold)
        self.dataset_facts = wrapping_label(selectable=True, name="datasetFacts")
        self.data_button = QPushButton("Go to the Data page")
        self.data_button.clicked.connect(self._show_data_page)
        dataset = QWidget()
        dataset_layout = QVBoxLayout(dataset)
        dataset_layout.setContentsMargins(0, 0, 0, 0)
        dataset_layout.setSpacing(line // 3)
        dataset_layout.addWidget(self.dataset_title)
        dataset_layout.addWidget(self.dataset_facts)
        dataset_layout.addWidget(self.data_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.dataset_field = FormField(dataset)
        self.dataset_field.setObjectName("data")
        dataset_box = _group("Dataset", self.dataset_field)

        self.presets = QButtonGroup(self)
        self.presets.setExclusive(False)
        preset_row = QHBoxLayout()
        preset_row.setSpacing(line // 2)
        preset_row.addWidget(QLabel("Start from:"))
        for index, preset in enumerate(PRESETS.values()):
            button = QPushButton(preset.name)
            button.setCheckable(True)
            button.setToolTip(preset.summary)
            self.presets.addButton(button, index)
            preset_row.addWidget(button)
        preset_row.addStretch(1)
        self.presets.idClicked.connect(self._preset_clicked)
        self.preset_summary = wrapping_label(name="presetSummary")
        self.form = SpecForm()
        self.form.changed.connect(self._edited)
        settings_body = QWidget()
        settings_layout = QVBoxLayout(settings_body)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.setSpacing(line // 2)
        settings_layout.addLayout(preset_row)
        settings_layout.addWidget(self.preset_summary)
        settings_layout.addSpacing(line // 2)
        settings_layout.addWidget(self.form)
        settings_box = _group("Training settings", settings_body)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(line, line, line, line)
        left_layout.setSpacing(line)
        left_layout.addWidget(model_box)
        left_layout.addWidget(dataset_box)
        left_layout.addWidget(settings_box)
        left_layout.addStretch(1)
        self.form_scroll = _scroll(left)

        # -- the right column: the gauge ----------------------------------------------------------
        self.gauge = VramGauge()
        self.gauge.suggestionChosen.connect(self._apply_suggestion)
        self.gauge.gpuChanged.connect(self._gpu_changed)
        self.notes = MessageList()
        self.notes.setObjectName("estimateNotes")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(line, line, line, line)
        right_layout.setSpacing(line)
        right_layout.addWidget(self.gauge)
        self.measure_button = QPushButton("Measure on this GPU")
        self.measure_button.setToolTip(
            "Queue a short measure job: a few real steps of this configuration at its longest sequence "
            "length, to record the true peak memory. Later estimates on this GPU use it."
        )
        self.measure_button.clicked.connect(self.measure)
        right_layout.addWidget(self.measure_button, 0, Qt.AlignmentFlag.AlignLeft)
        right_layout.addWidget(self.notes)
        right_layout.addStretch(1)
        self.gauge_scroll = _scroll(right)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.form_scroll)
        self.splitter.addWidget(self.gauge_scroll)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        # -- the bottom bar: checks and the two buttons ---------------------------------------------
        self.checks = MessageList()
        self.checks.setObjectName("checks")
        self.status = wrapping_label(name="actionStatus")
        self.add_button = QPushButton("Add to queue")
        self.add_button.setToolTip("Check the job and put it at the end of the queue; it runs when its turn comes.")
        self.add_button.clicked.connect(self.add_to_queue)
        self.start_button = QPushButton("Start now")
        self.start_button.setDefault(True)
        self.start_button.setToolTip("Queue the job and make sure the queue is running, then show the Jobs page.")
        self.start_button.clicked.connect(self.start_now)
        buttons = QHBoxLayout()
        buttons.setSpacing(line // 2)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.start_button)
        bar = QWidget()
        bar_layout = QVBoxLayout(bar)
        bar_layout.setContentsMargins(line, line // 2, line, line)
        bar_layout.setSpacing(line // 2)
        bar_layout.addWidget(self.checks)
        bar_layout.addLayout(buttons)
        rule = QFrame()
        rule.setFrameShape(QFrame.Shape.HLine)
        rule.setFrameShadow(QFrame.Shadow.Sunken)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(rule)
        layout.addWidget(bar)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(ESTIMATE_DELAY_MS)
        self._timer.timeout.connect(self.update_estimate)

        session.dataset_changed.connect(self._dataset_changed)
        session.edit_spec.connect(self.load_spec)
        self._restore()
        self._show_dataset(session.dataset)
        pending = session.take_pending_edit()
        if isinstance(pending, JobSpec):
            self.load_spec(pending)
        self._validate()
        self.refresh_gpus()  # and the first estimate

    # -- GPUs -------------------------------------------------------------------------------------

    def refresh_gpus(self) -> None:
        """Read the GPUs and their free memory from NVML (none: the gauge says so)."""
        self.set_gpus(self._read_gpus())

    def set_gpus(self, gpus: list[GpuMemory]) -> None:
        self._gpus = list(gpus)
        with QSignalBlocker(self.gauge):
            self.gauge.set_gpus(gpu_info(self._gpus))
        self.measure_button.setEnabled(getattr(self, "spec", None) is not None and self.gpu() is not None)
        self.update_estimate()

    def gpu(self) -> GpuMemory | None:
        index = self.gauge.current_gpu()
        return self._gpus[index] if self._gpus and 0 <= index < len(self._gpus) else None

    def _gpu_changed(self, _index: int) -> None:
        self.measure_button.setEnabled(self.spec is not None and self.gpu() is not None)
        self.update_estimate()

    # -- the spec ---------------------------------------------------------------------------------

    def spec_dict(self, *, placeholder_data: bool = False) -> dict[str, Any]:
        """What the form says, as a spec document (the dataset from the session, the model from the picker)."""
        values = nest(self.form.values())
        values["base_model"] = self.picker.ref()
        data = values.setdefault("data", {})
        choice = self.session.dataset
        if choice is not None:
            data["path"] = choice.path
            if choice.columns:
                data["format"], data["columns"] = "columns", dict(choice.columns)
            else:
                data["format"] = choice.format if choice.format in _FORMATS else "auto"
            if choice.sheet is not None:
                data["sheet"] = choice.sheet
        elif placeholder_data:
            data["path"] = PLACEHOLDER_DATA
        return values

    def _validate(self) -> None:
        try:
            self.spec = JobSpec.from_dict(self.spec_dict())
            self.problems = []
        except SpecError as exc:
            self.spec = None
            self.problems = list(exc.problems)
        placed, rest = errors_by_field(self.problems, [*self.form.fields, *_DATA_PATHS, "base_model"])
        self.form.set_errors(placed)
        data_errors = [placed[path] for path in _DATA_PATHS if path in placed]
        if self.session.dataset is None:
            data_errors = [NO_DATASET]
        self.dataset_field.set_error("\n".join(data_errors))
        model_problem = self.picker.current().problem
        if "base_model" in placed:
            rest.insert(0, placed["base_model"])
        valid = self.spec is not None and not model_problem
        self.add_button.setEnabled(valid)
        self.start_button.setEnabled(valid)
        self.measure_button.setEnabled(valid and self.gpu() is not None)
        if valid:
            self.status.setText("")
        elif model_problem:
            self.status.setText("Choose a base model that can be read (see above).")
        elif self.session.dataset is None:
            self.status.setText(NO_DATASET)
        elif rest:
            self.status.setText("\n".join(rest))
        else:
            self.status.setText("Fix the settings marked in red to queue the job.")
        self.validated.emit(valid)

    def _edited(self) -> None:
        self._validate()
        self._show_preset()
        self._timer.start()

    def _show_preset(self) -> None:
        name = matching_preset(self.form.values())
        for index, preset in enumerate(PRESETS.values()):
            self.presets.button(index).setChecked(preset.name == name)
        self.preset_summary.setText(
            PRESETS[name].summary if name else "Custom settings: no preset matches every value."
        )

    def _preset_clicked(self, index: int) -> None:
        self.apply_preset(list(PRESETS)[index])

    def load_spec(self, spec: JobSpec) -> None:
        """Fill the form, model and dataset from an existing job's spec (the Jobs page's "Edit a copy")."""
        self.session.take_pending_edit()
        self.picker.set_ref(spec.base_model)
        data = spec.data
        chosen = self.session.dataset
        if chosen is None or (chosen.path, chosen.sheet) != (data.path, data.sheet):
            columns = data.columns.model_dump(exclude_none=True) if data.columns is not None else None
            choice = DatasetChoice(data.path, data.format, columns, rows=None, sheet=data.sheet)
            self.session.dataset_changed.emit(choice)
        values = flatten(spec.to_dict())
        self.form.set_values({path: value for path, value in values.items() if path in self.form.fields})

    def apply_preset(self, name: str) -> None:
        self.form.set_values(flatten(PRESETS[name].values))

    # -- the model and the dataset ----------------------------------------------------------------

    def _model_changed(self, _info: ModelInfo) -> None:
        self._validate()
        self.update_estimate()

    def _model_imported(self, ref: str) -> None:
        self._shapes.pop(ref, None)
        self.update_estimate()

    def _dataset_changed(self, choice: DatasetChoice) -> None:
        self._show_dataset(choice)
        self._validate()
        self.update_estimate()

    def _show_dataset(self, choice: DatasetChoice | None) -> None:
        if choice is None:
            self.dataset_title.setText("No dataset chosen yet")
            self.dataset_facts.setText(
                "Check a dataset on the Data page; the one you choose there is what this job trains on."
            )
            self.data_button.setText("Go to the Data page")
            self.dataset_field.setToolTip("")
            return
        path = Path(choice.path)
        self.dataset_title.setText(path.name if path.name else choice.path)
        layout = "a column mapping" if choice.columns else f"{choice.format} format"
        counted = f"{choice.rows:,} examples" if choice.rows is not None else "not checked in this session"
        facts = [counted, layout]
        if choice.p99_tokens:
            facts.append(f"99% are at most {choice.p99_tokens:,} tokens long")
        self.dataset_facts.setText(" · ".join(facts) + f"\n{choice.path}")
        self.data_button.setText("Change on the Data page")
        self.dataset_field.setToolTip(choice.path)

    def _show_data_page(self) -> None:
        self.session.show_page.emit("Data")

    # -- the estimate ------------------------------------------------------------------------------

    def shapes_for(self, info: ModelInfo) -> tuple[ModelShapes | None, str]:
        """The model's shapes for the estimator and, when there are none, why; cached per model."""
        stamp: object = None
        if info.folder is not None:
            config = info.folder / "config.json"
            stamp = (str(info.folder), config.stat().st_mtime_ns if config.is_file() else None)
        cached = self._shapes.get(info.ref)
        if cached is not None and (cached[0] == stamp or _recent_failure(cached[0])):
            return cached[1], cached[2]
        shapes: ModelShapes | None = None
        reason = ""
        if info.problem:
            reason = info.problem
        elif info.folder is not None:
            try:
                shapes = shapes_from_folder(info.folder)
            except ModelError as exc:
                reason = str(exc)
        elif info.ref == "default":
            shapes = shapes_from_config(DEFAULT_CONFIG)
        else:
            self._read_hub(info.ref)
            return None, f"Reading {info.ref}'s shapes from the Hugging Face Hub…"
        self._shapes[info.ref] = (stamp, shapes, reason)
        return shapes, reason

    def _read_hub(self, ref: str) -> None:
        if ref in self._hub_reads:
            return
        read = _HubRead(ref)
        read.signals.done.connect(self._hub_read, Qt.ConnectionType.QueuedConnection)
        read.signals.failed.connect(self._hub_failed, Qt.ConnectionType.QueuedConnection)
        self._hub_reads[ref] = read
        self._pool.start(read)

    @Slot(str, object)
    def _hub_read(self, ref: str, facts: HubFacts) -> None:
        self._hub_reads.pop(ref, None)
        self.picker.set_hub_facts(ref, facts)
        self._hub_shapes(ref, facts.shapes, facts.problem)

    @Slot(str, str)
    def _hub_failed(self, ref: str, reason: str) -> None:
        self._hub_reads.pop(ref, None)
        self.picker.set_hub_facts(ref, reason)
        self._hub_shapes(ref, None, reason)

    def _hub_shapes(self, ref: str, shapes: ModelShapes | None, problem: str) -> None:
        reason = (
            f"The memory estimate needs {ref}'s shapes, which could not be read from the Hub ({problem}). "
            "Import the model to see it."
        )
        # A read that gave no shapes (offline, gated, …) is tried again a while later: back online, or after
        # accepting a gated model's license, the picker and the estimate catch up without a restart.
        self._shapes[ref] = (None, shapes, "") if shapes else (time.monotonic(), None, reason)
        if self.picker.ref() == ref:
            self.update_estimate()

    def is_busy(self) -> bool:
        """Whether an estimate is waiting for its delay or a hub model's facts and shapes are being read."""
        return self._timer.isActive() or bool(self._hub_reads)

    def update_estimate(self) -> None:
        """Estimate now (the form's edits call this 100 ms after the last one)."""
        self._timer.stop()
        info = self.picker.current()
        shapes, reason = self.shapes_for(info)
        notes: list[tuple[str, str]] = []
        result: Estimate | None = None
        if shapes is None:
            notes.append(("info", reason))
        else:
            try:
                spec = JobSpec.from_dict(self.spec_dict(placeholder_data=True))
            except SpecError:
                spec = None  # the form shows why; the gauge keeps the last valid estimate
            if spec is None:
                if self.estimate is not None:
                    self.notes.set_messages([("warning", STALE_ESTIMATE)])
                return
            choice = self.session.dataset
            data = DataStats(p99_tokens=choice.p99_tokens) if choice is not None and choice.p99_tokens else None
            try:
                result = estimate(spec, shapes, self.gpu(), data, calibration=self._calibration)
            except (ModelError, KeyError, ValueError, TypeError, ZeroDivisionError) as exc:
                notes.append(("warning", f"This model's memory could not be estimated: {exc}"))
            else:
                notes += [("info", note) for note in result.notes]
        self.estimate = result
        self.gauge.set_data(gauge_data(result) if result is not None else None)
        self.notes.set_messages(notes)  # type: ignore[arg-type]
        self.estimated.emit(result)

    def _apply_suggestion(self, index: int) -> None:
        if self.estimate is None or index >= len(self.estimate.suggestions):
            return
        suggestion = self.estimate.suggestions[index]
        self.form.set_values(suggestion.changes)
        self.update_estimate()

    # -- queueing -----------------------------------------------------------------------------------

    def job_spec(self) -> JobSpec:
        """The spec to queue, with every path made absolute (the queue runs it from elsewhere)."""
        values = self.spec_dict()
        data = values["data"]
        for key in ("path", "eval_path"):
            if data.get(key):
                data[key] = str(Path(data[key]).expanduser().resolve())
        if values.get("output_dir"):
            values["output_dir"] = str(Path(values["output_dir"]).expanduser().resolve())
        ref = values["base_model"]
        if Path(ref).expanduser().is_dir():
            values["base_model"] = str(Path(ref).expanduser().resolve())
        return JobSpec.from_dict(values)

    def add_to_queue(self) -> Job | None:
        """Queue the job after the pre-flight checks; show them either way. Returns the job, if queued."""
        return self._queue(start=False)

    def start_now(self) -> Job | None:
        """Queue the job, make sure a runner works through the queue, and show the Jobs page."""
        return self._queue(start=True)

    def measure(self) -> Job | None:
        """Queue a measure job of this configuration and start the runner: the true peak, for calibration."""
        return self._queue(start=True, kind="measure")

    def _queue(self, *, start: bool, kind: str = "train") -> Job | None:
        self._validate()
        if self.spec is None:
            return None
        try:
            spec = self.job_spec()
        except SpecError as exc:
            self.checks.set_messages([("error", problem) for problem in exc.problems])
            return None
        if kind == "measure":
            spec.kind, spec.name = "measure", f"{spec.name}-measure"
        messages: list[tuple[str, str]] = []
        with JobQueue(self.session.queue_path, self.session.jobs_dir) as queue:
            added = queue.add(spec)
            if added.job is not None and start:
                self.start_runner(queue)
        job = added.job
        if job is None:
            messages.append(("error", "The job was not queued; the problems below block it."))
        else:
            where = "It starts now." if start else "It runs when its turn comes."
            messages.append(("ok", f"Queued as job {job.id}, “{job.name}”. {where}"))
        order = {"error": 0, "warning": 1, "info": 2}
        messages += [(check.level, check.message) for check in sorted(added.checks, key=lambda c: order[c.level])]
        self.checks.set_messages(messages)  # type: ignore[arg-type]
        if job is not None:
            self._save()
            self.session.job_queued.emit(job.id)
            if start:
                self.session.show_page.emit("Jobs")
        return job

    # -- remembered values ---------------------------------------------------------------------------

    def _save(self) -> None:
        self._settings.setValue(SETTINGS_VALUES, json.dumps(self.form.values()))
        self._settings.setValue(SETTINGS_MODEL, self.picker.ref())
        self._settings.setValue(SETTINGS_SPLITTER, self.splitter.saveState())

    def _restore(self) -> None:
        with QSignalBlocker(self.form):
            self.apply_preset(DEFAULT_PRESET)
            saved = self._settings.value(SETTINGS_VALUES)
            if isinstance(saved, str):
                try:
                    values = json.loads(saved)
                except ValueError:
                    values = None
                if isinstance(values, dict):
                    self.form.set_values(values)
        model = self._settings.value(SETTINGS_MODEL)
        if isinstance(model, str) and model:
            with QSignalBlocker(self.picker):
                self.picker.set_ref(model)
        self.form.advanced.set_expanded(self._settings.value(SETTINGS_ADVANCED, False, type=bool))
        self.form.advanced.toggled.connect(self._advanced_toggled)
        splitter = self._settings.value(SETTINGS_SPLITTER)
        if splitter is None or not self.splitter.restoreState(splitter):
            self.splitter.setSizes([600, 400])
        self._show_preset()

    def _advanced_toggled(self, expanded: bool) -> None:
        self._settings.setValue(SETTINGS_ADVANCED, expanded)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not event.spontaneous():
            # Models may have been imported from the command line, and other programs take and free GPU memory.
            with QSignalBlocker(self.picker):
                self.picker.refresh()
            self._validate()
            self.refresh_gpus()  # and estimate

    def closeEvent(self, event: QCloseEvent) -> None:
        self.picker.stop_import()
        self._timer.stop()
        super().closeEvent(event)


HUB_RETRY_S = 30.0
"""How long a Hub read that gave no shapes stands before the next estimate asks the Hub again."""


def _recent_failure(stamp: object) -> bool:
    """Whether a cache entry is a Hub read that failed less than ``HUB_RETRY_S`` ago."""
    return isinstance(stamp, float) and time.monotonic() - stamp < HUB_RETRY_S


def _group(title: str, body: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    line = box.fontMetrics().height()
    layout.setContentsMargins(line, line // 2, line, line)
    layout.addWidget(body)
    return box


def _scroll(content: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(content)
    return area
