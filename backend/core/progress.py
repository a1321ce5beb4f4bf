"""Progress, one way for every job: the callback of long steps, and the time left.

A long step (model import, merge, export) calls ``progress(stage, done, total)``: ``done`` units
(bytes, files, tensors, checks) of ``total``, or ``total=None`` while the amount is unknown (a
download pip or the hub library runs). ``time_left`` is the one pace rule behind every ETA: the
trainer's, the evaluation's and the exports' ``progress`` events, and ``eta_seconds`` that the GUI shows;
``duration_words`` says how long and ``ended_words`` how a job ended, in the GUI and in the terminal alike
(``backend.core.run_time`` says which duration).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Literal

from backend.core.events import Progress

Stage = Literal[
    "downloading",
    "extracting",
    "converting",
    "saving",
    "copying",
    "fingerprinting",
    "merging",
    "writing",
    "quantizing",
    "verifying",
]

ProgressFn = Callable[[Stage, int, int | None], None]
"""Called as ``progress(stage, done, total)``; ``total`` is None when unknown."""


def no_progress(stage: Stage, done: int, total: int | None) -> None:
    """The callback used when the caller passes none."""


def each_stage_once(report: Callable[[Stage], None]) -> ProgressFn:
    """A callback that passes on each new stage once and drops the counts: for logs and terminals."""
    seen: list[Stage] = []

    def progress(stage: Stage, _done: int, _total: int | None) -> None:
        if not seen or seen[-1] != stage:
            seen.append(stage)
            report(stage)

    return progress


def time_left(left: float, done: float, seconds: float) -> float | None:
    """Seconds for ``left`` more units at the pace of ``done`` units in ``seconds``; None before there is a pace."""
    if done <= 0 or seconds <= 0:
        return None
    return max(0.0, left) * seconds / done


def eta_seconds(recent: Iterable[Progress], now: float | None = None) -> float | None:
    """Seconds left, as of ``now``: the worker's own estimate, else the pace of the recent steps."""
    recent = list(recent)
    if not recent:
        return None
    first, last = recent[0], recent[-1]
    if last.step >= last.total_steps:
        return 0.0
    left = last.eta_s
    if left is None and len(recent) >= 2:
        left = time_left(last.total_steps - last.step, last.step - first.step, last.elapsed_s - first.elapsed_s)
    if left is None:  # one step seen: its pace from the start
        left = time_left(last.total_steps - last.step, last.step, last.elapsed_s)
    if left is None:
        return None
    since = max(0.0, (now if now is not None else time.time()) - last.time)
    return max(0.0, left - since)


STEP_KINDS = frozenset({"train", "measure"})
"""Job kinds whose progress counts optimizer steps; evaluate, merge and export go through named stages
(``Stage``), whose counts (tensors, checks, prompts) restart with each stage and say nothing once it ended."""


def ended_words(kind: str | None, status: str, step: int | None) -> str:
    """How a job or attempt ended, in its kind's terms: "succeeded at step 10", "paused at step 6", and for a merge
    plain "succeeded". An unknown kind (an event read alone) names the step only when there was one."""
    counts_steps = kind in STEP_KINDS or (kind is None and bool(step))
    return f"{status} at step {step or 0:,}" if counts_steps else status


def duration_words(seconds: float | None) -> str:
    """ "45 s", "12 min", "1 h 05 min", "2 d 3 h": how long, for a person."""
    if seconds is None:
        return "—"
    total = round(max(0.0, seconds))
    if total < 60:
        return f"{total} s"
    minutes = (total + 30) // 60 if total < 3600 else total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
