"""The event protocol: parsing, torn lines, chunked pipes and concurrent writers."""

from __future__ import annotations

import io
import random
import threading
from pathlib import Path

import pytest

from backend.core.events import (
    PROTOCOL_VERSION,
    Artifact,
    DeviceInfo,
    Done,
    Error,
    EventSink,
    GpuSample,
    LineSplitter,
    Log,
    Metric,
    Progress,
    Started,
    Telemetry,
    Warn,
    event_json_schema,
    parse_event,
    read_events,
)

SAMPLES = [
    Started(job_kind="train", pid=42, versions={"torch": "2.13.0"}, device=DeviceInfo(kind="cpu", name="x86_64")),
    Progress(step=3, total_steps=10, epoch=0.3, tokens_per_second=812.5, elapsed_s=4.0, eta_s=9.3),
    Metric(step=3, split="train", values={"loss": 2.5, "learning_rate": 1e-4, "grad_norm": 0.7}),
    Telemetry(
        cpu_percent=50.0,
        ram_used_bytes=1,
        ram_total_bytes=2,
        process_rss_bytes=1,
        gpus=[GpuSample(index=0, name="RTX 4090", memory_used_bytes=5, memory_total_bytes=24)],
    ),
    Log(message="loading"),
    Warn(code="truncated", message="3 examples cut"),
    Artifact(kind="checkpoint", path="/j/checkpoints/checkpoint-3", step=3),
    Error(error_type="data", message="bad", hint="fix it"),
    Done(status="succeeded", step=10, duration_s=12.0, metrics={"eval_loss": 1.2}, adapter_path="/j/adapter"),
    Progress(step=2, total_steps=5, elapsed_s=1.0, stage="merging"),  # no epoch: a merge has none
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_every_event_type_round_trips(event) -> None:
    parsed = parse_event(event.model_dump_json())
    assert parsed == event
    assert parsed.v == PROTOCOL_VERSION


def test_epoch_is_null_and_unshown_for_a_job_without_epochs() -> None:
    """A merge, export or evaluation sends no epoch; the terminal shows one only for training."""
    from backend.cli.console import render

    untrained = parse_event(Progress(step=2, total_steps=5, elapsed_s=1.0).model_dump_json())
    assert untrained.epoch is None and "epoch" not in render(untrained)
    assert "epoch 0.30" in render(Progress(step=3, total_steps=10, epoch=0.3, elapsed_s=4.0))


def test_unknown_or_malformed_lines_are_rejected() -> None:
    for line in ['{"type": "teleport"}', "not json", '{"type": "progress", "step": "x"}', "[]"]:
        with pytest.raises(ValueError, match="not a job event"):
            parse_event(line)


def test_readers_accept_fields_added_later() -> None:
    line = Log(message="hi").model_dump_json()[:-1] + ', "added_in_v2": true}'
    assert parse_event(line) == Log(message="hi", time=parse_event(line).time)


def test_schema_names_every_event_type() -> None:
    schema = str(event_json_schema())
    for event in SAMPLES:
        assert f"'{event.type}'" in schema


def test_read_events_skips_corrupt_and_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = [e.model_dump_json() for e in SAMPLES[:3]]
    path.write_text(good[0] + "\n{garbage\n" + good[1] + "\n\n" + good[2] + "\n" + good[2][:20])
    assert [e.type for e in read_events(path)] == ["started", "progress", "metric"]
    assert list(read_events(tmp_path / "absent.jsonl")) == []


def test_line_splitter_reassembles_records_split_anywhere() -> None:
    lines = [e.model_dump_json() for e in SAMPLES] * 5
    data = ("\n".join(lines) + "\n").encode()
    rng = random.Random(7)
    splitter, out, pos = LineSplitter(), [], 0
    while pos < len(data):
        size = rng.randint(1, 40)
        out += splitter.feed(data[pos : pos + size])
        pos += size
    out += splitter.flush()
    assert out == lines


def test_line_splitter_keeps_multibyte_text_intact() -> None:
    data = (Log(message="Größe ✓ 日本").model_dump_json() + "\n").encode()
    splitter = LineSplitter()
    out = [line for i in range(len(data)) for line in splitter.feed(data[i : i + 1])]
    assert parse_event(out[0]).message == "Größe ✓ 日本"


def test_sink_writes_whole_lines_from_many_threads(tmp_path: Path) -> None:
    stream = io.StringIO()
    sink = EventSink(tmp_path / "events.jsonl", stream)

    def emit(worker: int) -> None:
        for i in range(200):
            sink.emit(Metric(step=i, split="train", values={"loss": float(worker)}))

    threads = [threading.Thread(target=emit, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    from_file = list(read_events(tmp_path / "events.jsonl"))
    assert len(from_file) == 800
    assert [parse_event(line) for line in stream.getvalue().splitlines()] == from_file


def test_sink_survives_a_closed_reader(tmp_path: Path) -> None:
    stream = io.StringIO()
    sink = EventSink(tmp_path / "events.jsonl", stream)
    stream.close()  # the GUI went away
    sink.emit(Log(message="still recorded"))
    sink.close()
    assert [e.message for e in read_events(tmp_path / "events.jsonl")] == ["still recorded"]
