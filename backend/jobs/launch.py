"""Start a worker process for a job folder and read its event stream.

The worker runs in its own session (process group), so a cancel can signal it
and everything it spawned, and so closing a terminal or the GUI does not take
the job down with it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import cast

from backend.core.events import Event, LineSplitter, parse_event
from backend.core.layout import JobLayout

WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "backend.jobs.worker")
"""The real training worker; the queue runner accepts another command that speaks the same protocol."""


def start_worker(
    layout: JobLayout,
    resume: bool = False,
    *,
    command: Sequence[str] = WORKER_COMMAND,
    env: Mapping[str, str] | None = None,
    pipe_events: bool = True,
) -> subprocess.Popen[bytes]:
    """Launch ``command JOB_DIR [--resume]``; stderr goes to the job's worker.log.

    ``pipe_events=False`` sends stdout to /dev/null, for a launcher that follows
    ``events.jsonl`` instead: an unread pipe would fill up and block the worker.
    ``env`` adds to (not replaces) this process's environment.
    """
    argv = [*command, str(layout.root)]
    if resume:
        argv.append("--resume")
    with layout.log.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_events else subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )


def stream(process: subprocess.Popen[bytes]) -> Iterator[Event | str]:
    """Events from the worker's stdout as they come; a line that is not an event is yielded as text."""
    assert process.stdout is not None
    stdout = cast(io.BufferedReader, process.stdout)  # a pipe opened with the default buffering
    splitter = LineSplitter()
    while chunk := stdout.read1(65536):
        for line in splitter.feed(chunk):
            if line.strip():
                yield _parse(line)
    for line in splitter.flush():
        if line.strip():
            yield _parse(line)


def _parse(line: str) -> Event | str:
    try:
        return parse_event(line)
    except ValueError:
        return line
