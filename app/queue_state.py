"""The queue as every page sees it: one model that tells its pages the moment a job, the queue or a runner changes.

The queue is changed by other processes (runners, workers, ``lora-studio queue``). A file-system
watcher on the queue's database (its ``-wal`` file takes every write) and on the running jobs'
``events.jsonl`` says when one of them was written, within a millisecond where the system sends
notifications; the pages' timers look every ``TICK_MS`` as well, for file systems that send none.
What a look reads is chosen to be cheap:

- the queue database's change counter (``JobQueue.changes``), one indexed read: the jobs are read
  again only when it moved;
- each running job's ``events.jsonl``, followed from its end: a progress event moves the job's
  step (and a merge's or export's stage), and its ``done`` event ends the job as shown at once,
  with the outcome the runner will record (``backend.jobs.settle.conclude``), instead of when the
  worker has exited and the runner has noticed;
- whether a runner is alive, when the counter moved (a runner's start and claims move it) and once a
  second (one that died moves nothing); orphans settled every five seconds while a job runs.

One look costs tens of microseconds; bench/results/ui_latency.md has the measured cost and the
time from a job's event to a page showing it. The looks are driven by the pages' own window timers
(``tick``), and a written file counts only while they tick, so nothing runs while no window is open;
ticks closer together than ``MIN_GAP_S`` are one look, however many pages ask.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, Signal, Slot

from backend.core.events import Done, Event, Progress
from backend.core.progress import eta_seconds
from backend.core.tail import EventTail
from backend.jobs.job import Job
from backend.jobs.outcome import AttemptEvents
from backend.jobs.process import ExitInfo
from backend.jobs.queue import JobQueue
from backend.jobs.settle import conclude, settle_orphans

TICK_MS = 50
"""How often a page looks while its window is open, whether or not a file was seen written."""
MIN_GAP_S = 0.01
_WATCHED_S = 1.0
"""A written file makes a look only this soon after a page's timer ticked: while a window is open."""
_RUNNERS_EVERY_S = 1.0
_SETTLE_EVERY_S = 5.0
_TAIL_BYTES = 32 << 10
"""A running job is followed from this far before the end of its file: its last steps, never the whole run."""
_RECENT = 20
"""Progress events an ETA is taken over."""


def _live_line(line: bytes) -> bool:
    return b'"progress"' in line or b'"done"' in line or b'"error"' in line


@dataclass
class _Live:
    """A running attempt followed through its events file."""

    attempt: int
    tail: EventTail
    seen: AttemptEvents = field(default_factory=AttemptEvents)
    recent: deque[Progress] = field(default_factory=lambda: deque(maxlen=_RECENT))
    ended: Job | None = None
    """The job as its ``done`` event says it ended, until the runner records it."""


