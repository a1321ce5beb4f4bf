"""How long a job ran: one definition with two labelled numbers, the same in every page and the terminal.

- **attempt**: the wall time of one run of the job's worker: the ``duration_s`` of its ``done``
  event (measured by the worker from its start), or from its ``started`` event to now while it
  runs. A pause ends an attempt and a resume starts another. A worker killed without a ``done``
  ran until its last event.
- **job**: the sum of the attempts in the job's ``events.jsonl`` (a retry from scratch starts a
  new file and keeps the old one under ``attempts/N/``). Time waiting in the queue or paused
  does not count.

Both come from the events' own wall-clock stamps, so the Monitor, the status bar, the Jobs page
and ``lora-studio queue`` read the same numbers from the same file, and a window opened later
reads them too. Before this, the Monitor showed the trainer's loop time ("ran 22 s": without
loading the model) and the status bar the runner's claim-to-finish time ("after 55 s").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from backend.core.events import Done, Event, Started, parse_event
from backend.core.progress import duration_words

_BOUNDARY = re.compile(rb'"type":\s*"(?:started|done)"')
"""The events a run time needs, with the last event of an attempt that ended without ``done``: the rest of a
long file is skipped unparsed."""
_STARTED = re.compile(rb'"type":\s*"started"')


@dataclass(frozen=True)
class RunTime:
    attempt_s: float
    """The latest attempt's wall time."""
    job_s: float
    """All attempts' wall time together."""
    attempts: int
    running: bool
    """The latest attempt has not ended: its time runs to the ``until`` it was measured at."""

    def words(self) -> str:
        """ "ran 55 s", "running for 12 s", or with several attempts "ran 2 min in all over 3 attempts, 40 s in
        the last": labelled, so two numbers are never mistaken for one."""
        verb = "running for" if self.running else "ran"
        if self.attempts <= 1:
            return f"{verb} {duration_words(self.job_s)}"
        latest = "the current" if self.running else "the last"
        return (
            f"{verb} {duration_words(self.job_s)} in all over {self.attempts} attempts, "
            f"{duration_words(self.attempt_s)} in {latest}"
        )


def run_time(events: Iterable[Event], until: float | None = None, *, running: bool = False) -> RunTime | None:
    """The run time of these events (any others are ignored); None before the first ``started``.

    An attempt without a ``done`` event ran until its last event; the latest one runs to ``until``
    when given: now while the job runs (``running``), or when the queue recorded the end of a worker
    that died without saying so.
    """
    spans: list[tuple[float, float | None, float]] = []
    """Each attempt's start, its length once done, and its last event's time."""
    for event in events:
        if isinstance(event, Started):
            spans.append((event.time, None, event.time))
        elif spans and spans[-1][1] is None:
            start, _, _ = spans[-1]
            spans[-1] = (start, event.duration_s, event.time) if isinstance(event, Done) else (start, None, event.time)
    if not spans:
        return None
    lengths = []
    for number, (start, length, last) in enumerate(spans, start=1):
        end = until if until is not None and number == len(spans) else last
        lengths.append(length if length is not None else max(0.0, end - start))
    running = running and spans[-1][1] is None
    return RunTime(attempt_s=lengths[-1], job_s=sum(lengths), attempts=len(spans), running=running)


def read_run_time(path: Path, until: float | None = None, *, running: bool = False) -> RunTime | None:
    """``run_time`` of a job's events file, parsing only its ``started`` and ``done`` lines (fast on long runs)."""
    try:
        handle = path.open("rb")
    except OSError:
        return None
    with handle:
        return run_time(_boundaries(handle), until, running=running)


def _boundaries(lines: Iterable[bytes]) -> Iterable[Event]:
    """Every ``started`` and ``done`` event, and the last other event before a ``started`` and at the end (the
    last sign of life of an attempt that ended without ``done``)."""
    previous: bytes | None = None
    for raw in lines:
        if not raw.endswith(b"\n"):
            continue
        if not _BOUNDARY.search(raw):
            previous = raw
            continue
        if previous is not None and _STARTED.search(raw):
            yield from _parsed(previous)
        yield from _parsed(raw)
        previous = None
    if previous is not None:
        yield from _parsed(previous)


def _parsed(raw: bytes) -> Iterable[Event]:
    try:
        yield parse_event(raw)
    except ValueError:
        return
