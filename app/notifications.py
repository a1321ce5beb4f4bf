"""The queue in the status bar, and a desktop notification when a job ends.

Training runs for hours in the background: when a job ends, the studio says so in the
system tray's notification area where there is one (``QSystemTrayIcon.showMessage``),
otherwise in the status bar. ``hook_up`` connects both to the Jobs page, which polls the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from PySide6.QtCore import QObject, Signal, SignalInstance, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle, QSystemTrayIcon

from backend.core.progress import ended_words
from backend.jobs.job import FINISHED, Job

STATUS_MESSAGE_MS = 20_000


def queue_summary(jobs: Sequence[Job], *, queue_paused: bool = False) -> str:
    """ "1 running · 2 queued · 1 paused", or "Queue empty"; led by "Queue paused" while the whole queue is paused
    (``JobQueue.set_paused``), so a person who paused it sees why the queued jobs wait."""
    running = sum(1 for job in jobs if job.state == "running")
    paused = sum(1 for job in jobs if job.paused)
    queued = sum(1 for job in jobs if job.state == "queued") - paused
    parts = [
        f"{count} {what}" for count, what in ((running, "running"), (queued, "queued"), (paused, "paused")) if count
    ]
    if queue_paused:
        return " · ".join(["Queue paused", *parts])
    return " · ".join(parts) if parts else "Queue empty"


_READY = {"train": "The adapter is ready.", "measure": "The measurement is ready.", "evaluate": "The report is ready.",
          "merge": "The merged model is ready.", "export": "The export is ready."}  # fmt: skip


def ended_text(job: Job) -> tuple[str, str]:
    """The notification's title and text for a job that has just ended, in its kind's words ("finished at step 10"
    for training, "finished" for a merge) and with its labelled run time (``backend.core.run_time``)."""
    title = f"“{job.name}” {job.state}"
    ran = job.run_time()
    took = f", {ran.words()}" if ran else ""
    if job.state == "succeeded":
        ready = _READY.get(job.kind, "")
        return title, f"Job {job.id} {ended_words(job.kind, 'finished', job.step)}{took}. {ready}".strip()
    reason = job.message.strip().splitlines()[0] if job.message else ""
    return title, f"Job {job.id} {job.state}{took}. {reason}".strip()


class StatusWindow(Protocol):
    """What the notifier needs of the main window."""

    def set_queue_status(self, text: str) -> None: ...

    def show_status_message(self, text: str, timeout_ms: int = 0) -> None: ...


class JobNotifier(QObject):
    """Watches the jobs the Jobs page reads; says when one ends and keeps the status bar's queue count."""

    notified = Signal(str, str)
    """Title and text of each notification, however it was shown."""

    def __init__(
        self,
        window: StatusWindow | None = None,
        icon: QIcon | None = None,
        parent: QObject | None = None,
        queue_paused: Callable[[], bool] = lambda: False,
    ) -> None:
        """``queue_paused`` says whether the whole queue is paused as last read (``QueueState.paused``)."""
        super().__init__(parent)
        self._window = window
        self._queue_paused = queue_paused
        self._icon = icon
        self._states: dict[int, str] | None = None  # None until the first look: jobs ended before it are old news
        self._tray: QSystemTrayIcon | None = None

    @Slot(list)
    def update(self, jobs: list[Job]) -> None:
        """Take the queue as just read: notify each job that ended since the last look."""
        if self._window is not None:
            self._window.set_queue_status(queue_summary(jobs, queue_paused=self._queue_paused()))
        before, self._states = self._states, {job.id: job.state for job in jobs}
        if before is None:
            return
        for job in jobs:
            was = before.get(job.id)
            if was is not None and was not in FINISHED and job.state in FINISHED:
                self.notify(*ended_text(job), failed=job.state in ("failed", "interrupted"))

    def notify(self, title: str, text: str, *, failed: bool = False) -> None:
        if QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
            tray = self._tray_icon()
            kind = QSystemTrayIcon.MessageIcon.Warning if failed else QSystemTrayIcon.MessageIcon.Information
            tray.showMessage(title, text, kind, STATUS_MESSAGE_MS)
        elif self._window is not None:
            self._window.show_status_message(f"{title}: {text}", STATUS_MESSAGE_MS)
        self.notified.emit(title, text)

    def _tray_icon(self) -> QSystemTrayIcon:
        if self._tray is None:
            icon = self._icon or QApplication.windowIcon()
            if icon.isNull():
                icon = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon)
            self._tray = QSystemTrayIcon(icon, self)
            self._tray.setToolTip("LoRA Studio")
        self._tray.show()
        return self._tray


class _JobsSource(Protocol):
    jobs_changed: SignalInstance
    status_message: SignalInstance

    def queue_paused(self) -> bool: ...


def hook_up(window: StatusWindow, jobs_page: _JobsSource) -> JobNotifier:
    """The status bar's queue count (and whether the queue is paused), the pages' action messages and end-of-job
    notifications.

    One line in the window's wiring: ``hook_up(window, jobs_page)``.
    """
    parent = jobs_page if isinstance(jobs_page, QObject) else None
    notifier = JobNotifier(window, parent=parent, queue_paused=jobs_page.queue_paused)
    jobs_page.jobs_changed.connect(notifier.update)
    jobs_page.status_message.connect(window.show_status_message)
    return notifier
