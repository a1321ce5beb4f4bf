"""The fault taxonomy (issue 26): each fault a user meets is typed, never ``internal … This is a bug``, and an
event line survives the fault it reports. Real processes: a worker whose disk fills after its first checkpoint,
resumed after space is freed; a worker whose job folder cannot be written."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.events import Done, Error, EventSink, Log, Progress, Started, parse_event, read_events
from backend.core.layout import JobLayout
from backend.core.spec import JobSpec
from backend.core.stop import Cancelled
from backend.jobs.failures import classify
from backend.jobs.outcome import AttemptEvents, decide
from backend.jobs.process import ExitInfo
from backend.jobs.queue import JobQueue
from backend.training.checkpoints import checkpoint_step, latest_checkpoint
from tests.datasets import write_colour_task
from tests.queue_support import REPO, Processes, add, run_once, wait_for

STEPS = 24
HOOK = Path(__file__).resolve().parent / "faults"


def _mount(target: Path, *options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", *options, str(target)], capture_output=True)
    return result.returncode == 0


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


# -- the taxonomy ------------------------------------------------------------------------------------------


def _raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    try:
        try:
            if cause is not None:
                raise cause
        except BaseException as inner:
            raise exc from inner
        raise exc
    except BaseException as caught:  # noqa: BLE001 - a traceback like the worker's
        return caught


FAULTS: dict[str, tuple[str, BaseException]] = {
    "disk full (OSError)": ("disk_full", OSError(errno.ENOSPC, "No space left on device", "/jobs/x/events.jsonl")),
    "disk full (torch)": (
        "disk_full",
        RuntimeError(
            "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/3: file write failed"
        ),
    ),
    "disk full (safetensors)": (
        "disk_full",
        Exception(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        ),
    ),
    "quota": ("disk_full", OSError(errno.EDQUOT, "Disk quota exceeded", "/jobs/x/adapter")),
    "host memory": ("out_of_memory", MemoryError()),
    "host memory refused to a fork": ("out_of_memory", OSError(errno.ENOMEM, "Cannot allocate memory")),
    "GPU memory": ("out_of_memory", RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")),
    "permission": ("permission", PermissionError(errno.EACCES, "Permission denied", "/jobs/x")),
    "read-only disk": ("permission", OSError(errno.EROFS, "Read-only file system", "/jobs/x/events.jsonl")),
    "damaged safetensors": (
        "damaged_input",
        Exception("Error while deserializing header: incomplete metadata, file not fully covered"),
    ),
    "damaged torch file": (
        "damaged_input",
        RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory"),
    ),
    "undecodable text": ("damaged_input", UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")),
    "missing dependency": ("dependency", ModuleNotFoundError("No module named 'bitsandbytes'", name="bitsandbytes")),
    "cancelled": ("cancelled", Cancelled("cancel requested")),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_no_fault_is_called_a_bug(name: str) -> None:
    expected, exc = FAULTS[name]
    error = classify(_raised(exc))
    assert error.error_type == expected, error
    assert error.error_type != "internal" and "bug" not in (error.hint or "").lower(), error


def test_a_wrapped_disk_full_error_is_found_in_the_chain() -> None:
    error = classify(
        _raised(
            RuntimeError("saving the checkpoint failed"),
            OSError(errno.ENOSPC, "No space left on device", "/x/ck/optimizer.pt"),
        )
    )
    assert error.error_type == "disk_full" and "/x/ck/optimizer.pt" in error.message


def test_disk_full_names_the_path_its_free_space_and_what_can_be_deleted(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    this = JobLayout.new(jobs, "full")
    (this.checkpoints / "checkpoint-4").mkdir(parents=True)
    (this.checkpoints / "checkpoint-4" / "adapter_model.safetensors").write_bytes(b"x" * 3000)
    old = JobLayout.new(jobs, "old")
    (old.checkpoints / "checkpoint-10").mkdir(parents=True)
    (old.checkpoints / "checkpoint-10" / "optimizer.pt").write_bytes(b"x" * 5000)
    old.events.write_text(Done(status="succeeded", duration_s=1.0).model_dump_json() + "\n")
    unfinished = JobLayout.new(jobs, "running")
    (unfinished.checkpoints / "checkpoint-2").mkdir(parents=True)
    (unfinished.checkpoints / "checkpoint-2" / "optimizer.pt").write_bytes(b"x" * 5000)

    error = classify(_raised(OSError(errno.ENOSPC, "No space left on device", str(this.events))), this)
    assert error.error_type == "disk_full"
    assert str(this.events) in error.message and "free now" in error.message and "2.9 KiB" in error.message
    assert error.hint and str(old.checkpoints) in error.hint and "4.9 KiB" in error.hint
    assert str(unfinished.checkpoints) not in error.hint  # a job that may resume keeps its checkpoints


def test_a_real_bug_is_still_internal() -> None:
    error = classify(_raised(KeyError("lm_head")))
    assert error.error_type == "internal" and "This is a bug" in (error.hint or "")


# -- whole lines or none -----------------------------------------------------------------------------------


def _lines_parse(path: Path) -> list[str]:
    raw = path.read_bytes()
    assert not raw or raw.endswith(b"\n"), f"a partial line at the end: {raw[-80:]!r}"
    for line in raw.splitlines():
        parse_event(line)
    return raw.decode().splitlines()


def test_a_short_write_leaves_no_partial_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    sink = EventSink(path, None)
    sink.log("before")
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data)[:8192]))
    with pytest.raises(OSError) as raised:
        sink.emit(Error(error_type="internal", message="x" * 20_000))
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
    monkeypatch.setattr(os, "write", real)
    sink.log("after")
    sink.close()
    assert [json.loads(line)["message"] for line in _lines_parse(path)] == ["before", "after"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "small"
    if not _mount(disk, "-t", "tmpfs", "-o", "size=64k", "tmpfs"):
        pytest.skip("this machine refuses to mount a tmpfs")
    yield disk
    _umount(disk)


def test_a_real_full_disk_keeps_every_line_whole(small_disk: Path) -> None:
    path = small_disk / "events.jsonl"
    sink = EventSink(path, None)
    failures = 0
    for i in range(400):  # long lines, like an error's traceback, fill 64 KiB within a few dozen
        try:
            sink.emit(Log(message=f"{i} " + "y" * 3000))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            failures += 1
    sink.close()
    assert failures > 0
    lines = _lines_parse(path)
    assert 0 < len(lines) < 400


# -- real processes ----------------------------------------------------------------------------------------


def _spec(tmp_path: Path, model: Path, name: str, steps: int = STEPS) -> JobSpec:
    return JobSpec.from_dict(
        {
            "name": name,
            "base_model": str(model),
            "lora": {"r": 8},
            "training": {
                "max_steps": steps,
                "micro_batch_size": 4,
                "gradient_accumulation_steps": 1,
                "max_seq_length": 64,
            },
            "data": {"path": str(write_colour_task(tmp_path / "colours.jsonl", 120))},
            "schedule": {"save_every_steps": 4, "eval_every_steps": 100},
        }
    )


def test_disk_full_after_a_checkpoint_fails_typed_and_resume_finishes(
    queue: JobQueue, processes: Processes, tmp_path: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = queue.add(_spec(tmp_path, tiny_llama, "full"))
    assert added.job is not None, added.checks
    job = added.job
    # The worker's own os.write meets a disk with 300 bytes left once the first checkpoint is on it.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HOOK), str(REPO)]))
    monkeypatch.setenv("LORA_STUDIO_TEST_FREE_BYTES", "300")
    runner = processes.runner("--device", "cpu", "--once", standin=False)
    assert runner.wait(600) == 0, runner.stdout.read().decode()[-3000:]

    failed = queue.get(job.id)
    log = job.layout.log.read_text()
    assert failed.state == "failed", (failed, log[-3000:])
    assert failed.error_type == "disk_full", failed
    assert str(job.layout.events) in failed.message and "free now" in failed.message
    assert "This is a bug" not in (failed.hint or "")
    assert "job failed (disk_full): The disk ran out of space" in log
    lines = _lines_parse(job.layout.events)
    events = [parse_event(line) for line in lines]
    errors = [e for e in events if isinstance(e, Error)]
    assert [e.error_type for e in errors] == ["disk_full"] and isinstance(events[-1], Done)
    assert not (job.layout.root / "space.reserve").exists()
    with sqlite3.connect(queue.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    # Space freed: resume continues from the last checkpoint to the full step count.
    monkeypatch.delenv("LORA_STUDIO_TEST_FREE_BYTES")
    checkpoint = checkpoint_step(latest_checkpoint(job.layout.checkpoints))
    assert checkpoint
    assert queue.resume(job.id).ok
    runner = processes.runner("--device", "cpu", "--once", standin=False)
    assert runner.wait(600) == 0, runner.stdout.read().decode()[-3000:]
    finished = queue.get(job.id)
    assert (finished.state, finished.step) == ("succeeded", STEPS), job.layout.log.read_text()[-3000:]
    events = list(read_events(job.layout.events))
    starts = [e for e in events if isinstance(e, Started)]
    assert starts[-1].resumed_from_step == checkpoint
    assert [e.step for e in events if isinstance(e, Progress)][-1] == STEPS
    _lines_parse(job.layout.events)


def test_a_job_folder_that_cannot_be_written_is_a_permission_error(tmp_path: Path, tiny_llama: Path) -> None:
    layout = JobLayout.new(tmp_path / "jobs", "locked")
    _spec(tmp_path, tiny_llama, "locked").save(layout.spec)
    if not _mount(layout.root, "--bind", str(layout.root)):
        pytest.skip("this machine refuses a bind mount")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(layout.root)], capture_output=True).returncode:
            pytest.skip("this machine refuses a read-only remount")
        result = subprocess.run(
            [sys.executable, "-m", "backend.jobs.worker", str(layout.root)],
            cwd=REPO,
            capture_output=True,
            timeout=300,
            env={**os.environ, "LORA_STUDIO_HOME": str(tmp_path / "home")},
        )
    finally:
        _umount(layout.root)
    assert result.returncode == 1, result.stderr.decode()[-2000:]
    events = [parse_event(line) for line in result.stdout.splitlines()]
    error = next(e for e in events if isinstance(e, Error))
    assert error.error_type == "permission" and str(layout.root) in error.message, error
    assert isinstance(events[-1], Done) and events[-1].status == "failed"
    assert "job failed (permission)" in result.stderr.decode()


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last block; the file is the space a user would free."""
    filler = disk / "filler.bin"
    with filler.open("wb", buffering=0) as handle:
        for size in (2**20, 2**12, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def test_a_real_disk_filled_after_the_first_checkpoint(
    queue: JobQueue, processes: Processes, tmp_path: Path, tiny_llama: Path
) -> None:
    jobs = tmp_path / "home" / "jobs"
    if not _mount(jobs, "-t", "tmpfs", "-o", "size=320m", "tmpfs"):
        pytest.skip("this machine refuses to mount a tmpfs")
    try:
        added = queue.add(_spec(tmp_path, tiny_llama, "real-full", steps=200))
        assert added.job is not None, added.checks
        job = added.job
        runner = processes.runner("--device", "cpu", "--once", standin=False)
        wait_for(lambda: latest_checkpoint(job.layout.checkpoints), timeout=600, what="the first checkpoint")
        filler = _fill(jobs)
        assert runner.wait(600) == 0, runner.stdout.read().decode()[-3000:]

        failed = queue.get(job.id)
        log = job.layout.log.read_text()
        assert (failed.state, failed.error_type) == ("failed", "disk_full"), (failed, log[-3000:])
        assert "free now" in failed.message and str(jobs) in failed.message, failed.message
        assert "This is a bug" not in (failed.hint or "")
        assert "job failed (disk_full)" in log
        _lines_parse(job.layout.events)
        with sqlite3.connect(queue.path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        filler.unlink()  # the user frees space
        assert queue.resume(job.id).ok
        runner = processes.runner("--device", "cpu", "--once", standin=False)
        assert runner.wait(600) == 0, runner.stdout.read().decode()[-3000:]
        finished = queue.get(job.id)
        assert (finished.state, finished.step) == ("succeeded", 200), job.layout.log.read_text()[-3000:]
        _lines_parse(job.layout.events)
    finally:
        _umount(jobs)


# -- a worker that cannot be started -----------------------------------------------------------------------


def _assert_typed(queue: JobQueue, job_id: int, error_type: str, *named: str) -> None:
    failed = queue.get(job_id)
    assert failed is not None and (failed.state, failed.error_type) == ("failed", error_type), failed
    assert failed.message.startswith("The worker could not be started") and all(n in failed.message for n in named)
    assert failed.hint and "This is a bug" not in failed.hint and "This is a bug" not in failed.message


def _resume_finishes(queue: JobQueue, job_id: int, steps: int) -> None:
    assert queue.resume(job_id).ok
    run_once(queue)
    finished = queue.get(job_id)
    assert finished is not None and (finished.state, finished.step) == ("succeeded", steps), finished


def test_a_missing_worker_program_is_a_missing_dependency(queue: JobQueue, tmp_path: Path) -> None:
    job = add(queue, tmp_path, steps=4)
    program = str(tmp_path / "venv" / "bin" / "python")  # a virtual environment deleted under the runner
    run_once(queue, worker_command=(program, "-m", "backend.jobs.standin"))
    _assert_typed(queue, job.id, "dependency", program)
    _resume_finishes(queue, job.id, 4)


def test_a_worker_program_that_may_not_run_is_a_permission_error(queue: JobQueue, tmp_path: Path) -> None:
    job = add(queue, tmp_path, steps=4)
    program = tmp_path / "worker"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o644)  # not executable, for root too
    run_once(queue, worker_command=(str(program),))
    _assert_typed(queue, job.id, "permission", str(program))
    assert "chmod +x" in (queue.get(job.id).hint or "")
    _resume_finishes(queue, job.id, 4)


def test_a_read_only_job_folder_fails_the_start_typed_and_resume_finishes(queue: JobQueue, tmp_path: Path) -> None:
    job = add(queue, tmp_path, steps=6, save_every=2, script={"exit_at": 3, "code": 7})
    run_once(queue)
    assert queue.get(job.id).state == "interrupted"
    assert queue.resume(job.id).ok  # events.jsonl and worker.log exist: both are opened again
    root = job.layout.root
    if not _mount(root, "--bind", str(root)):
        pytest.skip("this machine refuses a bind mount")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(root)], capture_output=True).returncode:
            pytest.skip("this machine refuses a read-only remount")
        run_once(queue)  # the runner must record the fault and live on, not die on it
    finally:
        _umount(root)
    _assert_typed(queue, job.id, "permission", f"write {root} (the disk is mounted read-only)")
    _resume_finishes(queue, job.id, 6)


def test_a_failure_whose_error_event_was_lost_is_typed_from_the_workers_last_words(tmp_path: Path) -> None:
    layout = JobLayout.new(tmp_path / "jobs", "full")
    seen = AttemptEvents()
    seen.add([Done(status="failed", duration_s=1.0)])  # the error line did not fit on the disk; done did
    tail = (
        "Traceback (most recent call last):\n"
        f"job failed (disk_full): The disk ran out of space while writing {layout.events}.\n"
        "what to do: Free space on that disk, then resume the job.\n"
        "OSError: [Errno 28] No space left on device"
    )
    outcome = decide(layout, seen, ExitInfo(code=1), request=None, forced=None, checkpoint=4, log_tail=tail)
    assert (outcome.state, outcome.error_type) == ("failed", "disk_full")
    assert outcome.message == f"The disk ran out of space while writing {layout.events}."
    assert outcome.hint == "Free space on that disk, then resume the job."
    silent = decide(layout, seen, ExitInfo(code=1), request=None, forced=None, checkpoint=4, log_tail="no words")
    assert silent.error_type == "internal" and "This is a bug" not in (silent.hint or "")
