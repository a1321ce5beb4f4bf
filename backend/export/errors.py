"""Errors of merge and export, worded for the person who has to act on them."""

from __future__ import annotations

from typing import Literal

ErrorType = Literal["config", "data", "dependency", "internal"]


class ExportError(Exception):
    """A merge or export that cannot go ahead or did not finish; nothing was left at the destination.

    ``error_type`` and ``hint`` are read by ``backend.jobs.failures.classify`` when a worker reports it.
    """

    def __init__(self, message: str, *, hint: str | None = None, error_type: ErrorType = "config") -> None:
        super().__init__(message)
        self.hint = hint
        self.error_type = error_type


class VerificationError(ExportError):
    """The written model does not compute what its source computes: a converter bug, never a user error."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            hint="Nothing was written. Please report this with the job's worker.log; it is a LoRA Studio bug.",
            error_type="internal",
        )
