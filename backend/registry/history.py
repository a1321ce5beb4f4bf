"""A named adapter's history: one JSON line per event, appended whole, folded into its current state.

Stages, tags and notes change after a version is written, so they live here rather than in
the version folders. Each event is one ``os.write`` of a whole line to a file opened with
O_APPEND (under the adapter's lock), so a crash leaves either the event or nothing; a torn
last line, which only a power cut or a full disk can leave, is skipped when read, and the
next event starts on a fresh line.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Stage = Literal["production", "staging", "archived"]
STAGES: tuple[Stage, ...] = ("production", "staging", "archived")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers)
        return "unknown"


def append_event(path: Path, event: dict[str, Any]) -> dict[str, Any]:
    """Append ``event`` (stamped with time and user) as one whole line; returns what was written."""
    stamped = {"at": now_iso(), "who": who(), **event}
    line = json.dumps(stamped, ensure_ascii=False, sort_keys=True) + "\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line  # a torn line before: do not glue this event onto it
        data = line.encode("utf-8")
        if os.write(fd, data) != len(data):
            raise OSError(f"short write to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
    return stamped


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events in order; torn or hand-broken lines are skipped (``VersionState`` never sees them)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            events.append(event)
    return events


@dataclass
class VersionState:
    stage: Stage = "staging"
    tags: set[str] = field(default_factory=set)
    notes: list[dict[str, str]] = field(default_factory=list)
    removed: bool = False


@dataclass
class AdapterState:
    """What a named adapter's history says now."""

    versions: dict[int, VersionState] = field(default_factory=dict)
    production_stack: list[int] = field(default_factory=list)
    """Production versions in the order they took over; rollback pops the top."""

    @property
    def production(self) -> int | None:
        return self.production_stack[-1] if self.production_stack else None

    def version(self, number: int) -> VersionState:
        return self.versions.setdefault(number, VersionState())


def fold(events: list[dict[str, Any]], folders: set[int]) -> AdapterState:
    """The state after ``events``, for the version folders that exist (a folder without its event is staged)."""
    state = AdapterState()
    for folder in sorted(folders):
        state.version(folder)
    for event in events:
        number = event.get("version")
        if not isinstance(number, int):
            continue
        kind = event["event"]
        if kind == "stage":
            _set_stage(state, number, event.get("stage"))
        elif kind == "rollback":
            if state.production_stack and state.production_stack[-1] == event.get("from"):
                state.production_stack.pop()
                state.version(event["from"]).stage = "archived"
            if state.production != number:
                state.production_stack.append(number)
            state.version(number).stage = "production"
        elif kind == "tags":
            tags = state.version(number).tags
            tags.update(str(t) for t in event.get("add") or [])
            tags.difference_update(str(t) for t in event.get("remove") or [])
        elif kind == "note":
            state.version(number).notes.append(
                {"at": str(event.get("at")), "who": str(event.get("who")), "text": str(event.get("text", ""))}
            )
        elif kind == "removed":
            state.version(number).removed = True
            state.production_stack = [n for n in state.production_stack if n != number]
    for number in list(state.versions):
        if number not in folders or state.versions[number].removed:
            del state.versions[number]
    state.production_stack = [n for n in state.production_stack if n in state.versions]
    return state


def _set_stage(state: AdapterState, number: int, stage: Any) -> None:
    if stage not in STAGES:
        return
    if stage == "production":
        current = state.production
        if current is not None and current != number:
            state.version(current).stage = "archived"
        if current != number:
            state.production_stack.append(number)
    elif state.production == number:
        state.production_stack.pop()
    state.version(number).stage = stage
