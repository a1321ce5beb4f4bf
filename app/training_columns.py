"""The Model & training page's right column and bottom bar, and the estimate the column shows.

``EstimateColumn`` holds the VRAM gauge for the chosen GPU, "Measure on this GPU" and the
estimate's notes; ``estimate_with_notes`` is the estimate for one spec and model on one GPU, with
the notes to show beside it (why there is none, the estimator's own notes). ``QueueBar`` holds the
pre-flight checks, what blocks the job, "Add to queue" and "Start now". The page connects them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from app.session import DatasetChoice
from backend.core.spec import JobSpec
from backend.estimator import DataStats, Estimate, GpuMemory, ModelShapes, estimate
from backend.estimator.calibration import CalibrationStore
from backend.models.errors import ModelError
from widgets.labels import wrapping_label
from widgets.message_list import Level, MessageList
from widgets.vram_gauge import VramGauge


class EstimateColumn(QWidget):
    """The gauge, Measure, and the estimate's notes, top to bottom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        line = self.fontMetrics().height()
        self.gauge = VramGauge()
        self.notes = MessageList()
        self.notes.setObjectName("estimateNotes")
        self.measure_button = QPushButton("Measure on this GPU")
        self.measure_button.setToolTip(
            "Queue a short measure job: a few real steps of this configuration at its longest sequence "
            "length, to record the true peak memory. Later estimates on this GPU use it."
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(line, line, line, line)
        layout.setSpacing(line)
        layout.addWidget(self.gauge)
        layout.addWidget(self.measure_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.notes)
        layout.addStretch(1)


class QueueBar(QWidget):
    """The pre-flight checks above a line with what blocks the job, Add to queue and Start now."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        line = self.fontMetrics().height()
        self.checks = MessageList()
        self.checks.setObjectName("checks")
        self.status = wrapping_label(name="actionStatus")
        self.add_button = QPushButton("Add to queue")
        self.add_button.setToolTip("Check the job and put it at the end of the queue; it runs when its turn comes.")
        self.start_button = QPushButton("Start now")
        self.start_button.setDefault(True)
        self.start_button.setToolTip("Queue the job and make sure the queue is running, then show the Jobs page.")
        buttons = QHBoxLayout()
        buttons.setSpacing(line // 2)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.start_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(line, line // 2, line, line)
        layout.setSpacing(line // 2)
        layout.addWidget(self.checks)
        layout.addLayout(buttons)


def estimate_with_notes(
    spec: JobSpec,
    shapes: ModelShapes,
    gpu: GpuMemory | None,
    choice: DatasetChoice | None,
    calibration: CalibrationStore,
) -> tuple[Estimate | None, list[tuple[Level, str]]]:
    """The estimate of ``spec`` for a model of ``shapes`` on ``gpu`` (with the dataset's length when it was
    measured), and the notes to show: the estimator's, or why this model's memory could not be estimated."""
    data = DataStats(p99_tokens=choice.p99_tokens) if choice is not None and choice.p99_tokens else None
    try:
        result = estimate(spec, shapes, gpu, data, calibration=calibration)
    except (ModelError, KeyError, ValueError, TypeError, ZeroDivisionError) as exc:
        return None, [("warning", f"This model's memory could not be estimated: {exc}")]
    return result, [("info", note) for note in result.notes]
