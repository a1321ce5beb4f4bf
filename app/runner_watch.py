"""Whether a runner works through the queue, and the Jobs page's offer to start one when none does.

Runners are other processes (they keep going when LoRA Studio closes), so the page looks at the
queue's runner table every few polls. Jobs waiting with no runner alive bring up the banner; for
a while after "Start runner" it stays down, as the new process takes a moment to register.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QWidget

from backend.jobs.job import Job
from backend.jobs.queue import JobQueue

GRACE_S = 15.0
"""After "Start runner", how long the runner may take to show up before the offer returns."""

StartRunner = Callable[[JobQueue], "int | None"]


class RunnerBanner(QFrame):
    """ "N jobs are waiting, but no runner…" with a Start runner button; hidden while a runner is alive."""

    startRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.text = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.button = QPushButton("Start runner")
        self.button.setToolTip("Start the background process that runs queued jobs one at a time")
        self.button.clicked.connect(self.startRequested)
        row = QHBoxLayout(self)
        row.addWidget(
            QLabel(pixmap=self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation).pixmap(24))
        )
        row.addWidget(self.text, 1)
        row.addWidget(self.button)
        self.hide()
        self._alive = False
        self._asked_at = 0.0

    def alive(self) -> bool:
        """Whether a runner was alive when the queue was last looked at."""
        return self._alive

    def check(self, queue: JobQueue, jobs: list[Job]) -> None:
        """Look at the runners; offer to start one if jobs wait and none is alive (or was just started)."""
        self._alive = any(runner.alive for runner in queue.runners())
        waiting = sum(1 for job in jobs if job.state == "queued" and not job.held)
        just_asked = time.monotonic() - self._asked_at < GRACE_S
        offer = waiting > 0 and not self._alive and not just_asked
        if offer:
            jobs_text = "1 job is" if waiting == 1 else f"{waiting} jobs are"
            self.text.setText(
                f"{jobs_text} waiting, but no runner is working through the queue. The runner runs jobs "
                "one at a time in the background and keeps going when LoRA Studio is closed."
            )
        self.setVisible(offer)

    def start(self, queue: JobQueue, start_runner: StartRunner) -> str:
        """Start a runner unless one is alive; what happened, to tell the user."""
        pid = start_runner(queue)
        if pid is None:
            return "A runner is already working through the queue."
        self._asked_at = time.monotonic()
        return f"Started a runner in the background (process {pid}); queued jobs will start."
