"""A job's events.jsonl turned into chart points, log lines and an ETA, read in slices on the GUI thread.

The worker writes every event to the job folder, so the GUI rebuilds a run from the file
(after a restart, or when another job is selected) and then follows what is appended. A long
run holds hundreds of thousands of events, a second or more of parsing. That work runs on the
GUI thread, in slices of a few milliseconds, one per turn of the event loop
(``FeedFollower``): on a pool thread it held the GIL for most of those seconds, and the GUI
thread, waiting for it behind the reader, missed its timers by 250-650 ms on a loaded 2-core
machine (bench/results/event_loop_lag.md). Sliced, the loop is never blocked for longer than
one slice, and the charts fill in as the file is read.

``EventFeed`` needs no Qt; ``FeedFollower`` paces an ``EventFeed``. The ETA and the words shown come from
``backend.core.progress`` (``eta_seconds``, ``duration_words``, ``ended_words``) and the run time from
``backend.core.run_time``, as the terminal's do.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from backend.core.events import (
    Artifact,
    Done,
    Error,
    Event,
    Log,
    Metric,
    Progress,
    Started,
    Telemetry,
    Warn,
)
from backend.core.progress import duration_words, ended_words
from backend.core.tail import EventTail

_RECENT_PROGRESS = 20
"""Progress events an ETA is taken over: about the last 20 steps."""
_TAIL_BYTES = 32 << 10

Points = dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
"""chart key -> series key -> (xs, ys) as float arrays."""

# Chart and series keys, shared with the Monitor page.
TRAIN_VALUES = {
    "loss": ("loss", "train"),
    "learning_rate": ("lr", "lr"),
    "grad_norm": ("grad_norm", "grad_norm"),
    # Preference jobs (backend.core.events.PREFERENCE_KEYS): app.monitor_charts.preference_charts
    "rewards/chosen": ("rewards", "chosen"),
    "rewards/rejected": ("rewards", "rejected"),
    "rewards/margins": ("rewards", "margin"),
    "rewards/accuracies": ("pref_accuracy", "train"),
}
EVAL_VALUES = {
    "eval_loss": ("loss", "eval"),
    "eval_rewards/margins": ("rewards", "eval_margin"),
    "eval_rewards/accuracies": ("pref_accuracy", "eval"),
}


@dataclass
class Batch:
    """What one read of the file brought."""

    reset: bool = False
    """Replace what is shown: the first read of a job, or its file was replaced (a retry from scratch)."""
    points: Points = field(default_factory=dict)
    collected: dict[str, dict[str, tuple[list[float], list[float]]]] = field(default_factory=dict, repr=False)
    """The points as lists while the file is read; they become ``points`` when the batch is handed over."""
    gpus: dict[int, str] = field(default_factory=dict)
    """GPU index -> name, for GPUs that appear in this batch's telemetry."""
    lines: list[str] = field(default_factory=list)
    """Log, warning, error, checkpoint and start/end events, one line each."""
    events: int = 0
    metric_events: int = 0
    skipped: int = 0
    """Lines that were not events (garbled by a crash), so far."""
    started: Started | None = None
    """The latest start in this batch."""
    done: Done | None = None
    last_progress: Progress | None = None
    last_telemetry: Telemetry | None = None
    recent: list[Progress] = field(default_factory=list)
    """The last progress events of the current attempt, for an ETA (taken after this batch)."""
    error: str | None = None
    """Why the file could not be read."""
    more: bool = False
    """The read stopped at its time budget with more of the file to read."""

    def add(self, chart: str, series: str, x: float, y: float | None) -> None:
        if y is None:
            return
        xs, ys = self.collected.setdefault(chart, {}).setdefault(series, ([], []))
        xs.append(x)
        ys.append(y)


_FREQUENT = re.compile(rb'"type":\s*"(?:progress|metric|telemetry)"')
"""The events a log does not show: skipped before parsing when only log lines are wanted."""
SLICE_S = 0.008
"""How long one slice of reading may take on the GUI thread."""


