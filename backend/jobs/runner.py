"""The queue runner: runs queued jobs one at a time on one device and sees each to its end.

One runner drives one device (a GPU, or the CPU on a machine without one); the
``runners`` table is its lock, held by pid and creation time, so a second runner
for the same device is refused while the first lives. Claims are transactions,
so runners for different devices never take the same job.

Workers run in their own sessions and are followed through ``events.jsonl``, not
a pipe: when the runner stops or is killed the job keeps going, and the next
runner for that device reattaches to it (or, if it died meanwhile, records how
it ended). Only a runner that started a worker knows its exit status; one that
reattached can say only that it ended without a ``done`` event.
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from backend.core import paths
from backend.core.spec import SpecError
from backend.core.stop import ask_to_stop
from backend.core.tail import EventTail
from backend.core.task_specs import load_spec
from backend.core.telemetry import Nvml
from backend.jobs.failures import classify, classify_start
from backend.jobs.job import Job
from backend.jobs.launch import WORKER_COMMAND, start_worker
from backend.jobs.outcome import AttemptEvents, OomAdvisor, Outcome
from backend.jobs.preflight import blocking, launch_checks
from backend.jobs.process import ExitInfo, ProcessId, oom_kill_count, signal_group
from backend.jobs.queue import JobQueue, RunnerInfo
from backend.jobs.settle import attempt_events, conclude, live_worker, settle_orphans

log = logging.getLogger(__name__)

DEVICE = re.compile(r"^(cpu|cuda:\d+)$")


def default_device() -> str:
    """The first GPU, or the CPU on a machine without one."""
    return "cuda:0" if Nvml().gpus() else "cpu"


def device_env(device: str) -> dict[str, str]:
    """Environment that confines a worker to the runner's device."""
    return {"CUDA_VISIBLE_DEVICES": device.removeprefix("cuda:") if device.startswith("cuda:") else ""}


@dataclass(frozen=True)
class RunnerSettings:
    device: str = "cpu"
    worker_command: Sequence[str] = WORKER_COMMAND
    """What runs a job: ``command JOB_DIR [--resume]``, speaking docs/job-protocol.md."""
    poll_s: float = 0.25
    term_after_s: float = 60.0
    """After a cancel or pause request, how long the step in progress may take before SIGTERM."""
    kill_after_s: float = 300.0
    """… and before SIGKILL of the worker's process group (the checkpoint of that step is then lost)."""
    progress_every_s: float = 1.0
    heartbeat_s: float = 5.0
    oom_advice: OomAdvisor | None = None


class DeviceBusy(RuntimeError):
    def __init__(self, holder: RunnerInfo) -> None:
        self.holder = holder
        super().__init__(
            f"Another runner (pid {holder.pid}) already drives {holder.device}; it keeps running the queue."
        )


@dataclass
class _Watch:
    """One attempt being followed."""

    job: Job
    worker: ProcessId
    process: subprocess.Popen[bytes] | None
    """Set when this runner started the worker, so its exit status is known."""
    oom_before: int | None
    tail: EventTail
    seen: AttemptEvents
    forced: str | None = None
    folder_kill_sent: bool = False
    reported: tuple[int | None, int | None] = (None, None)
    reported_at: float = 0.0


