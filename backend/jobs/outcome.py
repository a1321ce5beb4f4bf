"""How an attempt ended: from its events, its exit status and what was asked of it.

One pure function, ``decide``, so the rules (docs/queue.md, "Recovery") live in
one place and are tested without processes. The worker's own ``done`` event wins;
without one the worker died, and the exit status (known only to its parent) and
the memory cgroup say how, as precisely as they honestly can.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypedDict, cast, get_args

from backend.core.events import Done, Error, ErrorType, Event, Progress, Started
from backend.core.layout import JobLayout
from backend.jobs.job import JobState, Request
from backend.jobs.process import ExitInfo

OomAdvisor = Callable[[JobLayout, Error], str | None]
"""Suggests the one change that makes an out-of-memory job fit (the memory estimator plugs in here)."""


@dataclass
class AttemptEvents:
    """What one attempt's events said, folded as they arrive."""

    started: bool = False
    done: Done | None = None
    error: Error | None = None
    step: int | None = None
    total_steps: int | None = None
    stage: str | None = None
    """A merge's or an export's stage as its last progress event named it (``Progress.stage``)."""

    def add(self, events: Iterable[Event]) -> None:
        for event in events:
            if isinstance(event, Started):
                self.started = True
            elif isinstance(event, Progress):
                self.step, self.total_steps, self.stage = event.step, event.total_steps, event.stage
            elif isinstance(event, Error):
                self.error = event
            elif isinstance(event, Done):
                self.done = event


@dataclass(frozen=True)
class Outcome:
    state: JobState
    """``queued`` for a pause that took effect: the job waits, held, to be resumed."""
    message: str | None = None
    hint: str | None = None
    error_type: str | None = None
    cause: str | None = None
    step: int | None = None
    adapter_path: str | None = None
    exit_code: int | None = None
    log_tail: str | None = field(default=None, repr=False)


class _Common(TypedDict):
    """What every outcome of an attempt carries."""

    step: int | None
    exit_code: int | None
    log_tail: str | None


def decide(
    layout: JobLayout,
    seen: AttemptEvents,
    exit_info: ExitInfo,
    *,
    request: Request | None,
    forced: str | None,
    checkpoint: int | None,
    log_tail: str | None,
    oom_advice: OomAdvisor | None = None,
    kind: str = "train",
) -> Outcome:
    """The state an attempt ends in.

    ``forced`` names the signal the runner escalated to when the worker ignored a stop
    request; ``checkpoint`` is the step of the newest complete checkpoint on disk. Only
    ``train`` jobs keep checkpoints: any other kind runs again from the start.
    """
    step = seen.done.step if seen.done and seen.done.step else seen.step
    common: _Common = {"step": step, "exit_code": exit_info.code, "log_tail": log_tail}
    if kind != "train":
        resumes = f"Resuming runs it again from the start (a {kind} job keeps no checkpoints)."
    elif checkpoint:
        resumes = f"Resuming continues from step {checkpoint}."
    else:
        resumes = "Resuming starts over: no checkpoint yet."
    if not layout.root.is_dir():
        return Outcome(
            "failed",
            f"The job folder {layout.root} was deleted while the job ran; nothing is left to resume.",
            "Delete the job, or duplicate it to run it again.",
            error_type="missing_folder",
            **common,
        )
    done = seen.done
    if done is not None and done.status == "succeeded":
        return Outcome("succeeded", adapter_path=done.adapter_path or done.output_path, **common)
    if done is not None and done.status == "failed":
        return _failed(layout, seen.error, oom_advice, common)
    if done is not None or forced:  # cancelled by the worker, or stopped by the runner's escalation
        how = f" It did not stop in time and was ended with {forced}." if forced and done is None else ""
        at = f" at step {step or 0}" if kind == "train" else ""
        if request == "pause":
            return Outcome("queued", f"Paused{at}.{how} {resumes}", **common)
        return Outcome("cancelled", f"Cancelled{at}.{how} {resumes}", **common)
    return _interrupted(seen, exit_info, resumes, common)


_LAST_WORDS = re.compile(r"^job failed \((\w+)\): (.+)$")
_WHAT_TO_DO = "what to do: "


def _last_words(log_tail: str | None) -> Error | None:
    """The typed error the worker wrote to worker.log (``job failed (TYPE): message``, then ``what to do: hint``),
    for a failure whose ``error`` event events.jsonl could not take (a full disk, a read-only folder)."""
    lines = (log_tail or "").splitlines()
    for index in range(len(lines) - 1, -1, -1):
        match = _LAST_WORDS.match(lines[index])
        if match is None or match.group(1) not in get_args(ErrorType):
            continue
        after = lines[index + 1] if index + 1 < len(lines) else ""
        hint = after.removeprefix(_WHAT_TO_DO) if after.startswith(_WHAT_TO_DO) else None
        return Error(error_type=cast(ErrorType, match.group(1)), message=match.group(2), hint=hint)
    return None


def _failed(layout: JobLayout, error: Error | None, oom_advice: OomAdvisor | None, common: _Common) -> Outcome:
    error = error or _last_words(common["log_tail"])
    if error is None:
        return Outcome(
            "failed",
            "The worker reported a failure without saying why.",
            "Look at worker.log in the job folder.",
            error_type="internal",
            **common,
        )
    message = error.message
    if error.error_type == "out_of_memory" and oom_advice is not None and (advice := oom_advice(layout, error)):
        message = f"{message} Suggested change: {advice}"
    return Outcome("failed", message, error.hint, error_type=error.error_type, **common)


def _interrupted(seen: AttemptEvents, exit_info: ExitInfo, resumes: str, common: _Common) -> Outcome:
    code, name = exit_info.code, exit_info.signal_name
    hint = f"Resume the job. {resumes}"
    if code is None:
        if not seen.started:
            cause, message = "not_started", "The worker never reported starting; its runner may have stopped first."
        else:
            cause = "lost"
            if exit_info.reattached:
                message = (
                    "The worker ended without reporting how the job went, while a re-attached runner watched it; "
                    "its exit status is unknown (the operating system gives it only to the process that started "
                    "the worker)."
                )
            else:
                message = (
                    "The worker ended without reporting how the job went, after the runner that watched it had "
                    "died too; no runner saw it end, so its exit status is unknown."
                )
    elif code == -signal.SIGKILL:
        if exit_info.oom_killed:
            cause = "oom_killer"
            message = "The out-of-memory killer stopped the worker (SIGKILL): the machine ran out of RAM."
            hint = f"Close other programs or make the job smaller, then resume it. {resumes}"
        elif exit_info.oom_killed is None:
            cause = "signal:SIGKILL"
            message = (
                "The worker was killed (SIGKILL), often the out-of-memory killer when RAM runs out; "
                "the kernel log (journalctl -k) says for sure."
            )
        else:
            cause = "signal:SIGKILL"
            message = "The worker was killed (SIGKILL) from outside LoRA Studio; it was not the out-of-memory killer."
    elif code < 0:
        cause = f"signal:{name}"
        message = f"The worker crashed ({name}{', a fault in native code' if name == 'SIGSEGV' else ''})."
        hint = f"Resume the job; if it happens again, attach worker.log to a bug report. {resumes}"
    else:
        cause = f"exit:{code}"
        message = f"The worker exited with status {code} without reporting how the job went."
    return Outcome("interrupted", message, hint, cause=cause, **common)
