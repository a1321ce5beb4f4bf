"""Ending an attempt in the database: shared by a runner and by anyone who finds an orphan.

A job stays ``running`` while its worker lives, whether or not a runner watches
it. When the worker is gone, whoever notices (its runner, a new runner, the CLI
listing jobs) reads the attempt's events and finishes the job with the rules in
``outcome.decide``. Finishing is compare-and-set on the attempt, so two
processes noticing at once cannot both record an end.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from backend.core.tail import EventTail
from backend.jobs.job import Job
from backend.jobs.outcome import AttemptEvents, OomAdvisor, Outcome, decide
from backend.jobs.process import ExitInfo, ProcessId, find_worker
from backend.jobs.queue import JobQueue
from backend.training.checkpoints import checkpoint_step, latest_checkpoint

LOG_TAIL_LINES = 20
_LOG_TAIL_BYTES = 16 << 10


def live_worker(job: Job) -> ProcessId | None:
    """The worker process of a running job, if it still runs."""
    if job.pid is not None and job.pid_created is not None:
        worker = ProcessId(job.pid, job.pid_created)
        return worker if worker.alive() else None
    # The runner stopped between starting the worker and recording its pid.
    return find_worker(job.folder)


def attempt_events(job: Job) -> tuple[AttemptEvents, EventTail]:
    """The current attempt's events so far, and the tail to follow it from there."""
    tail = EventTail(job.layout.events, job.events_offset)
    seen = AttemptEvents()
    seen.add(tail.read())
    return seen, tail


def conclude(
    job: Job,
    seen: AttemptEvents,
    exit_info: ExitInfo,
    *,
    forced: str | None = None,
    oom_advice: OomAdvisor | None = None,
) -> Outcome:
    """The outcome of ``job``'s attempt, whose worker has ended, from everything on disk."""
    checkpoint = latest_checkpoint(job.layout.checkpoints) if job.folder.is_dir() else None
    return decide(
        job.layout,
        seen,
        exit_info,
        request=job.request,
        forced=forced,
        checkpoint=checkpoint_step(checkpoint) if checkpoint else None,
        log_tail=log_tail(job.layout.log),
        oom_advice=oom_advice,
        kind=job.kind,
    )


def settle_orphans(queue: JobQueue, oom_advice: OomAdvisor | None = None) -> list[Job]:
    """Finish running jobs whose worker is gone and whose device has no live runner to do it.

    Cheap enough to call whenever jobs are listed: it looks only at running jobs.
    """
    watched = {runner.device for runner in queue.runners() if runner.alive}
    settled = []
    for job in queue.jobs("running"):
        if job.device in watched or live_worker(job) is not None:
            continue
        seen, _ = attempt_events(job)
        if queue.finish(job, conclude(job, seen, ExitInfo(code=None), oom_advice=oom_advice)):
            settled.append(job)
    return settled


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str | None:
    """The last lines of a worker's log (its traceback, usually), or None without one."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return None
    text = data.decode("utf-8", errors="replace")
    kept = deque(text.splitlines(), maxlen=lines)
    return "\n".join(kept) or None
