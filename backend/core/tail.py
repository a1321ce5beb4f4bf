"""Following a job's ``events.jsonl`` by byte offset: the one reader of the file for the runner, the CLI and the GUI.

The runner follows the worker through the file, not its stdout pipe: the file
is the same for the runner that started the worker and for one that reattached
after a restart, and a GUI keeps an offset to fetch only what is new. Only
complete lines are consumed: a half-written last line stays unconsumed (the
offset stops before it) and is read again once its newline arrives, and a
corrupt line is counted and skipped.

The GUI reads on its own thread in slices (``take`` with a deadline): a long run's file
holds hundreds of thousands of events, and a slice must end within a few milliseconds
(bench/event_loop_lag.py). Events are handed over one at a time, not collected: a slice's
thousands of events collected in a list lived long enough to be promoted to the oldest GC
generation, whose collections then took 40 ms each, six times during a 100,000-step rebuild.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from backend.core.events import Event, parse_event

_CHUNK = 1 << 20
"""Bytes read at a time; a chunk without a newline is garbage, not a line in progress."""
_CHECK_EVERY = 64
"""Lines parsed between two looks at the clock."""


class EventTail:
    def __init__(self, path: Path, offset: int = 0, *, wanted: Callable[[bytes], bool] | None = None) -> None:
        self.path = path
        self.offset = offset
        """Bytes of the file consumed so far: keep it to continue later."""
        self.skipped = 0
        """Complete lines that were not events (garbled by a crash or a disk error)."""
        self.restarted = False
        """The file became shorter than the offset (a fresh retry replaced it), so reading began again at 0."""
        self._wanted = wanted
        """Which raw lines to parse (None: all); the others are consumed unparsed, which is far cheaper."""

    def read(self) -> list[Event]:
        """The events completed since the last call, up to the end of the file as it is now; [] when gone."""
        events: list[Event] = []
        self.take(events.append)
        return events

    def take(self, take: Callable[[Event], None], deadline: float | None = None) -> bool:
        """Hand each event after the offset to ``take``, up to ``deadline`` (``time.perf_counter``); whether more
        is left. A missing file has none."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return False
        with handle:
            size = handle.seek(0, 2)
            if size < self.offset:
                self.offset, self.restarted = 0, True
            while self.offset < size:
                handle.seek(self.offset)
                data = handle.read(_CHUNK)
                end = data.rfind(b"\n")
                if end < 0:
                    if len(data) == _CHUNK:
                        self.offset += len(data)
                        self.skipped += 1
                        continue
                    break
                if not self._parse(data, end + 1, take, deadline):
                    return True
        return False

    def _parse(self, data: bytes, length: int, take: Callable[[Event], None], deadline: float | None) -> bool:
        """Parse the lines in ``data[:length]``; False when the deadline stopped it (the offset says where)."""
        wanted, position, count = self._wanted, 0, 0
        while position < length:
            newline = data.index(b"\n", position)
            line = data[position:newline]
            position = newline + 1
            if line.strip() and (wanted is None or wanted(line)):
                try:
                    event = parse_event(line)
                except ValueError:
                    self.skipped += 1
                else:
                    take(event)
            count += 1
            if deadline is not None and count % _CHECK_EVERY == 0 and time.perf_counter() > deadline:
                self.offset += position
                return position >= length
        self.offset += position
        return True
