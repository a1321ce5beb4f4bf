"""One number for each thing: how long a job ran (attempt and job), how it ended in its kind's words, and a pause
recorded as a pause, from a real training worker paused and resumed through the queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from backend.cli.console import render
from backend.core.events import DeviceInfo, Done, Progress, Started, read_events
from backend.core.progress import ended_words
from backend.core.run_time import RunTime, read_run_time, run_time
from backend.core.spec import JobSpec
from backend.jobs.queue import JobQueue
from backend.jobs.runner import Runner, RunnerSettings
from tests.datasets import write_colour_task
from tests.queue_support import wait_for

CPU = DeviceInfo(kind="cpu", name="test")


def _started(at: float) -> Started:
    return Started(time=at, job_kind="train", pid=1, device=CPU, versions={})


def test_the_job_time_adds_up_its_attempts_and_leaves_out_the_wait_between_them() -> None:
    events = [
        _started(1000.0),
        Progress(time=1010.0, step=5, total_steps=10, elapsed_s=8.0),  # the trainer's own clock: not the attempt's
        Done(time=1020.0, status="paused", step=5, duration_s=21.0),
        _started(5000.0),  # resumed an hour later
    ]
    running = run_time(events, until=5030.0, running=True)
    assert running == RunTime(attempt_s=30.0, job_s=51.0, attempts=2, running=True)
    assert running.words() == "running for 51 s in all over 2 attempts, 30 s in the current"

    finished = run_time([*events, Done(time=5040.0, status="succeeded", step=10, duration_s=41.0)])
    assert finished == RunTime(attempt_s=41.0, job_s=62.0, attempts=2, running=False)
    assert finished.words() == "ran 1 min in all over 2 attempts, 41 s in the last"
    assert run_time(events[:3]).words() == "ran 21 s"
    # A worker killed without a done event: its attempt ends where the queue recorded the end, or, when a later
    # attempt followed, at its last event.
    assert run_time([_started(1000.0)], until=1080.0).words() == "ran 1 min"
    killed = [_started(0.0), Progress(time=40.0, step=4, total_steps=9, elapsed_s=35.0), _started(500.0)]
    after_a_kill = run_time([*killed, Done(time=530.0, status="succeeded", step=9, duration_s=30.0)])
    assert (after_a_kill.job_s, after_a_kill.attempt_s, after_a_kill.attempts) == (70.0, 30.0, 2)
    assert run_time([Progress(step=1, total_steps=2, elapsed_s=1.0)]) is None


def test_the_file_gives_the_same_run_time_as_the_events(tmp_path: Path) -> None:
    events = [
        _started(0.0),
        *(Progress(time=float(i), step=i, total_steps=99, elapsed_s=float(i)) for i in range(1, 41)),
        _started(500.0),  # the first worker was killed after its step 40
        Progress(time=510.0, step=41, total_steps=99, elapsed_s=10.0),
        Done(time=530.0, status="paused", step=41, duration_s=31.0),
        _started(900.0),
        Progress(time=950.0, step=42, total_steps=99, elapsed_s=50.0),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(event.model_dump_json() + "\n" for event in events))
    assert read_run_time(path, 1000.0, running=True) == run_time(events, 1000.0, running=True)
    assert read_run_time(path) == RunTime(attempt_s=50.0, job_s=40.0 + 31.0 + 50.0, attempts=3, running=False)


def test_each_kind_ends_in_its_own_words() -> None:
    assert ended_words("train", "succeeded", 10) == "succeeded at step 10"
    assert ended_words("train", "paused", 6) == "paused at step 6"
    assert ended_words("merge", "succeeded", 2) == "succeeded", "a merge has stages, not steps"
    assert ended_words("export", "succeeded", 0) == "succeeded"
    assert ended_words(None, "succeeded", 0) == "succeeded"
    assert render(Done(status="succeeded", step=0, duration_s=13, output_path="/x")) == (
        "succeeded; this attempt ran 13 s: /x"
    )


@contextmanager
def _runner() -> Iterator[None]:
    stop = threading.Event()

    def run() -> None:
        with JobQueue() as own:
            Runner(own, RunnerSettings(device="cpu", poll_s=0.1)).run(stop=stop)

    thread = threading.Thread(target=run, name="runner")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(120)


@pytest.mark.slow  # a real training worker, twice: about 40 s on 2 cores
def test_a_paused_training_job_records_a_pause_and_its_two_attempts(
    queue: JobQueue, tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = JobSpec.from_dict(
        {
            "name": "paused",
            "base_model": str(tiny_llama),
            "lora": {"r": 4},
            "training": {"max_steps": 40, "micro_batch_size": 2, "gradient_accumulation_steps": 1,
                         "max_seq_length": 48},
            "data": {"path": str(write_colour_task(tmp_path / "colours.jsonl", 60)), "eval_split": 0.0},
            "schedule": {"save_every_steps": 1000},
        }
    )  # fmt: skip
    added = queue.add(spec)
    assert added.job is not None, added.checks
    job_id = added.job.id
    with _runner():
        wait_for(lambda: (job := queue.get(job_id)) and (job.step or 0) >= 3, what="step 3", timeout=120)
        assert queue.pause(job_id).ok
        assert added.job.layout.cancel_request.read_text().strip() == "pause"
        paused = wait_for(lambda: (job := queue.get(job_id)) and job.paused and job, what="paused", timeout=120)
        first = [e for e in read_events(added.job.layout.events) if isinstance(e, Done)]
        assert [done.status for done in first] == ["paused"], "a pause is not logged as a cancel"
        assert paused.message.startswith(f"Paused at step {first[0].step}")
        assert render(first[0]).startswith(f"paused at step {first[0].step}; this attempt ran")
        assert queue.resume(job_id).ok
        wait_for(lambda: queue.get(job_id).state == "succeeded", what="succeeded", timeout=180)

    job = queue.get(job_id)
    events = list(read_events(job.layout.events))
    dones = [e for e in events if isinstance(e, Done)]
    assert [d.status for d in dones] == ["paused", "succeeded"]
    ran = job.run_time()
    assert ran is not None and ran == read_run_time(job.layout.events)
    assert (ran.attempts, ran.attempt_s, ran.job_s) == (
        2,
        dones[1].duration_s,
        dones[0].duration_s + dones[1].duration_s,
    )
    assert ran.job_s <= job.ended_at - job.created_at, "the wait in the queue and the pause are not run time"
