"""The progress callback shared by every import step, so the CLI and the worker can report stages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Stage = Literal["downloading", "extracting", "converting", "saving", "copying", "fingerprinting"]

ProgressFn = Callable[[Stage, float | None], None]
"""Called as ``progress(stage, fraction)``; ``fraction`` is in [0, 1], or None when unknown."""


def no_progress(stage: Stage, fraction: float | None) -> None:
    """The callback used when the caller passes none."""


def each_stage_once(report: Callable[[Stage], None]) -> ProgressFn:
    """A callback that passes on each new stage once and drops the fractions: for logs and terminals."""
    seen: list[Stage] = []

    def progress(stage: Stage, _fraction: float | None) -> None:
        if not seen or seen[-1] != stage:
            seen.append(stage)
            report(stage)

    return progress
