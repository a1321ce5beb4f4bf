"""The selected job on the Jobs page: what it is, what it said, its events and its worker's log.

``JobDetails`` shows one job's title and summary (its message, what to do, when it was queued,
started and ended, and a link to its folder), and below them two logs in tabs: the job's events,
followed from its ``events.jsonl`` by a ``FeedFollower``, and the worker's log tail. The page
says which job to show and when to read the logs again (only while someone can see them).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

from app.event_feed import Batch, FeedFollower
from app.job_model import full_time, message_text, state_text
from app.worker_log import WorkerLogTail
from backend.jobs.job import Job
from widgets.log_view import LogView


class JobDetails(QWidget):
    """Title, summary and logs of one job."""

    folderRequested = Signal()  # the folder link in the summary was clicked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(textFormat=Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.summary = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.summary.linkActivated.connect(self.folderRequested)
        self.events_log = LogView("The job's stages, warnings and checkpoints appear here as it runs.")
        self.worker_log = LogView("The worker has written nothing to its log yet.")
        self.worker_tail = WorkerLogTail(self.worker_log)
        self.worker_log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log_tabs = QTabWidget()
        self.log_tabs.setDocumentMode(True)
        self.log_tabs.addTab(self.events_log, "Events")
        self.log_tabs.addTab(self.worker_log, "Worker log")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, self.fontMetrics().height() // 2, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addWidget(self.log_tabs, 1)

        self.follower = FeedFollower(points=False, parent=self)
        self.follower.batch_ready.connect(self._on_batch)

    def show_job(self, job: Job | None) -> None:
        """Show ``job`` (``None``: none), following its events from the start when it is another job."""
        feed = self.follower.feed
        path = job.layout.events if job is not None else None
        if (feed.path if feed else None) != path:
            self.events_log.clear()
            self.worker_tail.clear()
            self.follower.follow(path)
        if job is None:
            return
        where = f" on {job.device}" if job.device else ""
        self.title.setText(f"Job {job.id} · {job.name} · {job.kind} · {state_text(job, None)}{where}")
        self.summary.setText(summary_html(job))
        self.worker_tail.refresh(job.layout.log)

    def read_logs(self, job: Job) -> None:
        """Read what ``job`` has added to its events, and to its worker log while it runs."""
        self.follower.poll()
        if job.state == "running":
            self.worker_tail.refresh(job.layout.log)

    def stop(self) -> None:
        """Stop following the events (nobody can see them)."""
        self.follower.stop()

    @Slot(object)
    def _on_batch(self, batch: Batch) -> None:
        if batch.reset:
            self.events_log.clear()
        if batch.error:
            batch.lines.append(batch.error)
        if batch.lines:
            self.events_log.append_lines("\n".join(batch.lines))


def summary_html(job: Job) -> str:
    """The job's message, what to do, its times, attempts and cause, and a link to its folder."""
    parts = []
    message = job.message.strip() if job.message else message_text(job)
    if message:
        parts.append(html.escape(message).replace("\n", "<br>"))
    if job.hint:
        parts.append(f"<b>What to do:</b> {html.escape(job.hint)}")
    facts = [f"queued {full_time(job.created_at)}"]
    if job.started_at:
        facts.append(f"started {full_time(job.started_at)}")
    if job.ended_at:
        facts.append(f"ended {full_time(job.ended_at)}")
        if (ran := job.run_time()) is not None:  # read once it ended; a running job's time is the Monitor's
            facts.append(ran.words())
    if job.attempt > 1:
        facts.append(f"{job.attempt} attempts")
    if job.cause:
        facts.append(f"cause: {html.escape(job.cause)}")
    parts.append(" · ".join(facts).capitalize())
    parts.append(f'Folder: <a href="folder">{html.escape(str(job.folder))}</a>')
    return "<br>".join(parts)
