"""The queue as a table: one row per job, in the order the queue lists them, queued rows draggable.

Rows are ``backend.jobs.job.Job`` records, re-read whenever the queue's change counter moves.
A drop does not move rows here: it asks for the move (``moveRequested``) and the queue, the
one source of truth, says where the job went on the next read.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence

from PySide6.QtCore import (
    QAbstractTableModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    Qt,
    Signal,
)
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QWidget,
)

from backend.core.progress import STEP_KINDS, duration_words
from backend.jobs.job import Job
from widgets.palette import negative_color

MIME_TYPE = "application/x-lora-studio-job-id"
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1
JOB_ROLE = Qt.ItemDataRole.UserRole + 2

COLUMNS = ("ID", "Name", "Kind", "State", "Progress", "Time left", "Created", "Ended", "Message")
ID, NAME, KIND, STATE, PROGRESS, ETA, CREATED, ENDED, MESSAGE = range(len(COLUMNS))

_STATE_ICONS = {
    "running": QStyle.StandardPixmap.SP_MediaPlay,
    "pausing": QStyle.StandardPixmap.SP_MediaPause,
    "cancelling": QStyle.StandardPixmap.SP_BrowserStop,
    "paused": QStyle.StandardPixmap.SP_MediaPause,
    "succeeded": QStyle.StandardPixmap.SP_DialogApplyButton,
    "failed": QStyle.StandardPixmap.SP_MessageBoxCritical,
    "cancelled": QStyle.StandardPixmap.SP_DialogCancelButton,
    "interrupted": QStyle.StandardPixmap.SP_MessageBoxWarning,
}
_TROUBLE = frozenset({"failed", "interrupted"})


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def time_text(stamp: float | None, now: float | None = None) -> str:
    """ "14:02" today, "Yesterday 09:15", "23 Nov 14:02", "23 Nov 2025" in another year."""
    if stamp is None:
        return ""
    when = datetime.datetime.fromtimestamp(stamp)
    today = datetime.datetime.fromtimestamp(now if now is not None else time.time()).date()
    if when.date() == today:
        return when.strftime("%H:%M")
    if when.date() == today - datetime.timedelta(days=1):
        return when.strftime("Yesterday %H:%M")
    if when.year == today.year:
        return f"{when.day} {when.strftime('%b %H:%M')}"
    return f"{when.day} {when.strftime('%b %Y')}"


def full_time(stamp: float | None) -> str:
    return "" if stamp is None else datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def progress_text(job: Job, stage: str | None) -> str:
    """The Progress column in the job's kind's words: "12 / 30" steps for training, the stage a merge or an
    export is in ("Merging", "Writing") while it runs: their counts restart with each stage and say nothing after."""
    if job.kind not in STEP_KINDS:
        return stage.capitalize() if stage and job.state == "running" else ""
    if job.step is None or not job.total_steps:
        return ""
    return f"{job.step:,} / {job.total_steps:,}"


def state_text(job: Job, place: int | None) -> str:
    """The state as the table shows it: the queue's label, and a queued job's place in line."""
    if job.label == "queued" and place is not None:
        return "queued, runs next" if place == 1 else f"queued, {ordinal(place)}"
    return job.label


def message_text(job: Job) -> str:
    """The first line of how a job ended or what it is waiting for."""
    if job.state == "running" and job.request is not None:
        return "Stopping after the current step, with a checkpoint."
    if job.message:
        return job.message.strip().splitlines()[0]
    if job.state == "succeeded" and job.adapter_path:
        return f"{_OUTPUT_NAMES.get(job.kind, 'Output')} saved in {job.adapter_path}"
    return ""


_OUTPUT_NAMES = {"train": "Adapter", "evaluate": "Report", "merge": "Merged model", "export": "Export"}
"""What a succeeded job's output (the queue's ``adapter_path``) is, by kind."""


def message_tooltip(job: Job) -> str:
    parts = []
    if job.message:
        parts.append(job.message.strip())
    if job.hint:
        parts.append(f"What to do: {job.hint}")
    if job.cause:
        parts.append(f"Cause: {job.cause}")
    return "\n\n".join(parts)


class JobTableModel(QAbstractTableModel):
    """Jobs as ``JobQueue.jobs()`` orders them; ``set_jobs`` updates in place when the order holds."""

    moveRequested = Signal(int, int)
    """Job id, new place among the queued jobs (1 runs next)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._places: dict[int, int] = {}
        self._etas: dict[int, float | None] = {}
        self._stages: dict[int, str | None] = {}

    # -- data in --------------------------------------------------------------------------------

    def set_jobs(
        self,
        jobs: Sequence[Job],
        etas: dict[int, float | None] | None = None,
        stages: dict[int, str | None] | None = None,
    ) -> None:
        """``etas`` and ``stages`` are the running jobs' time left and a merge's or export's stage (``QueueState``)."""
        jobs = list(jobs)
        queued = [job.id for job in jobs if job.state == "queued"]
        places = {job_id: place for place, job_id in enumerate(queued, start=1)}
        etas, stages = etas or {}, stages or {}
        if [job.id for job in jobs] == [job.id for job in self._jobs]:
            changed = [
                row
                for row, (old, new) in enumerate(zip(self._jobs, jobs, strict=True))
                if old != new
                or self._places.get(old.id) != places.get(new.id)
                or self._etas.get(old.id) != etas.get(new.id)
                or self._stages.get(old.id) != stages.get(new.id)
            ]
            self._jobs, self._places, self._etas, self._stages = jobs, places, etas, stages
            for row in changed:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self._jobs, self._places, self._etas, self._stages = jobs, places, etas, stages
        self.endResetModel()

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def job(self, row: int) -> Job | None:
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    def row_of(self, job_id: int) -> int | None:
        return next((row for row, job in enumerate(self._jobs) if job.id == job_id), None)

    # -- the table ------------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._jobs)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        job = self.job(index.row())
        if job is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(job, column)
        if role == JOB_ROLE:
            return job
        if role == PROGRESS_ROLE and column == PROGRESS:
            return job.progress if job.kind in STEP_KINDS or job.state == "running" else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(job, column)
        if role == Qt.ItemDataRole.DecorationRole and column == STATE and job.label in _STATE_ICONS:
            return QApplication.style().standardIcon(_STATE_ICONS[job.label])
        if role == Qt.ItemDataRole.ForegroundRole and column in (STATE, MESSAGE) and job.state in _TROUBLE:
            return negative_color(QApplication.palette())
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (ID, ETA):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, job: Job, column: int) -> str:
        if column == ID:
            return str(job.id)
        if column == NAME:
            return job.name
        if column == KIND:
            return job.kind
        if column == STATE:
            return state_text(job, self._places.get(job.id))
        if column == PROGRESS:
            return progress_text(job, self._stages.get(job.id))
        if column == ETA:
            eta = self._etas.get(job.id)
            return "" if eta is None or job.state != "running" else duration_words(eta)
        if column == CREATED:
            return time_text(job.created_at)
        if column == ENDED:
            return time_text(job.ended_at)
        if column == MESSAGE:
            return message_text(job)
        return ""

    def _tooltip(self, job: Job, column: int) -> str | None:
        if column == CREATED:
            return f"Queued {full_time(job.created_at)}"
        if column == ENDED and job.ended_at is not None:
            ran = job.run_time()  # the same labelled run time as the Monitor and the status bar
            return f"Ended {full_time(job.ended_at)}" + (f"; {ran.words()}" if ran else "")
        if column == MESSAGE:
            return message_tooltip(job) or None
        if column == NAME:
            return str(job.folder)
        if column == STATE and job.state == "queued":
            again = " It continues from its newest checkpoint." if job.resume else ""
            return f"Drag a queued job up or down to change when it runs.{again}"
        return None

    # -- drag and drop: queued jobs change place ---------------------------------------------

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        job = self.job(index.row())
        if job is not None and job.state == "queued":
            flags |= Qt.ItemFlag.ItemIsDragEnabled | Qt.ItemFlag.ItemIsDropEnabled
        return flags

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [MIME_TYPE]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        data = QMimeData()
        rows = sorted({index.row() for index in indexes if index.isValid()})
        job = self.job(rows[0]) if rows else None
        if job is not None:
            data.setData(MIME_TYPE, QByteArray(str(job.id).encode()))
        return data

    def canDropMimeData(
        self,
        data: QMimeData,
        action: Qt.DropAction,
        row: int,
        column: int,
        parent: QModelIndex | QPersistentModelIndex,
    ) -> bool:
        return self._drop_place(data, row, parent) is not None

    def dropMimeData(
        self,
        data: QMimeData,
        action: Qt.DropAction,
        row: int,
        column: int,
        parent: QModelIndex | QPersistentModelIndex,
    ) -> bool:
        found = self._drop_place(data, row, parent)
        if found is None or action != Qt.DropAction.MoveAction:
            return False
        job_id, place = found
        if place != self._places.get(job_id):
            self.moveRequested.emit(job_id, place)
        return False  # the queue moves the job; the rows follow on the next read

    def _drop_place(
        self, data: QMimeData, row: int, parent: QModelIndex | QPersistentModelIndex
    ) -> tuple[int, int] | None:
        """The dragged job and the place it would take, or None where it cannot go."""
        if not data.hasFormat(MIME_TYPE):
            return None
        try:
            job_id = int(bytes(data.data(MIME_TYPE).data()).decode())
        except ValueError:
            return None
        if job_id not in self._places:
            return None
        if row < 0 and parent.isValid():  # dropped on a job: take its place
            target_job = self.job(parent.row())
            return (job_id, self._places[target_job.id]) if target_job and target_job.id in self._places else None
        target = row if row >= 0 else len(self._jobs)
        queued_rows = [r for r, job in enumerate(self._jobs) if job.state == "queued"]
        if not queued_rows or not queued_rows[0] <= target <= queued_rows[-1] + 1:
            return None
        before = sum(1 for r in queued_rows if r < target and self._jobs[r].id != job_id)
        return job_id, before + 1


class ProgressDelegate(QStyledItemDelegate):
    """Draws the progress column as a bar with its text ("step / total", or a merge's stage) on it."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        fraction = index.data(PROGRESS_ROLE)
        if fraction is None:
            super().paint(painter, option, index)
            return
        # The row's selection and alternate colours first, then the bar inside a small margin.
        background = QStyleOptionViewItem(option)
        self.initStyleOption(background, index)
        background.text = ""
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, background, painter, option.widget)
        bar = QStyleOptionProgressBar()
        margin = max(2, option.rect.height() // 8)
        bar.rect = QRect(option.rect.adjusted(margin, margin, -margin, -margin))
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = round(fraction * 1000)
        bar.text = index.data(Qt.ItemDataRole.DisplayRole) or f"{fraction:.0%}"
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        bar.palette = option.palette
        bar.fontMetrics = option.fontMetrics
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)
