"""The Model & training page: base model, dataset, hyperparameters, and whether the job fits the GPU.

The form on the left is checked on every edit by building the spec with ``JobSpec.from_dict``;
each problem line goes under the field it names, and while any remains the job cannot be
queued. The gauge on the right is the estimator's answer for the selected GPU, recomputed
100 ms after the last keystroke (an estimate takes well under a millisecond; the pause keeps
the gauge from flickering while a number is typed). Its suggestions change the form.

Nothing here imports torch: the model is described from its files, the estimate is
arithmetic over safetensors headers, and queueing a job writes a row and a folder.

The spec is built in one place, ``app.training_job.build_spec``, for validation, the estimate
and the queue alike; model shapes and Hub reads are in ``app.hub_shapes``, the dataset box in
``app.dataset_summary``, the gauge column, the queue bar and the estimate with its notes in
``app.training_columns``. What stays here (a little over 400 lines) is where the form, the picker,
the dataset, the gauge and the queue meet: each change wired to the rest, and the values
remembered between sessions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

from PySide6.QtCore import QSettings, QSignalBlocker, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import QFrame, QSplitter, QVBoxLayout, QWidget

from app.dataset_summary import DatasetSummary
from app.hub_shapes import ModelShapesCache
from app.model_picker import ModelInfo, ModelPicker
from app.session import DatasetChoice, Session
from app.spec_fields import errors_by_field, in_words
from app.spec_form import SpecForm
from app.training_columns import EstimateColumn, QueueBar, estimate_with_notes
from app.training_job import build_spec, queue_spec
from app.vram import gauge_data, gpu_info
from backend.core.presets import DEFAULT_PRESET, PRESETS, flatten, matching_preset
from backend.core.spec import JobSpec, SpecError
from backend.estimator import Estimate, GpuMemory
from backend.estimator.calibration import CalibrationStore
from backend.estimator.gpus import machine_gpus
from backend.jobs.job import Job
from backend.jobs.queue import JobQueue
from backend.jobs.runner import ensure_runner
from backend.models.hub_facts import HubFacts
from widgets.boxes import group, vertical_scroll
from widgets.form_field import FormField
from widgets.message_list import Level
from widgets.preset_bar import PresetBar

ESTIMATE_DELAY_MS = 100
SETTINGS_VALUES = "training/last_values"
SETTINGS_MODEL = "training/last_model"
SETTINGS_SPLITTER = "training/splitter"
SETTINGS_ADVANCED = "training/advanced_open"
STALE_ESTIMATE = "Some settings are not valid yet: the estimate above is for the last valid ones."
NO_DATASET = "Choose a dataset on the Data page first: the job needs something to train on."
_DATA_PATHS = ("data", "data.path", "data.format", "data.columns")


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
        self._read_gpus = read_gpus or machine_gpus
        self.start_runner: Callable[[JobQueue], int | None] = ensure_runner
        """What Start now calls to make sure a runner works through the queue (tests replace it)."""
        self._gpus: list[GpuMemory] = []
        self.shapes = ModelShapesCache(pool or QThreadPool.globalInstance(), self)
        self.shapes.hub_answered.connect(self._hub_answered)
        self._calibration = CalibrationStore(session.home / "vram_calibration.json")
        self.spec: JobSpec | None = None
        self.estimate: Estimate | None = None
        self.problems: list[str] = []

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self._build_form_column())
        self.splitter.addWidget(self._build_gauge_column())
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        rule = QFrame()
        rule.setFrameShape(QFrame.Shape.HLine)
        rule.setFrameShadow(QFrame.Shadow.Sunken)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(rule)
        layout.addWidget(self._build_bar())

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

    # -- building the page ---------------------------------------------------------------------------

    def _build_form_column(self) -> QWidget:
        """The left column: the base model, the dataset and the training settings, scrolling."""
        line = self.fontMetrics().height()
        self.picker = ModelPicker(self._settings, home=self.session.home)
        self.picker.changed.connect(self._model_changed)
        self.picker.imported.connect(self._model_imported)

        self.dataset = DatasetSummary()
        self.dataset.data_page_requested.connect(self._show_data_page)
        self.dataset_field = FormField(self.dataset)
        self.dataset_field.setObjectName("data")

        self.presets = PresetBar([(preset.name, preset.summary) for preset in PRESETS.values()])
        self.presets.chosen.connect(self._preset_clicked)
        self.form = SpecForm()
        self.form.changed.connect(self._edited)
        settings_body = QWidget()
        settings_layout = QVBoxLayout(settings_body)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.setSpacing(line // 2)
        settings_layout.addWidget(self.presets)
        settings_layout.addSpacing(line // 2)
        settings_layout.addWidget(self.form)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(line, line, line, line)
        left_layout.setSpacing(line)
        left_layout.addWidget(group("Base model", self.picker))
        left_layout.addWidget(group("Dataset", self.dataset_field))
        left_layout.addWidget(group("Training settings", settings_body))
        left_layout.addStretch(1)
        self.form_scroll = vertical_scroll(left)
        return self.form_scroll

    def _build_gauge_column(self) -> QWidget:
        """The right column: the gauge for the chosen GPU, Measure, and the estimate's notes."""
        column = EstimateColumn()
        self.gauge, self.notes, self.measure_button = column.gauge, column.notes, column.measure_button
        self.gauge.suggestionChosen.connect(self._apply_suggestion)
        self.gauge.gpuChanged.connect(self._gpu_changed)
        self.measure_button.clicked.connect(self.measure)
        self.gauge_scroll = vertical_scroll(column)
        return self.gauge_scroll

    def _build_bar(self) -> QWidget:
        """The bottom bar: the pre-flight checks, what blocks the job, Add to queue and Start now."""
        bar = QueueBar()
        self.checks, self.status = bar.checks, bar.status
        self.add_button, self.start_button = bar.add_button, bar.start_button
        self.add_button.clicked.connect(self.add_to_queue)
        self.start_button.clicked.connect(self.start_now)
        return bar

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

    def job_spec(self, *, placeholder_data: bool = False, absolute: bool = True) -> JobSpec:
        """What the form says, as a spec (the dataset from the session, the model from the picker).

        By default as the queue takes it, every path made absolute; see ``build_spec``.
        """
        return build_spec(
            self.form.values(),
            self.picker.ref(),
            self.session.dataset,
            placeholder_data=placeholder_data,
            absolute=absolute,
        )

    def _validate(self) -> None:
        try:
            self.spec = self.job_spec(absolute=False)
            self.problems = []
        except SpecError as exc:
            self.spec = None
            self.problems = list(exc.problems)
        placed, rest = errors_by_field(self.problems, [*self.form.fields, *_DATA_PATHS, "base_model"])
        placed = {path: in_words(message) for path, message in placed.items()}
        rest = [in_words(problem) for problem in rest]
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
        if name:
            self.presets.show_match(list(PRESETS).index(name), PRESETS[name].summary)
        else:
            self.presets.show_match(None, "Custom settings: no preset matches every value.")

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
        self.shapes.forget(ref)
        self.update_estimate()

    def _dataset_changed(self, choice: DatasetChoice) -> None:
        self._show_dataset(choice)
        self._validate()
        self.update_estimate()

    def _show_dataset(self, choice: DatasetChoice | None) -> None:
        self.dataset.show_choice(choice)
        self.dataset_field.setToolTip(choice.path if choice is not None else "")

    def _show_data_page(self) -> None:
        self.session.show_page.emit("Data")

    # -- the estimate ------------------------------------------------------------------------------

    def _hub_answered(self, ref: str, facts: HubFacts | str) -> None:
        """A hub model's facts (or why there are none) came: the picker shows them, the estimate uses them."""
        self.picker.set_hub_facts(ref, facts)
        if self.picker.ref() == ref:
            self.update_estimate()

    def is_busy(self) -> bool:
        """Whether an estimate is waiting for its delay or a hub model's facts and shapes are being read."""
        return self._timer.isActive() or self.shapes.is_reading()

    def update_estimate(self) -> None:
        """Estimate now (the form's edits call this 100 ms after the last one)."""
        self._timer.stop()
        info = self.picker.current()
        shapes, reason = self.shapes.shapes_for(info)
        notes: list[tuple[Level, str]] = [("info", reason)]
        result: Estimate | None = None
        if shapes is not None:
            try:
                spec = self.job_spec(placeholder_data=True, absolute=False)
            except SpecError:  # the form shows why; the gauge keeps the last valid estimate
                if self.estimate is not None:
                    self.notes.set_messages([("warning", STALE_ESTIMATE)])
                return
            result, notes = estimate_with_notes(spec, shapes, self.gpu(), self.session.dataset, self._calibration)
        self.estimate = result
        self.gauge.set_data(gauge_data(result) if result is not None else None)
        self.notes.set_messages(notes)
        self.estimated.emit(result)

    def _apply_suggestion(self, index: int) -> None:
        if self.estimate is None or index >= len(self.estimate.suggestions):
            return
        suggestion = self.estimate.suggestions[index]
        self.form.set_values(suggestion.changes)
        self.update_estimate()

    # -- queueing -----------------------------------------------------------------------------------

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
            self.checks.set_messages([("error", in_words(problem)) for problem in exc.problems])
            return None
        if kind == "measure":
            spec.kind, spec.name = "measure", f"{spec.name}-measure"
        with JobQueue(self.session.queue_path, self.session.jobs_dir) as queue:
            job, messages = queue_spec(queue, spec, start=start, start_runner=self.start_runner)
        self.checks.set_messages([(level, in_words(text)) for level, text in messages])
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
        expanded = cast(bool, self._settings.value(SETTINGS_ADVANCED, False, type=bool))  # type=bool: a bool
        self.form.advanced.set_expanded(expanded)
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
