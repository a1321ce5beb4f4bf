"""The Monitor page: live charts of the selected job, rebuilt from its events file and then followed.

The charts come from ``events.jsonl`` in the job folder, not from a pipe: a GUI opened
after the job started (or restarted while it runs) reads the whole file when the job is
selected and then follows what the worker appends. The file is read in slices of a few
milliseconds (``app.event_feed.FeedFollower``), so a run of 100,000 steps fills the charts
while the window keeps answering; the charts draw at most every 100 ms each, one per turn.

The page reads only while it is shown; when it is shown again it catches up from where it was.
The job's state comes from the session's ``QueueState``, the one every page observes, the moment it changes.
The charts it shows, and the line of the last system sample, are made in ``app.monitor_charts``.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QHideEvent, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStackedLayout,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.event_feed import Batch, FeedFollower
from app.monitor_charts import (
    PREFERENCE_CHARTS,
    WAITING_SAMPLE,
    gpu_charts,
    host_charts,
    preference_charts,
    system_line,
    training_charts,
)
from app.queue_state import TICK_MS
from app.session import Session
from backend.core.events import Progress, Telemetry
from backend.core.progress import duration_words, eta_seconds
from backend.core.run_time import run_time
from backend.jobs.job import FINISHED, Job
from widgets.chart_grid import ChartGrid
from widgets.live_chart import LiveChart, Series, SeriesStyle
from widgets.palette import negative_color

FOLLOW_MS = TICK_MS
WAITING_STEP = "Waiting for the first step…"
NOTHING_RECORDED = "This job recorded no values for this chart."


class MonitorPage(QWidget):
    """Loss, learning rate, gradient norm, speed, GPU, CPU and RAM charts of ``session.job_id``."""

    def __init__(self, session: Session, parent: QWidget | None = None, *, follow_ms: int = FOLLOW_MS) -> None:
        super().__init__(parent)
        self._session = session
        self._state = session.queue_state()
        self._job_id: int | None = None
        self.job: Job | None = None
        """The selected job as the queue state last said."""
        self._recent: list[Progress] = []
        self._telemetry: Telemetry | None = None
        self._gpus: dict[int, str] = {}
        self.follower = FeedFollower(lines=False, parent=self)
        self.follower.batch_ready.connect(self._on_batch)
        self._timer = QTimer(self, interval=follow_ms)
        self._timer.timeout.connect(self.poll)

        self._stack = QStackedLayout(self)
        self._stack.addWidget(self._build_empty_state())
        self._stack.addWidget(self._build_content())
        session.job_selected.connect(self.show_job)
        self._state.changed.connect(self._on_jobs)
        if session.job_id is not None:
            self.show_job(session.job_id)

    # -- building -----------------------------------------------------------------------------------

    def _build_empty_state(self) -> QWidget:
        empty = QWidget()
        text = QLabel(
            "<b>No job selected</b><br>Choose one on the Jobs page to see its loss, learning rate and GPU use here.",
            alignment=Qt.AlignmentFlag.AlignCenter,
            wordWrap=True,
            textFormat=Qt.TextFormat.RichText,
        )
        text.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        button = QPushButton("Go to Jobs")
        button.clicked.connect(self._go_to_jobs)
        layout = QVBoxLayout(empty)
        layout.addStretch(1)
        layout.addWidget(text)
        layout.addWidget(button, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(1)
        self.empty_text = text
        return empty

    def _go_to_jobs(self) -> None:
        self._session.show_page.emit("Jobs")

    def _build_content(self) -> QWidget:
        content = QWidget()
        self.title = QLabel(textFormat=Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.title.setFont(font)
        self.state = QLabel(textFormat=Qt.TextFormat.PlainText)
        state_font = self.state.font()
        state_font.setBold(True)
        self.state.setFont(state_font)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFixedWidth(self.fontMetrics().horizontalAdvance("merging: step 10,000 of 10,000") * 5 // 4)
        self.facts = QLabel(textFormat=Qt.TextFormat.PlainText)
        self.message = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.system = QLabel(textFormat=Qt.TextFormat.PlainText)
        self.system.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.system.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        top.setSpacing(self.fontMetrics().height())
        top.addWidget(self.title)
        top.addWidget(self.state)
        top.addStretch(1)
        top.addWidget(self.progress)

        self.charts: dict[str, LiveChart] = {}
        self.training = ChartGrid(columns=2)
        for key, chart in training_charts().items():
            self.charts[key] = self.training.add(chart)
        self.preference = ChartGrid(columns=2)  # shown once a job sends preference values (DPO, ORPO, KTO...)
        for key, chart in preference_charts().items():
            self.charts[key] = self.preference.add(chart)
        self.preference.setVisible(False)

        self.system_tab = QWidget()
        system = QVBoxLayout(self.system_tab)
        system.setContentsMargins(0, self.fontMetrics().height() // 2, 0, 0)
        self.no_gpu = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.no_gpu.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.gpu_grid = self._new_gpu_grid()
        self.host = ChartGrid(columns=2)
        for key, chart in host_charts().items():
            self.charts[key] = self.host.add(chart)
        system.addWidget(self.no_gpu)
        system.addWidget(self.gpu_grid, 2)
        system.addWidget(self.host, 1)

        training_tab = QWidget()
        training = QVBoxLayout(training_tab)
        training.setContentsMargins(0, self.fontMetrics().height() // 2, 0, 0)
        training.addWidget(self.training, 2)
        training.addWidget(self.preference, 1)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(training_tab, "Training")
        self.tabs.addTab(self.system_tab, "GPU and system")

        layout = QVBoxLayout(content)
        layout.addLayout(top)
        layout.addWidget(self.facts)
        layout.addWidget(self.message)
        layout.addWidget(self.system)
        layout.addWidget(self.tabs, 1)
        return content

    def _new_gpu_grid(self) -> ChartGrid:
        grid = ChartGrid(columns=2)
        for key, chart in gpu_charts().items():
            self.charts[key] = grid.add(chart)
        return grid

    # -- the selected job ---------------------------------------------------------------------------

    @Slot(int)
    def show_job(self, job_id: int) -> None:
        """Show this job's charts: rebuilt from its whole events file, then followed."""
        if job_id == self._job_id:
            return
        self._job_id = job_id
        self._recent, self._telemetry = [], None
        for chart in self.charts.values():
            chart.clear()
        if self._gpus:  # the next job may have other GPUs: fresh charts with no series
            self._replace_gpu_grid()
        if self._state.job(job_id) is None:  # queued a moment ago, or never looked at yet
            self._state.refresh()
        self._read_row()
        self._stack.setCurrentIndex(1)
        self.follower.follow(None)
        if self.isVisible():
            self._start_following()

    def job_id(self) -> int | None:
        return self._job_id

    def poll(self) -> None:
        """One tick: the queue state looks (the job's row follows through ``_on_jobs``), new events, the countdown."""
        self._state.tick()
        self.follower.poll()
        self._update_header()

    @Slot(list)
    def _on_jobs(self, _jobs: list[Job]) -> None:
        if self._job_id is not None:
            if self._timer.isActive():  # shown and following: the event that moved the job is charted with it
                self.follower.poll()
            self._read_row()

    def _start_following(self) -> None:
        if self.job is None:
            return
        feed = self.follower.feed
        if feed is None or feed.path != self.job.layout.events:
            self.follower.follow(self.job.layout.events)
        else:
            self.follower.poll()
        if not self._timer.isActive():
            self._timer.start()

    def _read_row(self) -> None:
        self.job = self._state.job(self._job_id) if self._job_id is not None else None
        if self.job is None and self._job_id is not None:
            self.follower.follow(None)
            self._timer.stop()
            self.empty_text.setText(
                f"<b>Job {self._job_id} is no longer in the queue</b><br>Choose another on the Jobs page."
            )
            self._stack.setCurrentIndex(0)
            self._job_id = None
            return
        self._update_header()

    @Slot(object)
    def _on_batch(self, batch: Batch) -> None:
        if batch.reset:
            for chart in self.charts.values():
                chart.clear()
            self.preference.setVisible(False)
        if not PREFERENCE_CHARTS.isdisjoint(batch.points):
            self.preference.setVisible(True)
        if batch.gpus:
            self._add_gpus(batch.gpus)
        for chart_key, series in batch.points.items():
            target = self.charts.get(chart_key)
            if target is not None:
                for key, (xs, ys) in series.items():
                    target.extend(key, xs, ys)
        if batch.recent or batch.reset:
            self._recent = batch.recent
        if batch.last_telemetry is not None:
            self._telemetry = batch.last_telemetry
        if not batch.more:
            self._update_header()

    def _add_gpus(self, gpus: dict[int, str]) -> None:
        new = {index: name for index, name in gpus.items() if index not in self._gpus}
        if not new:
            return
        self._gpus.update(new)
        several = len(self._gpus) > 1
        for index in sorted(new):
            key = f"gpu{index}"
            name = f"GPU {index}" if several else "GPU"
            self.charts["gpu_util"].add_series(Series(key, f"{name} use" if not several else name))
            self.charts["gpu_mem"].add_series(Series(key, f"{name} used" if several else "Used"))
            self.charts["gpu_mem"].add_series(
                Series(f"{key}_total", f"{name} total" if several else "Total", SeriesStyle.LIMIT)
            )
            self.charts["gpu_temp"].add_series(Series(key, name if several else "Temperature"))
            self.charts["gpu_power"].add_series(Series(key, name if several else "Power draw"))
        self._update_gpu_visibility()

    def _replace_gpu_grid(self) -> None:
        old = self.gpu_grid
        self.gpu_grid = self._new_gpu_grid()
        layout = self.system_tab.layout()
        assert layout is not None  # the tab is built with its layout
        layout.replaceWidget(old, self.gpu_grid)
        old.hide()
        old.deleteLater()
        self._gpus = {}
        self._update_gpu_visibility()

    def _update_gpu_visibility(self) -> None:
        has_gpu = bool(self._gpus)
        self.gpu_grid.setVisible(has_gpu)
        self.no_gpu.setVisible(not has_gpu)
        if self.job is not None and self.job.device and self.job.device.startswith("cuda") and not has_gpu:
            self.no_gpu.setText("The GPU charts appear with the job's first GPU measurement.")
        else:
            self.no_gpu.setText("This job reports no GPU: it runs on the CPU. Its CPU and memory use are below.")

    # -- header -------------------------------------------------------------------------------------

    def _update_header(self) -> None:
        job = self.job
        if job is None:
            return
        self.title.setText(f"Job {job.id} · {job.name}")
        self.state.setText(job.label)
        palette = self.palette()
        if job.state in ("failed", "interrupted"):
            palette.setColor(QPalette.ColorRole.WindowText, negative_color(palette))
        self.state.setPalette(palette)

        last = self._recent[-1] if self._recent else None
        step = last.step if last else job.step
        total = last.total_steps if last else job.total_steps
        if step is not None and total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            # A merge, an export or an evaluation counts within named stages, not steps (backend.core.progress).
            stage = last.stage if last is not None else None
            self.progress.setFormat(f"{stage} {step:,} of {total:,}" if stage else f"step {step:,} of {total:,}")
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("not started" if job.state == "queued" else "no steps yet")
        self.facts.setText(self._facts(job, last))

        trouble = job.state in ("failed", "interrupted") or (job.state == "cancelled" and job.message)
        text = job.message.strip().splitlines()[0] if job.message and trouble else ""
        if job.hint and trouble:
            text += f"\nWhat to do: {job.hint}"
        self.message.setText(text)
        self.message.setVisible(bool(text))
        last_seen = "Last measured: " if job.state in FINISHED else ""
        self.system.setText(last_seen + system_line(self._telemetry) if self._telemetry else "")
        self.system.setVisible(self._telemetry is not None)
        finished = job.state in FINISHED
        for key, chart in self.charts.items():
            waiting = (
                WAITING_STEP if key in ("loss", "lr", "grad_norm", "tokens", *PREFERENCE_CHARTS) else WAITING_SAMPLE
            )
            chart.set_empty_text(NOTHING_RECORDED if finished else waiting)
        self._update_gpu_visibility()

    def _facts(self, job: Job, last: Progress | None) -> str:
        facts = []
        if job.state == "running" and last is not None:
            eta = eta_seconds(self._recent)
            if eta is not None:
                facts.append(f"about {duration_words(eta)} left")
        if last is not None and last.tokens_per_second:
            facts.append(f"{last.tokens_per_second:,.0f} tokens/s")
        feed, running = self.follower.feed, job.state == "running"
        # The same run time as the status bar, the Jobs page and the terminal (backend.core.run_time).
        ran = run_time(feed.boundaries, time.time() if running else job.ended_at, running=running) if feed else None
        if ran is not None:
            facts.append(ran.words())
        if job.state == "queued":
            facts.append("waiting in the queue")
        if job.device:
            facts.append(job.device)
        text = " · ".join(facts)
        return text[:1].upper() + text[1:]

    # -- shown or not -------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._start_following()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._timer.stop()
        self.follower.stop()
