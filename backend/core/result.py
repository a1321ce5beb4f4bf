"""How a job's work ended, whatever its kind: what the worker turns into the ``done`` event."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from backend.core.events import JobStatus


@dataclass(frozen=True)
class JobResult:
    status: JobStatus
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    adapter_path: Path | None = None
    """The adapter a training job saved."""
    output_path: Path | None = None
    """What another kind produced: the merged model, the export folder, the report."""
