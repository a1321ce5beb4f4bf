"""The Jobs page: the queue as a table, what can be done with each job, and the selected job's log.

The page shows the session's ``QueueState`` (``app.queue_state``): the jobs, the queue's pause and
the runners, as every page sees them, re-shown the moment the state says it changed. The page's
timer asks the state to look every ``POLL_MS`` while its window is open, whichever page is shown,
for the status bar and the end-of-job notifications (``jobs_changed``), and stops when its window
closes. What an action can do is computed from the selected job as soon as it is selected, and a
message about a job's state goes when that state does.

Each action is a ``JobQueue`` method that answers with a sentence; the page shows it and
emits it as ``status_message``. Deleting asks first and says which files go.

The parts live apart: the table view and its column widths (``app.job_table``), the actions
and when each applies (``app.job_actions``), the delete question (``app.job_delete``), the runner
banner (``app.runner_watch``), and the selected job's title, summary and logs (``app.job_details``,
with the worker log tail in ``app.worker_log``). What stays here is one view over the polled
queue: the table's selection and the handlers that ask the queue, show its answer, read it again
and keep the selection.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt, Signal, Slot
from PySide6.QtGui import (
    QHideEvent,
    QPalette,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QLabel,
    QMenu,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.job_actions import JobActions
from app.job_delete import delete_question
from app.job_details import JobDetails
from app.job_model import JobTableModel
from app.job_table import job_table
from app.open_location import open_location
from app.queue_state import TICK_MS
from app.runner_watch import QueueBar, RunnerBanner, StartRunner
from app.session import Session
from backend.core.spec import JobSpec, SpecError
from backend.jobs.job import Job
from backend.jobs.queue import ActionResult, JobQueue
from backend.jobs.runner import ensure_runner
from widgets.palette import negative_color
from widgets.window_timer import WindowTimer

POLL_MS = TICK_MS


class JobsPage(QWidget):
    """Every job of the queue with its state, progress and log; cancel, pause, resume, retry, duplicate, delete."""

    jobs_changed = Signal(list)
    """The jobs as just read (``list[Job]``), whenever the queue changed."""
    status_message = Signal(str)
    """What an action did or why it could not, for the status bar."""

    def __init__(
        self,
        session: Session,
        parent: QWidget | None = None,
        *,
        start_runner: StartRunner | None = None,
        open_folder: Callable[[Path], None] | None = None,
        poll_ms: int = POLL_MS,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._state = session.queue_state()
        self._queue = self._state.queue()
        self._start_runner = start_runner or ensure_runner
        self._open_folder = open_folder or (lambda path: open_location(path, self))
        self._read_once = False
        self._message_about: tuple[int, str] | None = None
        """The job the shown message is about and its state then: the message goes when that state does."""
        self._menu: QMenu | None = None
        self.confirmation: QMessageBox | None = None
        """The open delete confirmation, if any."""

        self.model = JobTableModel(self)
        self.model.moveRequested.connect(self._move_to)
        self.table = job_table(self.model, self.fontMetrics())
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(self._show_charts)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)

        self.job_actions = JobActions(self)
        self._connect_actions()
        self.runner_banner = RunnerBanner()
        self.runner_banner.startRequested.connect(self.start_runner)
        self.runner_banner.resumeRequested.connect(lambda: self.set_queue_paused(False))
        self.queue_bar = QueueBar()
        self.pause_queue = self.queue_bar.button
        self.pause_queue.toggled.connect(self.set_queue_paused)
        self.message = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        self.details = JobDetails()
        self.details.folderRequested.connect(self._open_job_folder)
        self.title, self.summary = self.details.title, self.details.summary
        self.events_log, self.worker_log = self.details.events_log, self.details.worker_log
        self.no_selection = QLabel("Select a job to see its messages and log.", alignment=Qt.AlignmentFlag.AlignCenter)
        self.no_selection.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.details)
        lower_layout.addWidget(self.no_selection)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(lower)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([1, 1])

        layout = QVBoxLayout(self)
        layout.addWidget(self.queue_bar)
        layout.addWidget(self.runner_banner)
        layout.addLayout(self.job_actions.toolbar())
        layout.addWidget(self.message)
        layout.addWidget(self.splitter, 1)

        session.job_selected.connect(self._on_session_job)
        session.job_queued.connect(self._on_job_queued)
        self._state.changed.connect(self._show_jobs)
        self._show_details(None)
        self._update_actions()
        self.poller = WindowTimer(self, poll_ms, self.poll)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._follow_selected()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.details.stop()

    # -- reading the queue -------------------------------------------------------------------------

    def poll(self) -> None:
        """One tick: the state looks (and tells this page if anything moved); follow the selected job's log."""
        self._state.tick()
        if not self._read_once:
            self.refresh()
        self._follow_selected()

    def refresh(self) -> None:
        """Read every job again now."""
        self._state.refresh()

    @Slot(list)
    def _show_jobs(self, jobs: list[Job]) -> None:
        """Show the jobs as the state now has them, keeping the selection."""
        running = [job.id for job in jobs if job.state == "running"]
        etas = {job_id: self._state.eta(job_id) for job_id in running}
        stages = {job_id: self._state.stage(job_id) for job_id in running}
        selected = self.selected_job()
        selection = self.table.selectionModel()
        selection.blockSignals(True)  # a new order resets the rows: the selection is put back, not lost and found
        try:
            self.model.set_jobs(jobs, etas, stages)
            if selected is not None:
                self._select_row(self.model.row_of(selected.id))
            elif not self._read_once and self._session.job_id is not None:
                self._select_row(self.model.row_of(self._session.job_id))  # chosen before this page first read
        finally:
            selection.blockSignals(False)
        self.table.viewport().update()
        self._read_once = True
        self._check_runners(jobs)
        self._update_actions()
        self._show_details(self.selected_job())
        self._follow_selected()
        self._drop_stale_message(jobs)
        self.jobs_changed.emit(jobs)

    def selected_job(self) -> Job | None:
        index = self.table.selectionModel().currentIndex()
        if not index.isValid() or not self.table.selectionModel().isRowSelected(index.row(), QModelIndex()):
            return None
        return self.model.job(index.row())

    def select_job(self, job_id: int) -> bool:
        """Select the job with this id (reading the queue first if it is new); whether it is listed."""
        row = self.model.row_of(job_id)
        if row is None:
            self.refresh()
            row = self.model.row_of(job_id)
        self._select_row(row)
        return row is not None

    def queue(self) -> JobQueue:
        """The page's own connection to the queue (GUI thread only)."""
        return self._queue

    # -- actions -------------------------------------------------------------------------------------

    def _connect_actions(self) -> None:
        actions = self.job_actions
        actions.cancel.triggered.connect(self.cancel_selected)
        actions.pause.triggered.connect(lambda: self._act(self._queue.pause))
        actions.resume.triggered.connect(lambda: self._act(self._queue.resume))
        actions.retry.triggered.connect(lambda: self._act(self._queue.retry))
        actions.retry_checkpoint.triggered.connect(
            lambda: self._act(lambda job_id: self._queue.retry(job_id, from_checkpoint=True))
        )
        actions.duplicate.triggered.connect(self._duplicate)
        actions.edit_copy.triggered.connect(self._edit_copy)
        actions.delete.triggered.connect(self.delete_selected)
        actions.open_folder.triggered.connect(self._open_job_folder)
        actions.move_up.triggered.connect(lambda: self._move_by(-1))
        actions.move_down.triggered.connect(lambda: self._move_by(1))
        actions.charts.triggered.connect(self._show_charts)

    def _update_actions(self) -> None:
        self.job_actions.update(self.selected_job(), self.model.jobs())

    def _act(self, do: Callable[[int], ActionResult]) -> ActionResult | None:
        job = self.selected_job()
        if job is None:
            return None
        result = do(job.id)
        self.show_message(result.message, ok=result.ok, about=result.job)
        self.refresh()
        return result

    def cancel_selected(self) -> ActionResult | None:
        return self._act(self._queue.cancel)

    def _duplicate(self) -> None:
        job = self.selected_job()
        if job is None:
            return
        added = self._queue.duplicate(job.id)
        problems = [check.message for check in added.checks if check.level in ("error", "warning")]
        if added.job is None:
            self.show_message(f"Job {job.id} could not be copied: " + " ".join(problems), ok=False)
            self.refresh()
            return
        text = f"Job {added.job.id} is queued: a copy of job {job.id}."
        self.show_message(" ".join([text, *problems]), ok=True, about=added.job)
        self._start_runner(self._queue)  # queued means it will run, unless the queue is paused
        self.refresh()
        self.select_job(added.job.id)

    def _edit_copy(self) -> None:
        job = self.selected_job()
        if job is None:
            return
        try:
            spec = JobSpec.load(job.layout.spec)
        except SpecError as exc:
            self.show_message(f"Job {job.id}'s settings cannot be read: {exc}", ok=False)
            return
        spec.kind = "train"
        spec.name = f"{spec.name}-copy"
        self._session.request_edit(spec)

    def _move_by(self, delta: int) -> None:
        job = self.selected_job()
        queued = [j.id for j in self.model.jobs() if j.state == "queued"]
        if job is None or job.id not in queued:
            return
        self._move_to(job.id, queued.index(job.id) + 1 + delta)

    @Slot(int, int)
    def _move_to(self, job_id: int, place: int) -> None:
        result = self._queue.move(job_id, place)
        self.show_message(result.message, ok=result.ok)
        self.refresh()
        self._select_row(self.model.row_of(job_id))

    def _open_job_folder(self, *_args: object) -> None:
        job = self.selected_job()
        if job is not None and job.folder.is_dir():
            self._open_folder(job.folder)

    def delete_selected(self) -> QMessageBox | None:
        """Ask whether to delete the selected job and its folder; the answer does it. Returns the question."""
        selected = self.selected_job()
        job = self._queue.get(selected.id) if selected is not None else None  # as it is now, not at the last poll
        if job is None or job.state == "running":
            if job is not None:
                self.show_message(f"Job {job.id} is running; cancel it before deleting it.", ok=False)
            return None
        box, delete = delete_question(job, self)
        job_id = job.id

        def answered(_result: int) -> None:
            self.confirmation = None
            if box.clickedButton() is delete:
                result = self._queue.delete(job_id)
                self.show_message(result.message, ok=result.ok)
                self.refresh()
            box.deleteLater()

        box.finished.connect(answered)
        self.confirmation = box
        box.open()
        return box

    @Slot()
    def start_runner(self) -> None:
        """Start a background runner for the queue unless one is alive."""
        self.show_message(self.runner_banner.start(self._queue, self._start_runner), ok=True)
        self._check_runners(self.model.jobs())

    @Slot(bool)
    def set_queue_paused(self, paused: bool) -> None:
        """Pause the whole queue (no job starts) or resume it, starting a runner if none works through it."""
        if paused == self._state.paused():
            return
        result = self._queue.set_paused(paused)
        if not paused:
            self._start_runner(self._queue)
        self.show_message(result.message, ok=result.ok)
        self.refresh()

    def show_message(self, text: str, *, ok: bool = True, about: Job | None = None) -> None:
        """Show what an action did (in red when it was refused) and pass it to the status bar.

        A message ``about`` a job describes its state at that moment, and goes when that state does.
        """
        self.message.setText(text)
        palette = self.palette()
        if not ok:
            palette.setColor(QPalette.ColorRole.WindowText, negative_color(palette))
        self.message.setPalette(palette)
        self.message.show()
        self._message_about = (about.id, about.label) if about is not None else None
        self.status_message.emit(text)

    def _drop_stale_message(self, jobs: list[Job]) -> None:
        if self._message_about is None:
            return
        job_id, label = self._message_about
        now = next((job.label for job in jobs if job.id == job_id), None)
        if now != label:
            self.message.hide()
            self._message_about = None

    # -- runners -------------------------------------------------------------------------------------

    def _check_runners(self, jobs: list[Job]) -> None:
        self.runner_banner.check(jobs, alive=self._state.runner_alive(), paused=self._state.paused())
        self.queue_bar.show_state(paused=self._state.paused(), alive=self._state.runner_alive())

    def runner_alive(self) -> bool:
        return self._state.runner_alive()

    def queue_paused(self) -> bool:
        """Whether the whole queue is paused, as last read: the status bar says so beside the count."""
        return self._state.paused()

    # -- the selected job ---------------------------------------------------------------------------

    def _select_row(self, row: int | None) -> None:
        selection = self.table.selectionModel()
        if row is None:
            selection.clearSelection()
            return
        index = self.model.index(row, 0)
        selection.setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )

    @Slot()
    def _on_selection(self) -> None:
        """A row was selected (a click sets the current row first and selects it after: the selection counts)."""
        job = self.selected_job()
        self._update_actions()
        self._show_details(job)
        if job is not None and job.id != self._session.job_id:
            self._session.job_selected.emit(job.id)

    @Slot(int)
    def _on_session_job(self, job_id: int) -> None:
        job = self.selected_job()
        if job is None or job.id != job_id:
            self.select_job(job_id)

    @Slot(int)
    def _on_job_queued(self, job_id: int) -> None:
        self.refresh()
        self.select_job(job_id)

    def _show_details(self, job: Job | None) -> None:
        self.details.setVisible(job is not None)
        self.no_selection.setVisible(job is None and self.model.rowCount() > 0)
        self.details.show_job(job)

    def _follow_selected(self) -> None:
        job = self.selected_job()
        if job is None or not self.isVisible():  # the log is read while someone can see it
            return
        self.details.read_logs(job)

    def _context_menu(self, position: QPoint) -> None:
        index = self.table.indexAt(position)
        if not index.isValid():
            return
        self._select_row(index.row())
        menu = self.job_actions.context_menu(self)
        self._menu = menu
        menu.popup(self.table.viewport().mapToGlobal(position))

    def _show_charts(self, *_args: object) -> None:
        job = self.selected_job()
        if job is not None:
            if job.id != self._session.job_id:
                self._session.job_selected.emit(job.id)
            self._session.show_page.emit("Monitor")
