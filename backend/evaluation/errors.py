"""Errors of the evaluation job, worded for the person who has to act on them."""

from __future__ import annotations

from typing import Literal

ErrorType = Literal["config", "data", "dependency", "internal"]


class EvaluationError(Exception):
    """An evaluation that cannot go ahead: a wrong base, a missing adapter, nothing to evaluate.

    ``error_type`` and ``hint`` are read by ``backend.jobs.failures.classify`` when a worker reports it.
    """

    def __init__(self, message: str, *, hint: str | None = None, error_type: ErrorType = "config") -> None:
        super().__init__(message)
        self.hint = hint
        self.error_type = error_type
