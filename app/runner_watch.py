"""Whether the queue runs: the Jobs page's offer to start a runner when none does, and its Pause queue control.

Runners are other processes (they keep going when LoRA Studio closes); the session's queue state
says whether one is alive. Jobs waiting with no runner alive bring up the banner; for a while after
"Start runner" it stays down, as the new process takes a moment to register. While the whole queue
is paused the banner says so instead, with Resume queue: a paused queue is the one reason a queued
job does not run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QToolButton, QWidget

from backend.jobs.job import Job
from backend.jobs.queue import JobQueue

GRACE_S = 15.0
"""After "Start runner", how long the runner may take to show up before the offer returns."""

StartRunner = Callable[[JobQueue], "int | None"]


class RunnerBanner(QFrame):
    """ "N jobs are waiting, but no runner…" with a Start runner button, or "The queue is paused…" with Resume
    queue; hidden while nothing waits or a runner works through the queue."""

    startRequested = Signal()
    resumeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.text = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.button = QPushButton("Start runner")
        self.button.setToolTip("Start the background process that runs queued jobs one at a time")
        self.button.clicked.connect(self.startRequested)
        self.resume_button = QPushButton("Resume queue")
        self.resume_button.setToolTip("Let queued jobs start again, one at a time")
        self.resume_button.clicked.connect(self.resumeRequested)
        row = QHBoxLayout(self)
        row.addWidget(
            QLabel(pixmap=self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation).pixmap(24))
        )
        row.addWidget(self.text, 1)
        row.addWidget(self.button)
        row.addWidget(self.resume_button)
        self.hide()
        self._asked_at = 0.0

    def check(self, jobs: list[Job], *, alive: bool, paused: bool) -> None:
        """Say the queue is paused, or offer a runner if jobs wait and none is ``alive`` (or was just started)."""
        waiting = sum(1 for job in jobs if job.state == "queued" and not job.held)
        jobs_text = "1 job is" if waiting == 1 else f"{waiting} jobs are"
        just_asked = time.monotonic() - self._asked_at < GRACE_S
        offer = waiting > 0 and not paused and not alive and not just_asked
        if paused and waiting:
            self.text.setText(f"The queue is paused: {jobs_text} waiting and none starts until you resume it.")
        elif offer:
            self.text.setText(
                f"{jobs_text} waiting, but no runner is working through the queue. The runner runs jobs "
                "one at a time in the background and keeps going when LoRA Studio is closed."
            )
        self.button.setVisible(offer)
        self.resume_button.setVisible(paused)
        self.setVisible(offer or bool(paused and waiting))

    def start(self, queue: JobQueue, start_runner: StartRunner) -> str:
        """Start a runner unless one is alive; what happened, to tell the user."""
        pid = start_runner(queue)
        if pid is None:
            return "A runner is already working through the queue."
        self._asked_at = time.monotonic()
        return f"Started a runner in the background (process {pid}); queued jobs will start."


class QueuePauseButton(QToolButton):
    """Pause queue / Resume queue: checked while the whole queue is paused (the state is kept in the queue)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setCheckable(True)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.show_paused(False)

    def show_paused(self, paused: bool) -> None:
        """Show the queue's state without asking for a change."""
        blocked = self.blockSignals(True)
        self.setChecked(paused)
        self.blockSignals(blocked)
        symbol = QStyle.StandardPixmap.SP_MediaPlay if paused else QStyle.StandardPixmap.SP_MediaPause
        self.setIcon(self.style().standardIcon(symbol))
        self.setText("Resume queue" if paused else "Pause queue")
        self.setToolTip(
            "The queue is paused: no job starts until you resume it"
            if paused
            else "Start no more jobs until you resume the queue; a running job goes on"
        )


class QueueBar(QWidget):
    """One line above the jobs: whether the queue runs, and the Pause queue / Resume queue button beside it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLabel(textFormat=Qt.TextFormat.PlainText)
        self.button = QueuePauseButton()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text, 1)
        row.addWidget(self.button)

    def show_state(self, *, paused: bool, alive: bool) -> None:
        self.button.show_paused(paused)
        if paused:
            self.text.setText("Queue paused: no job starts until you resume it; a running job goes on.")
        elif alive:
            self.text.setText("Queue running: jobs run one at a time, in the order below.")
        else:
            self.text.setText("Queue ready: adding a job starts it.")
