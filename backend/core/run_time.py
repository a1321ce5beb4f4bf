"""How long a job ran: one definition with two labelled numbers, the same in every page and the terminal.

- **attempt**: the wall time of one run of the job's worker: the ``duration_s`` of its ``done``
  event (measured by the worker from its start), or from its ``started`` event to now while it
  runs. A pause ends an attempt and a resume starts another.
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
"""The only events a run time needs: the rest of a long file is skipped unparsed."""


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

    ``until`` ends an attempt that has no ``done`` event: now while the job runs (``running``), or
    when the queue recorded the end of a worker that died without saying so. Without it such an
    attempt counts up to its last known moment, its start.
    """
    spans: list[tuple[float, float | None]] = []
    """Each attempt's start and, once done, its length."""
    for event in events:
        if isinstance(event, Started):
            spans.append((event.time, None))
        elif isinstance(event, Done) and spans and spans[-1][1] is None:
            spans[-1] = (spans[-1][0], event.duration_s)
    if not spans:
        return None
    lengths = [max(0.0, length if length is not None else (until or start) - start) for start, length in spans]
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
    for raw in lines:
        if raw.endswith(b"\n") and _BOUNDARY.search(raw):
            try:
                yield parse_event(raw)
            except ValueError:
                continue
