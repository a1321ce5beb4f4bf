"""The runner with real worker subprocesses (the stand-in worker): order, stops, crashes, damage."""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from backend.core.events import Done, Progress, Started, read_events
from backend.jobs import preflight
from backend.jobs.process import ProcessId
from backend.jobs.queue import JobQueue
from backend.jobs.runner import Runner, RunnerSettings
from backend.training.checkpoints import checkpoint_step, latest_checkpoint
from tests.queue_support import add, job_state, run_once, standin_settings, wait_for


@pytest.fixture
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobQueue]:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    with JobQueue() as opened:
        yield opened
        for job in opened.jobs("running"):  # a failed test must not leave workers behind
            if job.pid:
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue


@contextmanager
def runner_thread(settings: RunnerSettings) -> Iterator[None]:
    """A runner in this process, with its own connection, until the block ends."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with JobQueue() as own:
                Runner(own, settings).run(stop=stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test below
            errors.append(exc)

    thread = threading.Thread(target=run, name="runner")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors


def events_of(job) -> list:
    return list(read_events(job.layout.events))


def at_step(queue: JobQueue, job_id: int, step: int):
    return lambda: (job := queue.get(job_id)) and job.state == "running" and (job.step or 0) >= step and job


def test_jobs_run_one_at_a_time_in_queue_order_with_consistent_folders(queue: JobQueue, tmp_path: Path) -> None:
    first, second, third = (add(queue, tmp_path, name, steps=6) for name in ("first", "second", "third"))
    queue.move(third.id, 1)
    run_once(queue)
    jobs = sorted((queue.get(j.id) for j in (first, second, third)), key=lambda job: job.started_at)
    assert [job.id for job in jobs] == [third.id, first.id, second.id]
    assert all(earlier.ended_at <= later.started_at for earlier, later in itertools.pairwise(jobs))
    for job in jobs:
        assert (job.state, job.step, job.total_steps, job.attempt) == ("succeeded", 6, 6, 1)
        events = events_of(job)
        assert isinstance(events[0], Started) and isinstance(events[-1], Done) and events[-1].status == "succeeded"
        assert job.adapter_path == str(job.layout.adapter) and (job.layout.adapter / "adapter_config.json").is_file()
        assert job.device == "cpu" and not ProcessId(job.pid, job.pid_created).alive()


def test_cancel_stops_after_a_step_with_a_checkpoint_and_resume_finishes_the_run(
    queue: JobQueue, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, steps=40, save_every=100)
    with runner_thread(standin_settings(step_s=0.05)):
        wait_for(at_step(queue, job.id, 5), what="step 5")
        assert queue.cancel(job.id).ok
        wait_for(lambda: job_state(queue, job.id) == "cancelled", what="cancelled")
        cancelled = queue.get(job.id)
        stopped = cancelled.step
        assert 5 <= stopped < 40 and f"Cancelled at step {stopped}" in cancelled.message
        assert checkpoint_step(latest_checkpoint(job.layout.checkpoints)) == stopped
        assert not job.layout.cancel_request.exists()

        assert queue.resume(job.id).ok
        wait_for(lambda: job_state(queue, job.id) == "succeeded", what="succeeded")
    events = events_of(job)
    starts = [e for e in events if isinstance(e, Started)]
    assert [s.resumed_from_step for s in starts] == [None, stopped]
    resumed_steps = [e.step for e in events[events.index(starts[1]) :] if isinstance(e, Progress)]
    assert resumed_steps == list(range(stopped + 1, 41))
    assert queue.get(job.id).step == 40 and queue.get(job.id).attempt == 2


def test_pause_lets_the_next_job_run_and_resume_continues_from_the_checkpoint(queue: JobQueue, tmp_path: Path) -> None:
    long, short = add(queue, tmp_path, "long", steps=40, save_every=100), add(queue, tmp_path, "short", steps=3)
    with runner_thread(standin_settings(step_s=0.05)):
        wait_for(at_step(queue, long.id, 3), what="step 3")
        assert queue.pause(long.id).ok
        assert queue.get(long.id).label == "pausing"
        wait_for(lambda: job_state(queue, short.id) == "succeeded", what="the short job")
        paused = queue.get(long.id)
        assert paused.label == "paused" and paused.resume and paused.message.startswith("Paused at step")
        assert [job.id for job in queue.jobs("queued")] == [long.id]
        assert queue.resume(long.id).ok
        wait_for(lambda: job_state(queue, long.id) == "succeeded", what="the resumed job")
    starts = [e for e in events_of(long) if isinstance(e, Started)]
    assert starts[1].resumed_from_step == paused.step
    assert [e.status for e in events_of(long) if isinstance(e, Done)] == ["paused", "succeeded"], "pause, not cancel"


def test_a_worker_that_ignores_a_stop_gets_sigterm_then_sigkill(queue: JobQueue, tmp_path: Path) -> None:
    job = add(queue, tmp_path, steps=10_000, script={"ignore_stop": True})
    with runner_thread(standin_settings(step_s=0.05, term_after_s=0.3, kill_after_s=1.0)):
        running = wait_for(at_step(queue, job.id, 2), what="step 2")
        queue.cancel(job.id)
        wait_for(lambda: job_state(queue, job.id) == "cancelled", what="cancelled")
    ended = queue.get(job.id)
    assert "did not stop in time and was ended with SIGKILL" in ended.message
    assert ended.exit_code == -signal.SIGKILL
    assert not ProcessId(running.pid, running.pid_created).alive()


def test_kill_9_of_a_worker_is_an_interruption_that_resumes_to_the_same_final_step(
    queue: JobQueue, tmp_path: Path
) -> None:
    job = add(queue, tmp_path, steps=30, save_every=3)
    with runner_thread(standin_settings(step_s=0.05)):
        running = wait_for(at_step(queue, job.id, 8), what="step 8")
        os.kill(running.pid, signal.SIGKILL)
        wait_for(lambda: job_state(queue, job.id) == "interrupted", what="interrupted")
        interrupted = queue.get(job.id)
        assert interrupted.cause in ("signal:SIGKILL", "oom_killer") and interrupted.exit_code == -signal.SIGKILL
        assert "SIGKILL" in interrupted.message and "Resuming continues from step" in interrupted.hint
        checkpoint = checkpoint_step(latest_checkpoint(job.layout.checkpoints))
        assert queue.resume(job.id).ok
        wait_for(lambda: job_state(queue, job.id) == "succeeded", what="succeeded")
    events = events_of(job)
    assert events[-1].status == "succeeded" and events[-1].step == 30 == queue.get(job.id).step
    assert [e.resumed_from_step for e in events if isinstance(e, Started)] == [None, checkpoint]


@pytest.mark.parametrize(
    ("script", "state", "cause", "error_type", "words"),
    [
        ({"die_at": 2, "signal": "SIGSEGV"}, "interrupted", "signal:SIGSEGV", None, "fault in native code"),
        ({"die_at": 2, "signal": "SIGABRT"}, "interrupted", "signal:SIGABRT", None, "SIGABRT"),
        ({"exit_at": 2, "code": 7}, "interrupted", "exit:7", None, "status 7"),
        ({"fail_at": 2, "error_type": "out_of_memory"}, "failed", None, "out_of_memory", "Suggested change: halve"),
        ({"fail_at": 2, "error_type": "data"}, "failed", None, "data", "stand-in failure (data)"),
    ],
)
def test_every_way_a_worker_ends_is_recorded_with_its_cause(
    queue: JobQueue, tmp_path: Path, script: dict, state: str, cause: str | None, error_type: str | None, words: str
) -> None:
    job = add(queue, tmp_path, script=script)
    (job.layout.log).write_text("first line\n" + "\n".join(f"log line {i}" for i in range(50)) + "\n")
    run_once(queue, oom_advice=lambda _layout, _error: "halve training.micro_batch_size")
    ended = queue.get(job.id)
    assert (ended.state, ended.cause, ended.error_type, ended.step) == (state, cause, error_type, 2)
    assert words in ended.message, ended.message
    assert ended.log_tail.endswith("log line 49") and "first line" not in ended.log_tail


def test_a_corrupt_line_is_skipped_and_a_torn_one_sealed_for_the_next_attempt(queue: JobQueue, tmp_path: Path) -> None:
    garbled = add(queue, tmp_path, "garbled", script={"garbage_at": 2})
    torn = add(queue, tmp_path, "torn", script={"torn_at": 4})
    run_once(queue)
    assert queue.get(garbled.id).state == "succeeded"
    assert queue.get(torn.id).state == "interrupted"
    assert not torn.layout.events.read_bytes().endswith(b"\n")

    assert queue.resume(torn.id).ok
    run_once(queue)
    assert queue.get(torn.id).state == "succeeded"
    events = events_of(torn)
    assert [e.resumed_from_step for e in events if isinstance(e, Started)] == [None, 3]
    assert events[-1].status == "succeeded"


def test_a_job_folder_deleted_by_hand_fails_that_job_and_the_runner_goes_on(queue: JobQueue, tmp_path: Path) -> None:
    import shutil

    gone_early, running, after = (
        add(queue, tmp_path, name, steps=s) for name, s in (("a", 5), ("b", 10_000), ("c", 3))
    )
    shutil.rmtree(gone_early.folder)
    with runner_thread(standin_settings(step_s=0.05)):
        live = wait_for(at_step(queue, running.id, 2), what="step 2")
        running.folder.rename(tmp_path / "trash")  # a file manager's delete: moved away while the worker writes
        wait_for(lambda: job_state(queue, after.id) == "succeeded", what="the next job")
    for job_id in (gone_early.id, running.id):
        failed = queue.get(job_id)
        assert (failed.state, failed.error_type) == ("failed", "missing_folder") and "deleted" in failed.message
    assert not ProcessId(live.pid, live.pid_created).alive()
    assert queue.delete(running.id).ok


def test_a_disk_that_filled_up_while_the_job_waited_fails_it_at_launch(
    queue: JobQueue, tmp_path: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = add(queue, tmp_path, model=str(tiny_llama))
    monkeypatch.setattr(preflight, "free_bytes", lambda _path: 10 << 20)
    run_once(queue)
    failed = queue.get(job.id)
    assert (failed.state, failed.error_type, failed.attempt) == ("failed", "disk_full", 1)
    assert "Not enough disk space" in failed.message and not failed.layout.events.exists()
