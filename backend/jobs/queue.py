"""The job queue: what the GUI and ``lora-studio queue`` call.

Jobs live in ``data_home()/queue.sqlite3`` (see ``backend.jobs.db``); each has
its folder under ``jobs_dir()``. Reading is free of locks; every change is one
short transaction that also bumps a change counter, so a GUI polls
``changes()`` and re-reads only when it moved. A person's actions return an
``ActionResult`` with a sentence to show, never an exception: a job that cannot
be paused is a message, not a crash.

The runner side (claiming, recording progress, finishing, the per-device runner
lock) is here too, so every write to the tables is made by this one module. That
is why it is over 400 lines: the rules of a state change (which states an action
applies to, the change counter, the attempt guard on a finish) are read in one
place; splitting the runner's side off would put the writes in two.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core import paths
from backend.core.layout import JobLayout
from backend.core.spec import SpecError
from backend.core.stop import ask_to_stop
from backend.core.task_specs import AnySpec, load_spec
from backend.jobs.checks import Check
from backend.jobs.db import connect, transaction
from backend.jobs.job import FINISHED, REQUEUEABLE, Job, Request
from backend.jobs.outcome import Outcome
from backend.jobs.preflight import blocking, preflight
from backend.jobs.process import ProcessId

ATTEMPTS_DIR = "attempts"
"""Inside a job folder: the events and log of earlier runs, kept when a job is retried from scratch."""


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    job: Job | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "job": self.job.to_dict() if self.job else None}


@dataclass(frozen=True)
class Added:
    """The queued job, or None when a check blocked it; the checks either way."""

    job: Job | None
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job.to_dict() if self.job else None, "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True)
class RunnerInfo:
    device: str
    pid: int
    started_at: float
    seen_at: float
    alive: bool


def default_path() -> Path:
    return paths.data_home() / "queue.sqlite3"


class JobQueue:
    """One connection to the queue; use one per thread (SQLite connections are not shared)."""

    def __init__(self, path: Path | None = None, jobs_dir: Path | None = None) -> None:
        self.path = path or default_path()
        self.jobs_dir = jobs_dir or paths.jobs_dir()
        self._db = connect(self.path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JobQueue:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------

    def changes(self) -> int:
        """A counter that moves on every change to any job: poll it, re-read when it moved."""
        changes: int = self._db.execute("SELECT value FROM meta WHERE key = 'changes'").fetchone()[0]
        return changes

    def paused(self) -> bool:
        """Whether the whole queue is paused: runners start no job (one already running goes on)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'paused'").fetchone()
        return bool(row and row[0])

    def get(self, job_id: int) -> Job | None:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self, *states: str, device: str | None = None) -> list[Job]:
        """Running first, then queued in the order they will run, then the rest, newest first."""
        where: list[str] = []
        args: list[str] = []
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args += states
        if device is not None:
            where.append("device = ?")
            args.append(device)
        rows = self._db.execute(
            f"SELECT * FROM jobs {'WHERE ' + ' AND '.join(where) if where else ''} "  # noqa: S608 - placeholders only
            "ORDER BY CASE state WHEN 'running' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END, "
            "CASE state WHEN 'queued' THEN position END, id DESC",
            args,
        ).fetchall()
        return [_job(row) for row in rows]

    def runners(self) -> list[RunnerInfo]:
        rows = self._db.execute("SELECT * FROM runners ORDER BY device").fetchall()
        return [
            RunnerInfo(
                row["device"],
                row["pid"],
                row["started_at"],
                row["seen_at"],
                ProcessId(row["pid"], row["pid_created"]).alive(),
            )
            for row in rows
        ]

    # -- adding -------------------------------------------------------------------

    def add(self, spec: AnySpec, *, checks: list[Check] | None = None) -> Added:
        """Queue a job at the end after the pre-flight checks; relative paths in ``spec`` must be made absolute."""
        checks = preflight(spec, self.jobs_dir) if checks is None else checks
        if blocking(checks):
            return Added(None, checks)
        try:
            layout = JobLayout.new(self.jobs_dir, spec.name)
            spec.save(layout.spec)
        except OSError as exc:
            return Added(None, [*checks, Check("error", "disk", f"The job folder could not be written: {exc}.")])
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO jobs (name, kind, state, folder, position, created_at, updated_at) "
                "VALUES (?, ?, 'queued', ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM jobs), ?, ?)",
                (spec.name, spec.kind, str(layout.root), now, now),
            )
        assert cursor.lastrowid is not None  # set by the INSERT
        job = self.get(cursor.lastrowid)
        return Added(job, checks)

    # -- a person's actions ---------------------------------------------------------

    def cancel(self, job_id: int) -> ActionResult:
        """A queued job is cancelled at once; a running one is asked to stop after its current step."""
        return self._stop(job_id, "cancel")

    def pause(self, job_id: int) -> ActionResult:
        """Hold a queued job; stop a running one at the next step (with a checkpoint) and hold it, first in line."""
        return self._stop(job_id, "pause")

    def resume(self, job_id: int) -> ActionResult:
        """Release a paused job, or queue a stopped one first in line: a training job continues from its newest
        checkpoint, a job of another kind (which keeps none) runs again from the start."""
        with self._write() as db:
            job = self._load(db, job_id)
            if job is None:
                return _missing(job_id)
            if job.state == "queued":
                if not job.held:
                    return ActionResult(False, f"Job {job_id} is already queued.", job)
                self._update(db, job_id, held=0)
            elif job.state in REQUEUEABLE:
                if not job.layout.spec.is_file():
                    return _folder_gone(job)
                self._requeue(db, job, front=True, resume=True)
            elif job.state == "running":
                return ActionResult(False, f"Job {job_id} is running; it can be resumed once it has stopped.", job)
            else:
                return ActionResult(False, f"Job {job_id} has succeeded; duplicate it to run it again.", job)
        if job.attempt == 0:
            message = f"Job {job_id} is released; it runs in its turn."
        elif job.kind != "train":
            message = f"Job {job_id} will run again from the start."
        else:
            message = f"Job {job_id} will continue from its newest checkpoint."
        return ActionResult(True, message, self.get(job_id))

    def retry(self, job_id: int, *, from_checkpoint: bool = False) -> ActionResult:
        """Queue a stopped job again at the end: from scratch (the earlier run's events and log are
        kept under ``attempts/``, its checkpoints and adapter deleted) or from its newest checkpoint."""
        job = self.get(job_id)
        if job is None:
            return _missing(job_id)
        if job.state not in REQUEUEABLE:
            return ActionResult(False, f"Job {job_id} is {job.label}; only a stopped job can be retried.", job)
        if from_checkpoint and job.kind != "train":
            return ActionResult(False, f"Job {job_id} is a {job.kind} job, which keeps no checkpoints; retry it.", job)
        if not job.layout.spec.is_file():
            return _folder_gone(job)
        if not from_checkpoint:
            try:
                _archive_attempt(job.layout)
            except OSError as exc:
                return ActionResult(False, f"Job {job_id}'s earlier run could not be cleared away: {exc}.", job)
        with self._write() as db:
            current = self._load(db, job_id)
            if current is None or current.state != job.state:
                return ActionResult(False, f"Job {job_id} changed meanwhile; look again.", current)
            self._requeue(db, current, front=False, resume=from_checkpoint)
        how = "from its newest checkpoint" if from_checkpoint else "from the start"
        return ActionResult(True, f"Job {job_id} is queued again, {how}.", self.get(job_id))

    def duplicate(self, job_id: int, spec: AnySpec | None = None) -> Added:
        """A new queued job with this job's spec, or with ``spec`` (the edited copy), after the checks."""
        job = self.get(job_id)
        if job is None:
            return Added(None, [Check("error", "spec", _missing(job_id).message)])
        if spec is None:
            try:
                spec = load_spec(job.layout.spec)
            except SpecError as exc:
                return Added(None, [Check("error", "spec", f"Job {job_id}'s spec cannot be read: {exc}")])
        return self.add(spec)

    def delete(self, job_id: int) -> ActionResult:
        """Remove a job that is not running, with its folder. The GUI asks first."""
        job = self.get(job_id)
        if job is None:
            return _missing(job_id)
        with self._write() as db:
            gone = db.execute("DELETE FROM jobs WHERE id = ? AND state != 'running'", (job_id,)).rowcount
        if not gone:
            return ActionResult(False, f"Job {job_id} is running; cancel it before deleting it.", self.get(job_id))
        try:
            if job.folder.exists():
                shutil.rmtree(job.folder)
        except OSError as exc:
            return ActionResult(True, f"Job {job_id} was removed, but its folder was not: {exc}.", job)
        return ActionResult(True, f"Job {job_id} and its folder were deleted.", job)

    def move(self, job_id: int, to: int) -> ActionResult:
        """Put a queued job at place ``to`` (1 runs next) among the queued jobs."""
        with self._write() as db:
            job = self._load(db, job_id)
            if job is None:
                return _missing(job_id)
            if job.state != "queued":
                return ActionResult(False, f"Job {job_id} is {job.label}; only queued jobs can be moved.", job)
            order = [row[0] for row in db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY position, id")]
            order.remove(job_id)
            place = min(max(to, 1), len(order) + 1)
            order.insert(place - 1, job_id)
            for position, queued_id in enumerate(order, start=1):
                db.execute("UPDATE jobs SET position = ? WHERE id = ?", (position, queued_id))
        return ActionResult(True, f"Job {job_id} is number {place} in the queue.", self.get(job_id))

    def set_paused(self, paused: bool) -> ActionResult:
        """Pause the whole queue (no job starts until it is resumed) or resume it; kept in the database,
        so the GUI, the CLI and every runner see the same answer."""
        with self._write() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('paused', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (int(paused),),
            )
        if paused:
            return ActionResult(True, "The queue is paused: no job starts until you resume it; a running job goes on.")
        return ActionResult(True, "The queue is running: queued jobs start in their turn.")

    # -- the runner's side ---------------------------------------------------------

    def claim(self, device: str) -> Job | None:
        """Atomically take the first queued job that is not held, for ``device``; none while the queue is paused.

        Finding nothing leaves the change counter alone: an idle runner asks several times a second, and a
        counter it moved would make every window re-read the queue as often.
        """
        with transaction(self._db) as db:
            if self.paused():
                return None
            row = db.execute(
                "SELECT id, resume FROM jobs WHERE state = 'queued' AND held = 0 ORDER BY position, id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            _count_change(db)
            self._update(
                db,
                row["id"],
                state="running",
                device=device,
                pid=None,
                pid_created=None,
                started_at=time.time(),
                ended_at=None,
                **_CLEARED,
            )
            db.execute("UPDATE jobs SET attempt = attempt + 1 WHERE id = ?", (row["id"],))
        return self.get(row["id"])

    def launched(self, job: Job, worker: ProcessId, events_offset: int) -> None:
        with self._write() as db:
            self._update_attempt(db, job, pid=worker.pid, pid_created=worker.created, events_offset=events_offset)

    def record_progress(self, job: Job, step: int, total_steps: int) -> None:
        with self._write() as db:
            self._update_attempt(db, job, step=step, total_steps=total_steps)

    def finish(self, job: Job, outcome: Outcome) -> bool:
        """End this attempt; False when it had already been finished (by another process)."""
        fields = {
            "step": outcome.step,
            "exit_code": outcome.exit_code,
            "cause": outcome.cause,
            "error_type": outcome.error_type,
            "message": outcome.message,
            "hint": outcome.hint,
            "log_tail": outcome.log_tail,
            "adapter_path": outcome.adapter_path,
            "request": None,
            "request_at": None,
        }
        if outcome.step is None:  # an attempt that reported no step (a resume that failed at once) keeps the last
            del fields["step"]
        with self._write() as db:
            if outcome.state == "queued":  # a pause took effect: wait, first in line, to continue
                done = self._update_attempt(db, job, state="queued", held=1, resume=1, position=_front(db), **fields)
            else:
                done = self._update_attempt(db, job, state=outcome.state, resume=0, ended_at=time.time(), **fields)
        with suppress(OSError):  # a folder that may not be written (the outcome says so) has none to remove
            job.layout.cancel_request.unlink(missing_ok=True)
        return done

    def acquire_runner(self, device: str, me: ProcessId) -> RunnerInfo | None:
        """Become the one runner for ``device``; returns the live holder instead when there is one."""
        now = time.time()
        with self._write() as db:
            row = db.execute("SELECT * FROM runners WHERE device = ?", (device,)).fetchone()
            if row is not None and (row["pid"], row["pid_created"]) != (me.pid, me.created):
                holder = ProcessId(row["pid"], row["pid_created"])
                if holder.alive():
                    return RunnerInfo(device, holder.pid, row["started_at"], row["seen_at"], True)
            db.execute(
                "INSERT OR REPLACE INTO runners (device, pid, pid_created, started_at, seen_at) VALUES (?, ?, ?, ?, ?)",
                (device, me.pid, me.created, now, now),
            )
        return None

    def heartbeat(self, device: str, me: ProcessId) -> None:
        with transaction(self._db) as db:
            db.execute("UPDATE runners SET seen_at = ? WHERE device = ? AND pid = ?", (time.time(), device, me.pid))

    def release_runner(self, device: str, me: ProcessId) -> None:
        with self._write() as db:
            db.execute("DELETE FROM runners WHERE device = ? AND pid = ?", (device, me.pid))

    # -- internals -----------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that also moves the change counter."""
        with transaction(self._db) as db:
            _count_change(db)
            yield db

    def _load(self, db: sqlite3.Connection, job_id: int) -> Job | None:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def _stop(self, job_id: int, request: Request) -> ActionResult:
        with self._write() as db:
            job = self._load(db, job_id)
            if job is None:
                return _missing(job_id)
            if job.state == "queued":
                if request == "pause":
                    self._update(db, job_id, held=1)
                    return ActionResult(
                        True, f"Job {job_id} is paused; it stays in line until resumed.", self.get(job_id)
                    )
                self._update(db, job_id, state="cancelled", ended_at=time.time(), message=_cancelled_in_line(job))
                return ActionResult(True, f"Job {job_id} is cancelled.", self.get(job_id))
            if job.state in FINISHED:
                return ActionResult(False, f"Job {job_id} has already {job.state}.", job)
            if job.request == "cancel" and request == "pause":
                return ActionResult(False, f"Job {job_id} is already being cancelled.", job)
            self._update(db, job_id, request=request, request_at=job.request_at or time.time())
        # After the commit, so the runner, which re-creates a missing file for a pending request, never races it.
        if job.folder.is_dir():
            ask_to_stop(job.layout.cancel_request, request)
        verb = "pause" if request == "pause" else "stop"
        if job.kind != "train":
            keeps = "it keeps nothing partial, and runs again from the start when resumed"
            return ActionResult(True, f"Job {job_id} will {verb} shortly; {keeps}.", self.get(job_id))
        return ActionResult(
            True, f"Job {job_id} will {verb} after its current step and save a checkpoint.", self.get(job_id)
        )

    def _requeue(self, db: sqlite3.Connection, job: Job, *, front: bool, resume: bool) -> None:
        position = _front(db) if front else _back(db)
        fresh = {} if resume else {"step": None, "total_steps": None}
        self._update(
            db,
            job.id,
            state="queued",
            held=0,
            resume=int(resume),
            position=position,
            ended_at=None,
            **_CLEARED,
            **fresh,
        )

    def _update(self, db: sqlite3.Connection, job_id: int, **values: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)
        db.execute(f"UPDATE jobs SET {columns}, updated_at = ? WHERE id = ?", (*values.values(), time.time(), job_id))  # noqa: S608 - our column names

    def _update_attempt(self, db: sqlite3.Connection, job: Job, **values: Any) -> bool:
        """Update only while this attempt is still the one running, so two finishers cannot both win."""
        columns = ", ".join(f"{name} = ?" for name in values)
        cursor = db.execute(
            f"UPDATE jobs SET {columns}, updated_at = ? WHERE id = ? AND attempt = ? AND state = 'running'",  # noqa: S608
            (*values.values(), time.time(), job.id, job.attempt),
        )
        return cursor.rowcount == 1


_CLEARED = {
    "request": None,
    "request_at": None,
    "exit_code": None,
    "cause": None,
    "error_type": None,
    "message": None,
    "hint": None,
    "log_tail": None,
    "adapter_path": None,
}


def _count_change(db: sqlite3.Connection) -> None:
    db.execute("UPDATE meta SET value = value + 1 WHERE key = 'changes'")


def _front(db: sqlite3.Connection) -> int:
    front: int = db.execute("SELECT COALESCE(MIN(position), 1) - 1 FROM jobs WHERE state = 'queued'").fetchone()[0]
    return front


def _back(db: sqlite3.Connection) -> int:
    back: int = db.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM jobs").fetchone()[0]
    return back


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    values.update(folder=Path(values["folder"]), held=bool(values["held"]), resume=bool(values["resume"]))
    return Job(**values)


def _missing(job_id: int) -> ActionResult:
    return ActionResult(False, f"There is no job {job_id}.")


def _folder_gone(job: Job) -> ActionResult:
    return ActionResult(
        False, f"Job {job.id}'s folder {job.folder} or its spec.yaml is gone; it cannot run again. Delete it.", job
    )


def _archive_attempt(layout: JobLayout) -> None:
    """Keep the last run's events and log under attempts/N/; drop its checkpoints and adapter."""
    keep = [path for path in (layout.events, layout.log) if path.exists()]
    if keep:
        attempts = layout.root / ATTEMPTS_DIR
        number = 1 + sum(1 for _ in attempts.iterdir()) if attempts.is_dir() else 1
        target = attempts / str(number)
        target.mkdir(parents=True)
        for path in keep:
            path.replace(target / path.name)
    for folder in (layout.checkpoints, layout.adapter):
        if folder.exists():
            shutil.rmtree(folder)
    layout.cancel_request.unlink(missing_ok=True)


def _cancelled_in_line(job: Job) -> str:
    """What a cancel of a job waiting in line did: one that already ran keeps what it made."""
    if not job.attempt:
        return "Cancelled before it ran."
    if job.step:
        return f"Cancelled while it waited to resume from step {job.step}; its checkpoints are kept."
    return "Cancelled while it waited to run again; its files are kept."
