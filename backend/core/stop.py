"""A stop request shared by signal handlers, the cancel-file watcher and the job's loop."""

from __future__ import annotations

import threading


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

    def raise_if_set(self) -> None:
        """Raise Cancelled at a point where the job keeps nothing partial, if a stop was asked for."""
        if self._event.is_set():
            raise Cancelled


class Cancelled(Exception):
    """The job was asked to stop at a point where it keeps nothing partial (before training, mid-merge)."""
