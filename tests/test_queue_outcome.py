"""How an attempt's end is judged, and how events.jsonl is followed: pure rules, no processes."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from backend.core.events import DeviceInfo, Done, Error, Progress, Started
from backend.core.layout import JobLayout
from backend.core.tail import EventTail
from backend.jobs.outcome import AttemptEvents, decide
from backend.jobs.process import ExitInfo

STARTED = Started(job_kind="train", pid=1, versions={}, device=DeviceInfo(kind="cpu", name="cpu"))


@pytest.fixture
def layout(tmp_path: Path) -> JobLayout:
    root = tmp_path / "job"
    root.mkdir()
    return JobLayout(root)


def seen(*events) -> AttemptEvents:
    folded = AttemptEvents()
    folded.add([STARTED, Progress(step=7, total_steps=20, epoch=0.3, elapsed_s=1.0), *events])
    return folded


def judge(layout: JobLayout, events: AttemptEvents, code: int | None, oom: bool | None = None, **kw):
    kw.setdefault("request", None)
    kw.setdefault("forced", None)
    kw.setdefault("checkpoint", 5)
    return decide(layout, events, ExitInfo(code, oom), log_tail="last words", **kw)


def test_the_workers_own_done_event_decides(layout: JobLayout) -> None:
    ok = judge(layout, seen(Done(status="succeeded", step=20, duration_s=1, adapter_path="/a")), 0)
    assert (ok.state, ok.step, ok.adapter_path) == ("succeeded", 20, "/a")
    error = Error(error_type="data", message="no usable rows", hint="fix the file")
    failed = judge(layout, seen(error, Done(status="failed", duration_s=1)), 1)
    assert (failed.state, failed.error_type, failed.message, failed.hint) == (
        "failed",
        "data",
        "no usable rows",
        "fix the file",
    )
    cancelled = judge(layout, seen(Done(status="cancelled", step=7, duration_s=1)), 3, request="cancel")
    assert cancelled.state == "cancelled" and "step 5" in cancelled.message
    paused = judge(layout, seen(Done(status="cancelled", step=7, duration_s=1)), 3, request="pause")
    assert paused.state == "queued" and paused.message.startswith("Paused at step 7")


def test_out_of_memory_names_the_estimators_suggested_change(layout: JobLayout) -> None:
    error = Error(error_type="out_of_memory", message="The job ran out of GPU memory.", hint="make it smaller")
    events = seen(error, Done(status="failed", duration_s=1))
    plain = judge(layout, events, 1)
    assert (plain.state, plain.error_type, plain.message) == ("failed", "out_of_memory", error.message)
    advised = judge(layout, events, 1, oom_advice=lambda _layout, _error: "micro_batch_size 4 -> 2")
    assert advised.message.endswith("Suggested change: micro_batch_size 4 -> 2")


@pytest.mark.parametrize(
    ("code", "oom", "cause", "words"),
    [
        (-signal.SIGKILL, True, "oom_killer", "out-of-memory killer stopped"),
        (-signal.SIGKILL, None, "signal:SIGKILL", "often the out-of-memory killer"),
        (-signal.SIGKILL, False, "signal:SIGKILL", "not the out-of-memory killer"),
        (-signal.SIGSEGV, None, "signal:SIGSEGV", "fault in native code"),
        (-signal.SIGABRT, None, "signal:SIGABRT", "crashed (SIGABRT)"),
        (7, None, "exit:7", "status 7"),
        (None, None, "lost", "after the runner that watched it had died too"),
    ],
)
def test_a_worker_that_died_is_interrupted_with_a_typed_cause(
    layout: JobLayout, code: int | None, oom: bool | None, cause: str, words: str
) -> None:
    outcome = judge(layout, seen(), code, oom)
    assert (outcome.state, outcome.cause, outcome.step) == ("interrupted", cause, 7)
    assert words in outcome.message, outcome.message
    assert "continues from step 5" in outcome.hint and outcome.log_tail == "last words"


def test_a_worker_that_died_under_a_reattached_runner_is_lost_with_the_reason(layout: JobLayout) -> None:
    outcome = decide(
        layout, seen(), ExitInfo(None, reattached=True), request=None, forced=None, checkpoint=5, log_tail=""
    )
    assert (outcome.state, outcome.cause) == ("interrupted", "lost")
    assert "while a re-attached runner watched it" in outcome.message
    assert "only to the process that started the worker" in outcome.message
    assert "died too" not in outcome.message


def test_a_worker_that_never_started_and_one_without_checkpoint(layout: JobLayout) -> None:
    outcome = judge(layout, AttemptEvents(), None, checkpoint=None)
    assert outcome.cause == "not_started" and "starts over" in outcome.hint


def test_a_stop_the_runner_had_to_force(layout: JobLayout) -> None:
    cancelled = judge(layout, seen(), -signal.SIGKILL, request="cancel", forced="SIGKILL")
    assert cancelled.state == "cancelled" and "ended with SIGKILL" in cancelled.message
    paused = judge(layout, seen(), -signal.SIGKILL, request="pause", forced="SIGKILL")
    assert paused.state == "queued"


def test_a_deleted_folder_fails_the_job_whatever_else_happened(layout: JobLayout) -> None:
    layout.root.rmdir()
    outcome = judge(layout, seen(Done(status="succeeded", duration_s=1)), 0)
    assert (outcome.state, outcome.error_type) == ("failed", "missing_folder")
    assert "was deleted" in outcome.message


# -- following events.jsonl --------------------------------------------------------------


def test_the_tail_waits_for_a_half_written_line_and_skips_a_corrupt_one(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    started = STARTED.model_dump_json().encode() + b"\n"
    progress = Progress(step=1, total_steps=2, epoch=0.5, elapsed_s=1).model_dump_json().encode()
    path.write_bytes(started + b'{"v": 1, "type": "pro\xff\x00 garbage\n' + progress[:20])
    tail = EventTail(path)
    assert [e.type for e in tail.read()] == ["started"]
    assert tail.skipped == 1 and tail.offset == len(started) + len(b'{"v": 1, "type": "pro\xff\x00 garbage\n')
    assert tail.read() == []
    with path.open("ab") as handle:
        handle.write(progress[20:] + b"\n")
    assert [e.type for e in tail.read()] == ["progress"]


def test_the_tail_starts_again_when_the_file_is_replaced_and_survives_its_absence(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.read() == []
    path.write_text((STARTED.model_dump_json() + "\n") * 3)
    assert len(tail.read()) == 3
    path.write_bytes((STARTED.model_dump_json() + "\n").encode())
    assert len(tail.read()) == 1 and tail.restarted


def test_the_tail_reads_in_slices_and_parses_only_the_wanted_lines(tmp_path: Path) -> None:
    """The GUI's way: a deadline ends a slice between two lines, and the next slice goes on from there."""
    path = tmp_path / "events.jsonl"
    progress = [Progress(step=i, total_steps=200, elapsed_s=i) for i in range(200)]
    path.write_bytes(
        STARTED.model_dump_json().encode() + b"\n" + b"".join(p.model_dump_json().encode() + b"\n" for p in progress)
    )
    tail, seen = EventTail(path), []
    assert tail.take(seen.append, deadline=0.0)  # long past: one look at the clock's worth of lines
    assert 0 < len(seen) < 201
    while tail.take(seen.append, deadline=0.0):
        pass
    assert seen == [STARTED, *progress] and tail.offset == path.stat().st_size
    started_only = EventTail(path, wanted=lambda line: b'"started"' in line).read()
    assert started_only == [STARTED]
