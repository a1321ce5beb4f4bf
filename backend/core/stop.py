"""A stop request shared by signal handlers, the cancel-file watcher and the job's loop.

``cancel.request`` in the job folder asks a worker to stop; it holds ``pause`` when the stop is a
pause (the queue keeps the job to resume), anything else (an empty file) is a cancel. The worker
ends a paused attempt with ``done`` / ``paused``, so its log says what happened.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

StopKind = Literal["cancel", "pause"]


def ask_to_stop(request_file: Path, kind: StopKind) -> None:
    """Create the job's ``cancel.request`` saying what kind of stop it is."""
    request_file.write_text(f"{kind}\n", encoding="utf-8")


def requested_stop(request_file: Path) -> StopKind:
    """The kind of stop the file asks for: ``pause`` when it says so, else ``cancel``."""
    try:
        return "pause" if request_file.read_text(encoding="utf-8").strip() == "pause" else "cancel"
    except (OSError, UnicodeDecodeError):
        return "cancel"


class StopRequest:
    """Set from a signal handler or a watcher thread; read by the training loop at step boundaries."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    @property
    def status(self) -> Literal["cancelled", "paused"]:
        """How a job that stopped on this request ended: ``paused`` when a pause was asked for."""
        return "paused" if self.reason == "pause" else "cancelled"

    def raise_if_set(self) -> None:
        """Raise Cancelled at a point where the job keeps nothing partial, if a stop was asked for."""
        if self._event.is_set():
            raise Cancelled


class Cancelled(Exception):
    """The job was asked to stop at a point where it keeps nothing partial (before training, mid-merge)."""