class EventFeed:
    """Follows one job's events file from its start; ``read`` returns what is new as a ``Batch``.

    Not thread-safe: one read at a time (``FeedFollower`` sees to it).
    """

    def __init__(self, path: Path, *, points: bool = True, lines: bool = True) -> None:
        self.path = path
        self._points, self._lines = points, lines
        self._tail = self._new_tail()
        self._identity: int | None = None
        """The file's inode: a retry from scratch moves the old file away and starts a new one."""
        self._first_read = True
        self.origin: float | None = None
        """Time of the first event: telemetry is charted in seconds since then."""
        self.recent: deque[Progress] = deque(maxlen=_RECENT_PROGRESS)
        self.boundaries: list[Event] = []
        """Every attempt's start and end so far, and the last event of one that ended without ``done``: its run
        time (``backend.core.run_time.run_time``)."""
        self._last: Event | None = None
        self.kind: str | None = None
        """The job's kind, from its start: how its end is worded."""
        self.events = 0
        self.metric_events = 0

    def _new_tail(self) -> EventTail:
        return EventTail(self.path, wanted=None if self._points else _infrequent)

    @property
    def offset(self) -> int:
        return self._tail.offset

    def has_news(self) -> bool:
        """Whether the file's size differs from what was read (cheap: one stat)."""
        try:
            info = os.stat(self.path)
        except OSError:
            return self._first_read
        return self._first_read or info.st_size != self._tail.offset or info.st_ino != self._identity

    def read(self, budget_s: float | None = None) -> Batch:
        """What is new since the last read, or as much of it as ``budget_s`` seconds allow (``Batch.more``)."""
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        batch = Batch(reset=self._first_read)
        self._first_read = False
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return batch
        except OSError as exc:
            batch.error = f"{self.path.name} could not be read: {exc.strerror or exc}"
            return batch
        replaced = self._identity is not None and info.st_ino != self._identity
        if replaced or info.st_size < self._tail.offset:  # a retry from scratch: start the charts again
            self._tail = self._new_tail()
            self.origin = None
            self.recent.clear()
            self.boundaries.clear()
            self._last = None
            self.events = self.metric_events = 0
            batch.reset = True
        self._identity = info.st_ino
        try:
            batch.more = self._tail.take(partial(self._take, batch=batch), deadline)
        except OSError as exc:
            batch.error = f"{self.path.name} could not be read: {exc.strerror or exc}"
        # Arrays for the charts (LiveChart converts a list of 100,000 values point by point).
        batch.points = {
            chart: {key: (np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)) for key, (xs, ys) in series.items()}
            for chart, series in batch.collected.items()
        }
        batch.collected = {}
        batch.skipped = self._tail.skipped
        batch.recent = list(self.recent)
        self.events += batch.events
        self.metric_events += batch.metric_events
        return batch

    def _take(self, event: Event, batch: Batch) -> None:
        if isinstance(event, Started) and self._last is not None and not isinstance(self._last, Done):
            self.boundaries.append(self._last)  # the last sign of life of an attempt killed without a done event
        self._last = event
        batch.events += 1
        if self.origin is None:
            self.origin = event.time
        if isinstance(event, Metric):
            batch.metric_events += 1
            if self._points:
                values = TRAIN_VALUES if event.split == "train" else EVAL_VALUES
                for name, (chart, series) in values.items():
                    batch.add(chart, series, event.step, event.values.get(name))
        elif isinstance(event, Progress):
            self.recent.append(event)
            batch.last_progress = event
            if self._points:
                batch.add("tokens", "tps", event.step, event.tokens_per_second)
        elif isinstance(event, Telemetry):
            batch.last_telemetry = event
            if self._points:
                self._telemetry(event, batch)
        else:
            if isinstance(event, Started):
                batch.started = event
                self.kind = event.job_kind
                self.recent.clear()  # a new attempt: its pace, not the last one's
                self.boundaries.append(event)
            elif isinstance(event, Done):
                batch.done = event
                self.boundaries.append(event)
            if self._lines and (line := event_line(event, self.kind)) is not None:
                batch.lines.append(line)

    def _telemetry(self, event: Telemetry, batch: Batch) -> None:
        x = event.time - (self.origin or event.time)
        batch.add("cpu", "cpu", x, event.cpu_percent)
        batch.add("ram", "used", x, event.ram_used_bytes)
        batch.add("ram", "rss", x, event.process_rss_bytes)
        batch.add("ram", "total", x, event.ram_total_bytes)
        for gpu in event.gpus:
            key = f"gpu{gpu.index}"
            batch.gpus[gpu.index] = gpu.name
            batch.add("gpu_util", key, x, gpu.utilization_percent)
            batch.add("gpu_mem", key, x, gpu.memory_used_bytes)
            batch.add("gpu_mem", f"{key}_total", x, gpu.memory_total_bytes)
            batch.add("gpu_temp", key, x, gpu.temperature_c)
            batch.add("gpu_power", key, x, gpu.power_w)


