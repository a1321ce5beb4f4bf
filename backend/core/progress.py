"""Progress, one way for every job: the callback of long steps, and the time left.

A long step (model import, merge, export) calls ``progress(stage, done, total)``: ``done`` units
(bytes, files, tensors, checks) of ``total``, or ``total=None`` while the amount is unknown (a
download pip or the hub library runs). ``time_left`` is the one pace rule behind every ETA: the
trainer's, the evaluation's and the exports' ``progress`` events, and ``eta_seconds`` that the GUI shows;
``duration_words`` says how long in the GUI and in the terminal alike.
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
