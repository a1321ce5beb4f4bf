"""A job as the queue knows it: its state, place in line, progress and how it ended.

A plain frozen record read from the database, so the GUI can hold, compare and
show it without a connection, and ``to_dict`` gives the same fields to scripts
(``lora-studio queue list --json``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from backend.core.layout import JobLayout
from backend.core.run_time import RunTime, read_run_time

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
FINISHED: frozenset[JobState] = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
"""States no runner changes again; a person can requeue the last three."""
REQUEUEABLE: frozenset[JobState] = frozenset({"failed", "cancelled", "interrupted"})

Request = Literal["cancel", "pause"]


@dataclass(frozen=True)
class Job:
    id: int
    """Short, never reused: what the CLI and GUI call the job."""
    name: str
    kind: str
    state: JobState
    folder: Path
    position: int
    """Order among queued jobs (lower runs first); meaningless in other states."""
    held: bool
    """A paused job: queued, but skipped by runners until resumed."""
    resume: bool
    """The next launch continues from the newest checkpoint."""
    request: Request | None
    """A stop someone asked for that the worker has not honoured yet."""
    request_at: float | None
    device: str | None
    pid: int | None
    pid_created: float | None
    """The worker's creation time: with the pid, its identity (pids get reused)."""
    attempt: int
    """How many times a worker was started for it; each start appends to events.jsonl."""
    events_offset: int
    """Where the current attempt's events begin in events.jsonl."""
    step: int | None
    total_steps: int | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    updated_at: float
    exit_code: int | None
    cause: str | None
    """Why a worker ended without finishing: ``signal:SIGKILL``, ``oom_killer``, ``exit:N``, ``lost``…"""
    error_type: str | None
    message: str | None
    hint: str | None
    log_tail: str | None
    adapter_path: str | None
    """A train job's adapter; for the other kinds, what they produced (merged model, export folder, report)."""

    @property
    def layout(self) -> JobLayout:
        return JobLayout(self.folder)

    @property
    def paused(self) -> bool:
        return self.state == "queued" and self.held

    @property
    def progress(self) -> float | None:
        """Fraction of steps done, for a progress bar; None before the first step is known."""
        if not self.total_steps or self.step is None:
            return None
        return min(1.0, self.step / self.total_steps)

    @property
    def label(self) -> str:
        """The state as a person reads it: a held queued job is "paused"."""
        if self.paused:
            return "paused"
        if self.request is not None and self.state == "running":
            return "pausing" if self.request == "pause" else "cancelling"
        return self.state

    def run_time(self, now: float | None = None) -> RunTime | None:
        """How long it ran, this attempt and in all (``backend.core.run_time``), from its events file; None before
        it started. A running job's time runs to ``now``; a worker that died without a word ends at ``ended_at``."""
        running = self.state == "running"
        until = (now if now is not None else time.time()) if running else self.ended_at
        return read_run_time(self.layout.events, until, running=running)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "folder": str(self.folder), "label": self.label, "progress": self.progress}
