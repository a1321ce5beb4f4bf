"""Following a job's ``events.jsonl`` by byte offset.

The runner follows the worker through the file, not its stdout pipe: the file
is the same for the runner that started the worker and for one that reattached
after a restart, and a GUI keeps an offset to fetch only what is new. Only
complete lines are consumed: a half-written last line is read again once its
newline arrives, and a corrupt line is counted and skipped.
"""

from __future__ import annotations

from pathlib import Path

from backend.core.events import Event, parse_event

_MAX_READ = 4 << 20


class EventTail:
    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        """Bytes of the file consumed so far: keep it to continue later."""
        self.skipped = 0
        """Complete lines that were not events (garbled by a crash or a disk error)."""
        self.restarted = False
        """The file became shorter than the offset (a fresh retry replaced it), so reading began again at 0."""

    def read(self) -> list[Event]:
        """The events completed since the last call; [] when there are none or the file is gone."""
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                if size < self.offset:
                    self.offset, self.restarted = 0, True
                handle.seek(self.offset)
                data = handle.read(_MAX_READ)
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) == _MAX_READ:  # megabytes without a newline: garbage, not a line in progress
                self.offset += len(data)
                self.skipped += 1
            return []
        self.offset += end + 1
        events: list[Event] = []
        for line in data[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                events.append(parse_event(line))
            except ValueError:
                self.skipped += 1
        return events

    def read_all(self) -> list[Event]:
        """Everything up to the end of the file as it is now."""
        events: list[Event] = []
        while True:
            before = self.offset
            events += self.read()
            if self.offset == before:
                return events
