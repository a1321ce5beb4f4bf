"""Real runner processes: killed, restarted, racing each other, refused a busy device."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.events import Started, read_events
from backend.jobs.process import ProcessId
from backend.jobs.queue import JobQueue
from backend.jobs.runner import ensure_runner
from tests.queue_support import REPO, Processes, add, job_state, wait_for


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def queue(home: Path) -> Iterator[JobQueue]:
    with JobQueue() as opened:
        yield opened


@pytest.fixture
def processes(home: Path, queue: JobQueue) -> Iterator[Processes]:
    started = Processes(home)
    yield started
    started.cleanup(queue)


def running_at(queue: JobQueue, job_id: int, step: int):
    return lambda: (job := queue.get(job_id)) and job.state == "running" and job.pid and (job.step or 0) >= step and job


def test_killing_the_runner_leaves_the_job_running_and_a_new_runner_reattaches(
    queue: JobQueue, processes: Processes, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, steps=60)
    first = processes.runner("--device", "cpu")
    running = wait_for(running_at(queue, job.id, 3), what="step 3")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    worker = ProcessId(running.pid, running.pid_created)
    assert worker.alive(), "the worker outlives its runner"
    assert job_state(queue, job.id) == "running"

    second = processes.runner("--device", "cpu", "--once")
    assert second.wait(60) == 0
    output = second.stdout.read().decode()
    assert f"job {job.id}: reattached to its worker (pid {running.pid})" in output
    done = queue.get(job.id)
    assert (done.state, done.step, done.attempt, done.pid) == ("succeeded", 60, 1, running.pid)
    assert done.exit_code is None, "a runner that reattached cannot know the exit status"
    assert sum(isinstance(e, Started) for e in read_events(job.layout.events)) == 1


def test_a_worker_that_dies_unwatched_is_recorded_by_whoever_looks_next(
    queue: JobQueue, processes: Processes, tmp_path: Path, home: Path
) -> None:
    job = add(queue, tmp_path, steps=10_000)
    runner = processes.runner("--device", "cpu")
    running = wait_for(running_at(queue, job.id, 2), what="step 2")
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    os.killpg(running.pid, signal.SIGKILL)
    wait_for(lambda: not ProcessId(running.pid, running.pid_created).alive(), what="the worker's end")

    listing = subprocess.run(
        [sys.executable, "-m", "backend.cli", "queue", "list", "--json"],
        cwd=REPO,
        env={**os.environ, "LORA_STUDIO_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    (listed,) = json.loads(listing.stdout)["jobs"]
    assert (listed["state"], listed["cause"]) == ("interrupted", "lost")
    assert "after the runner that watched it had died too" in listed["message"]


def test_a_worker_killed_while_a_reattached_runner_watches_it_is_lost_under_that_runner(
    queue: JobQueue, processes: Processes, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, steps=10_000)
    first = processes.runner("--device", "cpu")
    running = wait_for(running_at(queue, job.id, 2), what="step 2")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    second = processes.runner("--device", "cpu", "--once")
    wait_for(lambda: any(r.alive and r.device == "cpu" for r in queue.runners()), what="the second runner")
    attempt = queue.get(job.id)
    assert attempt is not None
    wait_for(lambda: (queue.get(job.id).step or 0) > (attempt.step or 0), what="progress under the second runner")
    os.killpg(running.pid, signal.SIGKILL)
    assert second.wait(60) == 0
    output = second.stdout.read().decode()
    assert f"job {job.id}: reattached to its worker (pid {running.pid})" in output
    lost = queue.get(job.id)
    assert (lost.state, lost.cause, lost.exit_code) == ("interrupted", "lost", None)
    assert "while a re-attached runner watched it" in lost.message
    assert "only to the process that started the worker" in lost.message


def test_two_runners_racing_for_one_queue_start_each_job_once(
    queue: JobQueue, processes: Processes, tmp_path: Path
) -> None:
    jobs = [add(queue, tmp_path, f"job{i}", steps=3) for i in range(12)]
    racers = [processes.runner("--device", device, "--once", step_s=0.02) for device in ("cuda:0", "cuda:1")]
    for racer in racers:
        assert racer.wait(120) == 0, racer.stdout.read().decode()
    finished = [queue.get(job.id) for job in jobs]
    assert all((job.state, job.attempt) == ("succeeded", 1) for job in finished)
    for job in finished:
        assert sum(isinstance(e, Started) for e in read_events(job.layout.events)) == 1, job.id
    for device in ("cuda:0", "cuda:1"):
        spans = sorted((job.started_at, job.ended_at) for job in finished if job.device == device)
        assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), device
    assert {job.device for job in finished} == {"cuda:0", "cuda:1"}, "both runners took work"


def test_a_second_runner_for_a_busy_device_says_so_and_exits(queue: JobQueue, processes: Processes) -> None:
    first = processes.runner("--device", "cpu")
    wait_for(lambda: any(r.alive and r.pid == first.pid for r in queue.runners()), what="the first runner")
    second = processes.runner("--device", "cpu", standin=False)
    assert second.wait(60) == 1
    assert f"Another runner (pid {first.pid}) already drives cpu" in second.stdout.read().decode()
    os.kill(first.pid, signal.SIGTERM)
    assert first.wait(30) == 0
    assert not queue.runners(), "a runner that stops gives its device back"


def test_ensure_runner_starts_a_background_runner_only_when_none_is_alive(queue: JobQueue) -> None:
    pid = ensure_runner(queue, "cpu")
    assert pid is not None
    try:
        wait_for(lambda: any(r.alive and r.pid == pid for r in queue.runners()), what="the runner")
        assert ensure_runner(queue, "cpu") is None
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not queue.runners(), what="the runner to stop")
