"""The progress callback of merge and export: one call per tensor, so the worker can emit events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Stage = Literal["merging", "writing", "quantizing", "verifying", "copying"]

ProgressFn = Callable[[Stage, int, int], None]
"""Called as ``progress(stage, done, total)``; ``done`` counts finished tensors (or prompts) of ``total``."""


def no_progress(stage: Stage, done: int, total: int) -> None:
    """The callback used when the caller passes none."""