class Runner:
    def __init__(self, queue: JobQueue, settings: RunnerSettings | None = None) -> None:
        self.queue = queue
        self.settings = settings or RunnerSettings()
        if not DEVICE.match(self.settings.device):
            raise ValueError(f"device must be cpu or cuda:N, not {self.settings.device!r}")
        self.me = ProcessId.current()

    def run(self, *, once: bool = False, stop: threading.Event | None = None, wait: bool = False) -> None:
        """Run jobs until ``stop`` is set or, with ``once``, until nothing is left to start.

        On return a job in progress keeps running; the next runner for the device reattaches.

        Raises DeviceBusy when another runner holds the device, unless ``wait``.
        """
        stop = stop or threading.Event()
        device = self.settings.device
        while (holder := self.queue.acquire_runner(device, self.me)) is not None:
            if not wait:
                raise DeviceBusy(holder)
            if stop.wait(1.0):
                return
        log.info("runner %d drives %s", self.me.pid, device)
        try:
            self._loop(once, stop)
        finally:
            self.queue.release_runner(device, self.me)

    def _loop(self, once: bool, stop: threading.Event) -> None:
        watch: _Watch | None = None
        beat = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now - beat >= self.settings.heartbeat_s:
                self.queue.heartbeat(self.settings.device, self.me)
                settle_orphans(self.queue, self.settings.oom_advice)
                beat = now
            if watch is None:
                watch = self._adopt() or self._start_next()
                if watch is None and once:
                    return
            if watch is not None and self._follow(watch):
                watch = None
                continue  # start the next job at once
            stop.wait(self.settings.poll_s)
        if watch is not None:
            log.info("runner stops; job %d keeps running (pid %d)", watch.job.id, watch.worker.pid)

    # -- starting ------------------------------------------------------------------

    def _adopt(self) -> _Watch | None:
        """Reattach to this device's running job if its worker lives; record the end of any that died."""
        for job in self.queue.jobs("running", device=self.settings.device):
            worker = live_worker(job)
            seen, tail = attempt_events(job)
            if worker is None:
                outcome = conclude(job, seen, ExitInfo(code=None), oom_advice=self.settings.oom_advice)
                self._finish(job, outcome)
                continue
            if job.pid is None:
                self.queue.launched(job, worker, job.events_offset)
            log.info("job %d: reattached to its worker (pid %d)", job.id, worker.pid)
            return _Watch(job, worker, None, None, tail, seen)
        return None

    def _start_next(self) -> _Watch | None:
        """Claim the next job and start its worker; None when nothing is left to start."""
        while (job := self.queue.claim(self.settings.device)) is not None:
            problem = self._launch_problem(job)
            if problem is not None:
                self._finish(job, problem)
            elif (watch := self._launch(job)) is not None:
                return watch
        return None

    def _launch(self, job: Job) -> _Watch | None:
        layout = job.layout
        oom_before = oom_kill_count()
        try:  # a job folder that may not be written, a full disk, a program that is missing or may not run
            offset = _seal(layout.events)
            layout.cancel_request.unlink(missing_ok=True)
            process = start_worker(
                layout,
                resume=job.resume,
                command=self.settings.worker_command,
                env=device_env(self.settings.device),
                pipe_events=False,
            )
        except OSError as exc:
            error = classify_start(exc, self.settings.worker_command[0], layout)
            self._finish(job, Outcome("failed", error.message, error.hint, error_type=error.error_type))
            return None
        worker = ProcessId.of(process.pid) or ProcessId(process.pid, 0.0)
        self.queue.launched(job, worker, offset)
        job = self.queue.get(job.id) or job
        how = "resuming" if job.resume else "attempt 1" if job.attempt == 1 else f"attempt {job.attempt}"
        log.info("job %d started on %s (%s, pid %d)", job.id, self.settings.device, how, worker.pid)
        return _Watch(job, worker, process, oom_before, EventTail(layout.events, offset), AttemptEvents())

    def _launch_problem(self, job: Job) -> Outcome | None:
        """Why a claimed job cannot start, checked just before it does."""
        missing = Outcome(
            "failed",
            f"The job folder {job.folder} or its spec.yaml was deleted before the job started.",
            "Delete the job, or queue its spec again.",
            error_type="missing_folder",
        )
        try:
            if not job.layout.spec.is_file():
                return missing
            spec = load_spec(job.layout.spec)
        except SpecError as exc:
            return Outcome("failed", str(exc), "Fix the spec and queue it again.", error_type="config")
        except OSError as exc:  # a folder the runner may not read
            error = classify(exc, job.layout)
            return Outcome("failed", error.message, error.hint, error_type=error.error_type)
        checks = launch_checks(spec, self.queue.jobs_dir)
        if blocking(checks):
            message = " ".join(check.message for check in checks if check.level == "error")
            return Outcome("failed", message, "Free disk space, then retry the job.", error_type="disk_full")
        return None

    # -- following -----------------------------------------------------------------

    def _follow(self, watch: _Watch) -> bool:
        """One look at the attempt; True once it has ended and been recorded."""
        watch.seen.add(watch.tail.read())
        self._report_progress(watch)
        code = watch.process.poll() if watch.process is not None else None
        ended = code is not None or (watch.process is None and not watch.worker.alive())
        if not ended:
            self._enforce(watch)
            return False
        watch.seen.add(watch.tail.read())
        oom_killed = None
        if watch.oom_before is not None and (after := oom_kill_count()) is not None:
            oom_killed = after > watch.oom_before
        job = self.queue.get(watch.job.id) or watch.job  # the latest request
        outcome = conclude(
            job,
            watch.seen,
            ExitInfo(code, oom_killed, reattached=watch.process is None),
            forced=watch.forced,
            oom_advice=self.settings.oom_advice,
        )
        self._finish(job, outcome)
        return True

    def _report_progress(self, watch: _Watch) -> None:
        seen = watch.seen
        now = time.monotonic()
        if seen.step is None or (seen.step, seen.total_steps) == watch.reported:
            return
        if now - watch.reported_at < self.settings.progress_every_s:
            return
        self.queue.record_progress(watch.job, seen.step, seen.total_steps or 0)
        watch.reported, watch.reported_at = (seen.step, seen.total_steps), now

    def _enforce(self, watch: _Watch) -> None:
        """Keep a stop request in force and escalate when the worker does not honour it in time."""
        layout = watch.job.layout
        if not layout.root.is_dir():
            if not watch.folder_kill_sent:
                log.warning("job %d: its folder was deleted; stopping its worker", watch.job.id)
                signal_group(watch.worker, signal.SIGKILL)
                watch.folder_kill_sent = True
            return
        job = self.queue.get(watch.job.id)
        if job is None or job.request is None or job.request_at is None:
            return
        if not layout.cancel_request.exists():
            ask_to_stop(layout.cancel_request, job.request)
        waited = time.time() - job.request_at
        if waited >= self.settings.kill_after_s and watch.forced != "SIGKILL":
            log.warning("job %d: no stop after %.0f s; SIGKILL", job.id, waited)
            signal_group(watch.worker, signal.SIGKILL)
            watch.forced = "SIGKILL"
        elif waited >= self.settings.term_after_s and watch.forced is None:
            log.warning("job %d: no stop after %.0f s; SIGTERM", job.id, waited)
            signal_group(watch.worker, signal.SIGTERM)
            watch.forced = "SIGTERM"

    def _finish(self, job: Job, outcome: Outcome) -> None:
        if self.queue.finish(job, outcome):
            state = "paused" if outcome.state == "queued" else outcome.state
            detail = f": {outcome.message}" if outcome.message else ""
            log.info("job %d %s%s", job.id, state, detail)


def _seal(events: Path) -> int:
    """End a torn last line (a worker killed mid-write) so the next attempt's first event stands alone.

    Returns where the next attempt's events begin.
    """
    try:
        with events.open("rb+") as handle:
            size = handle.seek(0, 2)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
                    size += 1
            return size
    except FileNotFoundError:
        return 0


def spawn_runner(device: str, *, once: bool = False) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``lora-studio queue run`` in its own session: it outlives the caller (the GUI, a terminal).

    Returns the process and its log file in the data folder.
    """
    log_path = paths.data_home() / f"runner-{device.replace(':', '-')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "backend.cli", "queue", "run", "--device", device, *(["--once"] if once else [])]
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process, log_path


def ensure_runner(queue: JobQueue, device: str | None = None) -> int | None:
    """Start a background runner for ``device`` unless one is alive; the new runner's pid, or None.

    What the GUI calls on start and after queueing a job. Two callers racing start two
    runners; the second finds the device taken and exits.
    """
    device = device or default_device()
    if any(runner.alive and runner.device == device for runner in queue.runners()):
        return None
    process, _ = spawn_runner(device)
    return process.pid
