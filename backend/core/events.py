"""The job event protocol: newline-delimited JSON written by every worker.

Each line is one event with a ``type``; the worker prints it on stdout and appends
it to the job folder's ``events.jsonl``, so a GUI that was closed can rebuild a
run's charts from the file alone. ``PROTOCOL_VERSION`` changes when a field
changes meaning; readers accept new optional fields. See docs/job-protocol.md.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 2  # 2: progress.epoch is null for a job without epochs (was 0.0)

ErrorType = Literal[
    "out_of_memory",
    "disk_full",
    "permission",
    "damaged_input",
    "data",
    "config",
    "dependency",
    "cancelled",
    "internal",
]
"""New types may appear within a protocol version (a reader shows ``message`` and ``hint`` of any type)."""
JobStatus = Literal["succeeded", "cancelled", "paused", "failed"]
"""``paused``: stopped on a pause request (``cancel.request`` holding ``pause``); the queue holds the job to resume."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int = PROTOCOL_VERSION
    time: float = Field(default_factory=time.time, description="Unix time in seconds.")


class DeviceInfo(BaseModel):
    kind: Literal["cuda", "cpu", "mps"]
    name: str
    memory_total_bytes: int | None = None
    count: int = 1


class Started(_Event):
    type: Literal["started"] = "started"
    job_kind: str
    pid: int
    resumed_from_step: int | None = None
    versions: dict[str, str]
    device: DeviceInfo


class Progress(_Event):
    type: Literal["progress"] = "progress"
    step: int
    total_steps: int
    epoch: float | None = Field(None, description="Training only; null for a job kind without epochs.")
    tokens_per_second: float | None = None
    elapsed_s: float
    eta_s: float | None = None
    stage: str | None = Field(
        None, description="Merge and export: what step counts (merging, writing, verifying, ...); null for training."
    )


PREFERENCE_KEYS = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "kl",
    "nll_loss",
    "log_odds_ratio",
)
"""The preference methods' own training metrics (trl's names), sent with loss in ``Metric.values``: the implied
rewards of the chosen and rejected answers, their margin, how often chosen wins, KTO's KL estimate, and ORPO's
likelihood and odds-ratio terms. Held-out values carry the ``eval_`` prefix like eval_loss."""


class Metric(_Event):
    type: Literal["metric"] = "metric"
    step: int
    split: Literal["train", "eval"]
    values: dict[str, float] = Field(description="loss, learning_rate, grad_norm, eval_loss, ...")


class GpuSample(BaseModel):
    index: int
    name: str
    utilization_percent: float | None = None
    memory_used_bytes: int
    memory_total_bytes: int
    temperature_c: float | None = None
    power_w: float | None = None
    compute_capability: str | None = None  # "8.9"


class Telemetry(_Event):
    type: Literal["telemetry"] = "telemetry"
    cpu_percent: float
    ram_used_bytes: int
    ram_total_bytes: int
    process_rss_bytes: int
    gpus: list[GpuSample] = Field(default_factory=list)


class Log(_Event):
    type: Literal["log"] = "log"
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: str


class Warn(_Event):
    type: Literal["warning"] = "warning"
    code: str
    message: str


class Artifact(_Event):
    type: Literal["artifact"] = "artifact"
    kind: Literal["checkpoint", "adapter", "report", "model", "gguf", "modelfile", "export", "version"]
    path: str
    step: int | None = None


class Error(_Event):
    type: Literal["error"] = "error"
    error_type: ErrorType
    message: str
    hint: str | None = None
    details: str | None = Field(None, description="Traceback or raw library message, for a bug report.")


class Done(_Event):
    type: Literal["done"] = "done"
    status: JobStatus
    step: int = 0
    duration_s: float
    metrics: dict[str, float] = Field(default_factory=dict)
    adapter_path: str | None = None
    output_path: str | None = Field(
        None, description="What a merge, export, evaluation or measurement produced: a folder or a file."
    )


Event = Annotated[
    Started | Progress | Metric | Telemetry | Log | Warn | Artifact | Error | Done,
    Field(discriminator="type"),
]
_EVENT = TypeAdapter(Event)


def parse_event(line: str | bytes) -> Event:
    """Parse one line; raises ValueError for anything that is not a known event."""
    try:
        return _EVENT.validate_json(line)
    except ValidationError as exc:
        raise ValueError(f"not a job event: {exc.errors(include_url=False)[0]['msg']}") from None


def event_json_schema() -> dict[str, Any]:
    return _EVENT.json_schema()


def read_events(path: Path) -> Iterator[Event]:
    """Events of a job file, in order; a torn or corrupt line is skipped, never fatal.

    A worker killed mid-write can leave a half line at the end, and a disk error can
    garble one in the middle: the rest of the run's history is still worth showing.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for raw in handle:
            if not raw.endswith(b"\n") or not raw.strip():
                continue
            try:
                yield parse_event(raw)
            except ValueError:
                continue


class LineSplitter:
    """Reassembles lines from a byte stream read in arbitrary chunks.

    A pipe read can end in the middle of a record; splitting each read on newlines
    would turn that record into two pieces of garbage.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        data = self._pending + chunk
        *lines, self._pending = data.split(b"\n")
        return [line.decode("utf-8", errors="replace").rstrip("\r") for line in lines]

    def flush(self) -> list[str]:
        rest, self._pending = self._pending, b""
        return [rest.decode("utf-8", errors="replace")] if rest else []


def append_line(fd: int, data: bytes, path: Path | str | None = None) -> None:
    """Append ``data`` to the file open on ``fd`` (``O_APPEND``) whole or not at all.

    One ``os.write``: a buffered file object would flush a long line in 8 KiB blocks, and a disk that
    fills between two blocks leaves a line cut at 8,192 bytes. On a short write or an error the file is
    cut back to its previous size, which needs no free space, and ``OSError`` (ENOSPC for a short
    write) is raised naming ``path``.
    """
    size = os.fstat(fd).st_size
    try:
        written = os.write(fd, data)
    except OSError as exc:
        _cut_back(fd, size)
        if exc.filename is None and path is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    if written != len(data):
        _cut_back(fd, size)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path) if path is not None else None)


def _cut_back(fd: int, size: int) -> None:
    with contextlib.suppress(OSError):  # nothing more can be done; readers skip a torn line
        os.ftruncate(fd, size)


class EventSink:
    """Writes events to a job's ``events.jsonl`` and to a stream, one whole line per write.

    Each line reaches the file whole or not at all (``append_line``), also when the disk fills while
    it is written: a failed write raises ``OSError`` after leaving the file as it was. Thread-safe:
    the telemetry sampler and the training loop emit concurrently.
    """

    def __init__(self, events_path: Path | None, stream: TextIO | None) -> None:
        self._lock = threading.Lock()
        self._path = events_path
        self._fd = os.open(events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if events_path else None
        self._stream = stream

    def emit(self, event: _Event) -> None:
        line = event.model_dump_json() + "\n"
        with self._lock:
            failed: OSError | None = None
            if self._fd is not None:
                try:
                    append_line(self._fd, line.encode("utf-8"), self._path)
                except OSError as exc:
                    failed = exc  # the pipe's reader still learns what happened, then the caller does
            if self._stream is not None:
                try:
                    self._stream.write(line)
                    self._stream.flush()
                except (OSError, ValueError):
                    # The reader went away (GUI closed), or the stream's disk is full: the file copy counts.
                    self._stream = None
            if failed is not None:
                raise failed

    def log(self, message: str, level: Literal["debug", "info", "warning", "error"] = "info") -> None:
        self.emit(Log(level=level, message=message))

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
