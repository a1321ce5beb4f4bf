"""Fixtures for the Jobs and Monitor page tests: a queue in tmp_path and real stand-in runner processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.events import Metric, read_events
from backend.jobs.queue import JobQueue
from tests.queue_support import Processes


@pytest.fixture
def queue(home: Path) -> Iterator[JobQueue]:
    with JobQueue(home / "queue.sqlite3", home / "jobs") as opened:
        yield opened


@pytest.fixture
def processes(home: Path, queue: JobQueue) -> Iterator[Processes]:
    """Runner processes (with the stand-in worker) a test starts; they and their workers are killed after it."""
    started = Processes(home)
    yield started
    started.cleanup(queue)


def train_metrics(events_path: Path) -> list[Metric]:
    return [e for e in read_events(events_path) if isinstance(e, Metric) and e.split == "train"]
