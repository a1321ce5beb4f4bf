"""The job event protocol: newline-delimited JSON written by every worker.

Each line is one event with a ``type``; the worker prints it on stdout and appends
it to the job folder's ``events.jsonl``, so a GUI that was closed can rebuild a
run's charts from the file alone. ``PROTOCOL_VERSION`` changes when a field
changes meaning; readers accept new optional fields. See docs/job-protocol.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 2  # 2: progress.epoch is null for a job without epochs (was 0.0)

ErrorType = Literal["out_of_memory", "data", "config", "dependency", "internal"]
JobStatus = Literal["succeeded", "cancelled", "failed"]


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
    kind: Literal["checkpoint", "adapter", "report", "model", "gguf", "modelfile", "export"]
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


class EventSink:
    """Writes events to a job's ``events.jsonl`` and to a stream, one whole line per write.

    Thread-safe: the telemetry sampler and the training loop emit concurrently.
    """

    def __init__(self, events_path: Path | None, stream: TextIO | None) -> None:
        self._lock = threading.Lock()
        self._file = events_path.open("a", encoding="utf-8") if events_path else None
        self._stream = stream

    def emit(self, event: _Event) -> None:
        line = event.model_dump_json() + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)
                self._file.flush()
            if self._stream is not None:
                try:
                    self._stream.write(line)
                    self._stream.flush()
                except (BrokenPipeError, ValueError):
                    # The reader went away (GUI closed); the file copy is what counts.
                    self._stream = None

    def log(self, message: str, level: Literal["debug", "info", "warning", "error"] = "info") -> None:
        self.emit(Log(level=level, message=message))

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