def event_line(event: Event, kind: str | None = None) -> str | None:
    """One event as a line of the job's log; None for the frequent ones (progress, metrics, telemetry).

    ``kind``: the job's, which says whether its end names a step (training) or not (a merge's stages)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    if isinstance(event, Started):
        where = f"{event.device.kind.upper() if event.device.kind != 'cpu' else 'CPU'} ({event.device.name})"
        how = f", continuing from step {event.resumed_from_step}" if event.resumed_from_step is not None else ""
        text = f"Started on {where}{how}."
    elif isinstance(event, Log):
        text = event.message if event.level == "info" else f"{event.level}: {event.message}"
    elif isinstance(event, Warn):
        text = f"Warning ({event.code}): {event.message}"
    elif isinstance(event, Artifact):
        names = {"gguf": "GGUF file", "modelfile": "Ollama Modelfile", "version": "Registry version"}
        what = names.get(event.kind, event.kind.capitalize())
        at = f" at step {event.step}" if event.step is not None else ""
        text = f"{what} saved{at}: {event.path}"
    elif isinstance(event, Error):
        text = f"Error ({event.error_type}): {event.message}"
        if event.hint:
            text += f" What to do: {event.hint}"
    elif isinstance(event, Done):
        ended = ended_words(kind, event.status, event.step)
        text = f"Ended: {ended}; this attempt ran {duration_words(event.duration_s)}."
    else:
        return None
    return f"{stamp}  {text}"


def recent_progress(path: Path, offset: int = 0) -> list[Progress]:
    """The progress events near the end of a job's file (after ``offset``), without reading all of it.

    Reading starts up to ``_TAIL_BYTES`` before the end, most likely inside a line: that cut line is
    not an event and is skipped like a corrupt one.
    """
    found: deque[Progress] = deque(maxlen=_RECENT_PROGRESS)

    def keep(event: Event) -> None:
        if isinstance(event, Progress):
            found.append(event)

    try:
        EventTail(path, max(offset, path.stat().st_size - _TAIL_BYTES), wanted=_is_progress).take(keep)
    except OSError:
        return []
    return list(found)


def _infrequent(line: bytes) -> bool:
    return _FREQUENT.search(line) is None


def _is_progress(line: bytes) -> bool:
    return b'"progress"' in line


# -- on the GUI thread, in slices -------------------------------------------------------------


class FeedFollower(QObject):
    """Reads one job's feed in slices of ``SLICE_S``, one per turn of the event loop, when ``poll`` finds
    the file changed; ``batch_ready`` carries each slice's ``Batch`` (the first of a job has ``reset``)."""

    batch_ready = Signal(object)

    def __init__(
        self, *, points: bool = True, lines: bool = True, slice_s: float = SLICE_S, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._points, self._lines, self._slice_s = points, lines, slice_s
        self._feed: EventFeed | None = None
        self._next = QTimer(self, singleShot=True, interval=0)
        self._next.timeout.connect(self._read_slice)

    @property
    def feed(self) -> EventFeed | None:
        return self._feed

    def follow(self, path: Path | None) -> None:
        """Follow another file (None: none), from its start."""
        self._next.stop()
        self._feed = EventFeed(path, points=self._points, lines=self._lines) if path is not None else None
        self.poll()

    def poll(self) -> None:
        """Read what is new, unless a read is under way or nothing changed."""
        if self._feed is not None and not self._next.isActive() and self._feed.has_news():
            self._read_slice()

    def stop(self) -> None:
        """Stop reading (the page is hidden); the next ``poll`` goes on from where it stopped."""
        self._next.stop()

    def busy(self) -> bool:
        return self._next.isActive()

    @Slot()
    def _read_slice(self) -> None:
        if self._feed is None:
            return
        batch = self._feed.read(self._slice_s)
        if batch.more:
            self._next.start()
        self.batch_ready.emit(batch)