class QueueState(QObject):
    """The jobs, the queue's pause and the runners, as last looked at; ``changed`` whenever any of them moved."""

    changed = Signal(list)
    """The jobs as now shown (``list[Job]``): running first, then queued in order, then the rest."""

    def __init__(self, queue_path: Path, jobs_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue = JobQueue(queue_path, jobs_dir)
        self._seen_changes: int | None = None
        self._read: list[Job] = []
        self._shown: list[Job] = []
        self._live: dict[int, _Live] = {}
        self._paused = False
        self._runner_alive = False
        self._looked_at = 0.0
        self._ticked_at = 0.0
        self._runners_at = 0.0
        self._settled_at = time.monotonic()
        self._database = {str(queue_path), f"{queue_path}-wal"}
        self._watcher = QFileSystemWatcher(self)
        self._watcher.fileChanged.connect(self._written)

    # -- what pages read ------------------------------------------------------------------------

    def queue(self) -> JobQueue:
        """The state's own connection, for actions (GUI thread only); call ``refresh`` after one."""
        return self._queue

    def jobs(self) -> list[Job]:
        return list(self._shown)

    def job(self, job_id: int) -> Job | None:
        return next((job for job in self._shown if job.id == job_id), None)

    def paused(self) -> bool:
        """Whether the whole queue is paused (``JobQueue.set_paused``)."""
        return self._paused

    def runner_alive(self) -> bool:
        return self._runner_alive

    def eta(self, job_id: int) -> float | None:
        """Seconds a running job has left, from its last steps; None before it can be told."""
        live = self._live.get(job_id)
        return eta_seconds(list(live.recent)) if live is not None and live.ended is None else None

    def stage(self, job_id: int) -> str | None:
        """A running merge's or export's stage ("merging", "writing"…), from its last progress event."""
        live = self._live.get(job_id)
        return live.seen.stage if live is not None and live.ended is None else None

    # -- looking ------------------------------------------------------------------------------------

    def tick(self) -> None:
        """One look, unless another page looked just now."""
        now = time.monotonic()
        self._ticked_at = now
        if now - self._looked_at >= MIN_GAP_S:
            self._look(now, force=False)

    @Slot(str)
    def _written(self, _path: str) -> None:
        """Look at once: a write skipped here could be a job's last event, seen only at the next tick."""
        now = time.monotonic()
        if now - self._ticked_at < _WATCHED_S:
            self._look(now, force=False)

    def refresh(self) -> None:
        """Read everything again now (after an action) and tell the pages."""
        self._look(time.monotonic(), force=True)

    def _look(self, now: float, *, force: bool) -> None:
        self._looked_at = now
        moved = force
        if now - self._settled_at >= _SETTLE_EVERY_S:
            self._settled_at = now
            if any(job.state == "running" for job in self._read):
                settle_orphans(self._queue)  # moves the counter when it settles one: read below
        changes = self._queue.changes()
        if force or changes != self._seen_changes:
            self._seen_changes = changes
            self._read = self._queue.jobs()
            self._paused = self._queue.paused()
            moved = True
        if moved or now - self._runners_at >= _RUNNERS_EVERY_S:  # a runner's start or claim moves the counter
            self._runners_at = now
            alive = any(runner.alive for runner in self._queue.runners())
            moved |= alive != self._runner_alive
            self._runner_alive = alive
        moved |= self._follow_running()
        self._watch_files()
        if moved:
            self._shown = [self._as_shown(job) for job in self._read]
            self.changed.emit(list(self._shown))

    def _follow_running(self) -> bool:
        """Read what running jobs' workers appended; whether a step, a stage or an end was new."""
        running = {job.id: job for job in self._read if job.state == "running"}
        for job_id in [job_id for job_id, live in self._live.items() if job_id not in running]:
            del self._live[job_id]
        moved = False
        for job in running.values():
            live = self._live.get(job.id)
            if live is None or live.attempt != job.attempt:
                live = self._live[job.id] = _Live(job.attempt, _tail_near_end(job))
            if live.ended is not None:
                continue
            before = (live.seen.step, live.seen.total_steps, live.seen.stage)
            events = live.tail.read()
            if not events:
                continue
            live.seen.add(events)
            live.recent.extend(event for event in events if isinstance(event, Progress))
            if _ended(events):
                live.ended = _as_ended(job, live.seen)
                moved = True
            moved |= (live.seen.step, live.seen.total_steps, live.seen.stage) != before
        return moved

    def _watch_files(self) -> None:
        """Watch the database and the running jobs' event files; a replaced file is watched again."""
        wanted = self._database | {str(job.layout.events) for job in self._read if job.state == "running"}
        watched = set(self._watcher.files())
        if gone := watched - wanted:
            self._watcher.removePaths(sorted(gone))
        if new := [path for path in sorted(wanted - watched) if Path(path).exists()]:
            self._watcher.addPaths(new)

    def _as_shown(self, job: Job) -> Job:
        live = self._live.get(job.id)
        if live is None or job.state != "running":
            return job
        if live.ended is not None:
            return live.ended
        if live.seen.step is None or (live.seen.step, live.seen.total_steps) == (job.step, job.total_steps):
            return job
        return dataclasses.replace(job, step=live.seen.step, total_steps=live.seen.total_steps)


def _tail_near_end(job: Job) -> EventTail:
    try:
        size = job.layout.events.stat().st_size
    except OSError:
        size = 0
    start = max(job.events_offset, size - _TAIL_BYTES)  # a line cut at the start is skipped as garbled
    return EventTail(job.layout.events, start, wanted=_live_line)


def _ended(events: list[Event]) -> bool:
    return any(isinstance(event, Done) for event in events)


def _as_ended(job: Job, seen: AttemptEvents) -> Job:
    """The job as it will be recorded: the worker has said how it ended, but has not exited yet."""
    outcome = conclude(job, seen, ExitInfo(code=None))
    held = outcome.state == "queued"  # a pause that took effect
    return dataclasses.replace(
        job,
        state=outcome.state,
        held=held,
        resume=held,
        request=None,
        request_at=None,
        step=outcome.step if outcome.step is not None else job.step,
        ended_at=None if held else time.time(),
        message=outcome.message,
        hint=outcome.hint,
        error_type=outcome.error_type,
        adapter_path=outcome.adapter_path,
    )
