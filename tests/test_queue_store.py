"""The queue's database, its actions and its pre-flight checks, without workers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from backend.jobs import preflight
from backend.jobs.db import MIGRATIONS, QueueDatabaseError, connect
from backend.jobs.outcome import Outcome
from backend.jobs.process import ProcessId
from backend.jobs.queue import JobQueue
from tests.import_check import run_fresh
from tests.queue_support import add, spec


@pytest.fixture
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> JobQueue:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    with JobQueue() as opened:
        yield opened


# -- the database ------------------------------------------------------------------


def test_the_database_is_wal_versioned_and_in_the_data_folder(queue: JobQueue, tmp_path: Path) -> None:
    assert queue.path == tmp_path / "home" / "queue.sqlite3"
    db = sqlite3.connect(queue.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()


def test_a_database_from_a_newer_version_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    connect(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(QueueDatabaseError, match="newer LoRA Studio"):
        connect(path)


def test_migrations_run_in_order_and_a_failing_one_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    connect(path).close()

    def add_column(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE jobs ADD COLUMN note TEXT")

    def broken(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE jobs ADD COLUMN other TEXT")
        db.execute("ALTER TABLE no_such_table ADD COLUMN x TEXT")

    with pytest.raises(QueueDatabaseError, match="schema 2 failed"):
        connect(path, [*MIGRATIONS, broken])
    db = connect(path)
    assert "other" not in {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.close()

    db = connect(path, [*MIGRATIONS, add_column])
    assert "note" in {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()


# -- adding, ordering, a person's actions ------------------------------------------------


def test_jobs_list_running_then_queued_in_order_and_every_change_moves_the_counter(
    queue: JobQueue, tmp_path: Path
) -> None:
    first, second, third = (add(queue, tmp_path, name) for name in ("first", "second", "third"))
    assert (first.folder / "spec.yaml").is_file() and first.state == "queued"
    before = queue.changes()
    assert queue.move(third.id, 1).ok
    assert queue.changes() > before
    assert [job.id for job in queue.jobs()] == [third.id, first.id, second.id]
    claimed = queue.claim("cpu")
    assert claimed is not None and claimed.id == third.id and claimed.attempt == 1
    assert [job.id for job in queue.jobs()] == [third.id, first.id, second.id]
    assert not queue.move(third.id, 2).ok, "a running job has no place in line"
    assert queue.move(first.id, 99).message.endswith("number 2 in the queue.")


def test_a_paused_queue_starts_nothing_until_resumed_and_an_empty_claim_changes_nothing(
    queue: JobQueue, tmp_path: Path
) -> None:
    first = add(queue, tmp_path, "first")
    assert not queue.paused()
    assert queue.set_paused(True).ok and queue.paused()
    assert JobQueue(queue.path, queue.jobs_dir).paused(), "the flag is in the database, for every process"
    before = queue.changes()
    assert queue.claim("cpu") is None
    assert queue.set_paused(False).message.startswith("The queue is running")
    claimed = queue.claim("cpu")
    assert claimed is not None and claimed.id == first.id
    settled = queue.changes()
    assert queue.claim("cpu") is None and queue.changes() == settled, "nothing claimed, nothing to re-read"
    assert settled > before


def test_pause_holds_a_queued_job_and_resume_releases_it(queue: JobQueue, tmp_path: Path) -> None:
    held, other = add(queue, tmp_path, "held"), add(queue, tmp_path, "other")
    assert queue.pause(held.id).ok
    assert queue.get(held.id).label == "paused"
    assert queue.claim("cpu").id == other.id, "a paused job is skipped"
    assert queue.claim("cpu") is None
    assert queue.resume(held.id).ok
    assert queue.claim("cpu").id == held.id


def test_cancel_of_a_queued_job_is_immediate_and_of_a_running_one_a_request(queue: JobQueue, tmp_path: Path) -> None:
    waiting, running = add(queue, tmp_path, "waiting"), add(queue, tmp_path, "running")
    assert queue.move(running.id, 1).ok
    claimed = queue.claim("cpu")
    assert queue.cancel(waiting.id).ok and queue.get(waiting.id).state == "cancelled"
    result = queue.cancel(claimed.id)
    assert result.ok and "after its current step" in result.message
    job = queue.get(claimed.id)
    assert job.state == "running" and job.request == "cancel" and job.label == "cancelling"
    assert job.layout.cancel_request.exists()
    assert not queue.pause(claimed.id).ok, "a cancel is not turned into a pause"
    assert not queue.cancel(waiting.id).ok
    assert not queue.resume(claimed.id).ok


def test_finish_is_recorded_once_per_attempt(queue: JobQueue, tmp_path: Path) -> None:
    add(queue, tmp_path)
    job = queue.claim("cpu")
    assert queue.finish(job, Outcome("succeeded", step=3))
    assert not queue.finish(job, Outcome("interrupted")), "a second finisher loses"
    assert queue.get(job.id).state == "succeeded"


def test_a_finished_pause_waits_first_in_line_to_resume(queue: JobQueue, tmp_path: Path) -> None:
    first, second = add(queue, tmp_path, "first"), add(queue, tmp_path, "second")
    job = queue.claim("cpu")
    assert job.id == first.id
    queue.pause(job.id)
    assert queue.finish(queue.get(job.id), Outcome("queued", "Paused at step 4.", step=4))
    paused = queue.get(job.id)
    assert (paused.state, paused.held, paused.resume, paused.request) == ("queued", True, True, None)
    assert [j.id for j in queue.jobs("queued")] == [first.id, second.id]
    assert not paused.layout.cancel_request.exists()
    assert queue.resume(job.id).ok
    again = queue.claim("cpu")
    assert again.id == first.id and again.resume and again.attempt == 2


def test_retry_from_scratch_keeps_the_old_run_aside_and_clears_checkpoints(queue: JobQueue, tmp_path: Path) -> None:
    add(queue, tmp_path)
    job = queue.claim("cpu")
    layout = job.layout
    layout.events.write_text('{"old": 1}\n')
    layout.log.write_text("Traceback: boom\n")
    (layout.checkpoints / "checkpoint-3").mkdir(parents=True)
    queue.finish(job, Outcome("failed", "boom", error_type="internal"))

    assert queue.retry(job.id).ok
    again = queue.get(job.id)
    assert (again.state, again.resume, again.message, again.error_type) == ("queued", False, None, None)
    assert (layout.root / "attempts" / "1" / "events.jsonl").read_text() == '{"old": 1}\n'
    assert (layout.root / "attempts" / "1" / "worker.log").exists()
    assert not layout.events.exists() and not layout.checkpoints.exists()
    assert not queue.retry(job.id).ok, "a queued job is not retried"


def test_retry_from_a_checkpoint_and_resume_keep_the_files(queue: JobQueue, tmp_path: Path) -> None:
    add(queue, tmp_path)
    job = queue.claim("cpu")
    (job.layout.checkpoints / "checkpoint-3").mkdir(parents=True)
    queue.finish(job, Outcome("interrupted", cause="signal:SIGKILL"))
    assert queue.retry(job.id, from_checkpoint=True).ok
    assert queue.get(job.id).resume and (job.layout.checkpoints / "checkpoint-3").is_dir()


def test_succeeded_jobs_are_duplicated_not_resumed(queue: JobQueue, tmp_path: Path) -> None:
    add(queue, tmp_path, "original")
    job = queue.claim("cpu")
    queue.finish(job, Outcome("succeeded"))
    assert "duplicate" in queue.resume(job.id).message
    copy = queue.duplicate(job.id)
    assert copy.job is not None and copy.job.id != job.id and copy.job.folder != job.folder
    assert copy.job.name == "original" and copy.job.state == "queued"
    edited = queue.duplicate(job.id, spec(tmp_path, "edited", steps=5))
    assert edited.job.name == "edited"
    assert not queue.duplicate(999).job


def test_delete_removes_row_and_folder_but_never_a_running_job(queue: JobQueue, tmp_path: Path) -> None:
    running, waiting = add(queue, tmp_path, "running"), add(queue, tmp_path, "waiting")
    queue.claim("cpu")
    result = queue.delete(running.id)
    assert not result.ok and "cancel it" in result.message
    assert queue.delete(waiting.id).ok
    assert queue.get(waiting.id) is None and not waiting.folder.exists()
    assert not queue.delete(waiting.id).ok


def test_a_job_whose_folder_was_deleted_by_hand_can_be_deleted_but_not_resumed(queue: JobQueue, tmp_path: Path) -> None:
    import shutil

    add(queue, tmp_path)
    job = queue.claim("cpu")
    queue.finish(job, Outcome("interrupted", cause="lost"))
    shutil.rmtree(job.folder)
    assert "is gone" in queue.resume(job.id).message
    assert "is gone" in queue.retry(job.id).message
    assert queue.delete(job.id).ok


def test_one_runner_per_device_while_it_lives(queue: JobQueue) -> None:
    me = ProcessId.current()
    assert queue.acquire_runner("cpu", me) is None
    assert queue.acquire_runner("cpu", me) is None, "re-entrant for the holder"
    other = ProcessId(me.pid, me.created + 1000)  # same pid, another process: not alive as this identity
    assert queue.acquire_runner("cuda:0", other) is None
    holder = queue.acquire_runner("cpu", other)
    assert holder is not None and holder.pid == me.pid and holder.alive
    assert queue.acquire_runner("cuda:0", me) is None, "a dead holder's lock is taken over"
    queue.release_runner("cpu", me)
    assert queue.acquire_runner("cpu", other) is None


def _claim_all(path: str, jobs_dir: str, device: str, start: multiprocessing.Event, out: multiprocessing.Queue) -> None:
    with JobQueue(Path(path), Path(jobs_dir)) as queue:
        start.wait()
        claimed = []
        while (job := queue.claim(device)) is not None:
            claimed.append(job.id)
        out.put(claimed)


def test_concurrent_claims_from_many_processes_never_share_a_job(queue: JobQueue, tmp_path: Path) -> None:
    ids = {add(queue, tmp_path, f"job{i}").id for i in range(40)}
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    workers = [
        context.Process(target=_claim_all, args=(str(queue.path), str(queue.jobs_dir), f"cuda:{i}", start, out))
        for i in range(4)
    ]
    for worker in workers:
        worker.start()
    start.set()
    claims = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    every = [job_id for claimed in claims for job_id in claimed]
    assert sorted(every) == sorted(ids), "each job claimed exactly once"
    assert all(job.attempt == 1 for job in queue.jobs())


# -- pre-flight -------------------------------------------------------------------------


def test_preflight_reports_problems_as_messages(queue: JobQueue, tmp_path: Path, tiny_llama: Path) -> None:
    good = spec(tmp_path, model=str(tiny_llama))
    checks = preflight.preflight(good, queue.jobs_dir)
    assert not preflight.blocking(checks)
    assert any(c.topic == "gpu" and "CPU" in c.message for c in checks), "no GPU is said, not required"

    missing = good.model_copy(update={"data": good.data.model_copy(update={"path": str(tmp_path / "nope.jsonl")})})
    empty_file = tmp_path / "empty.jsonl"
    empty_file.write_text("\n")
    empty = good.model_copy(update={"data": good.data.model_copy(update={"eval_path": str(empty_file)})})
    no_model = good.model_copy(update={"base_model": str(tmp_path / "no-such-model")})
    for bad, topic, words in (
        (missing, "data", "cannot read"),
        (empty, "data", "is empty"),
        (no_model, "model", "no-such-model"),
    ):
        added = queue.add(bad)
        assert added.job is None
        errors = [c for c in added.checks if c.level == "error"]
        assert errors and errors[0].topic == topic and words in errors[0].message, added.checks

    default = queue.add(spec(tmp_path, model="default"))
    assert default.job is not None
    assert any(c.level == "warning" and "imports it" in c.message for c in default.checks)


def test_a_full_disk_blocks_queueing_with_the_numbers(
    queue: JobQueue, tmp_path: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preflight, "free_bytes", lambda _path: 50 << 20)
    added = queue.add(spec(tmp_path, model=str(tiny_llama)))
    assert added.job is None and not queue.jobs()
    (error,) = [c for c in added.checks if c.level == "error"]
    assert error.topic == "disk" and "50 MiB is free" in error.message and "keep_checkpoints" in error.message
    assert not queue.jobs_dir.exists() or not any(queue.jobs_dir.iterdir()), "no folder for a refused job"


def test_the_queue_modules_the_gui_imports_leave_the_ml_stack_unloaded() -> None:
    code = "import backend.jobs.queue, backend.jobs.runner, backend.jobs.settle, backend.core.tail"
    assert run_fresh(code).loaded == []


def test_cancelling_a_paused_job_that_ran_says_what_it_keeps(queue: JobQueue, tmp_path: Path) -> None:
    add(queue, tmp_path, "ran")
    never = add(queue, tmp_path, "never")
    job = queue.claim("cpu")
    queue.pause(job.id)
    assert queue.finish(queue.get(job.id), Outcome("queued", "Paused at step 4.", step=4))
    assert queue.cancel(job.id).ok
    assert queue.get(job.id).message == "Cancelled while it waited to resume from step 4; its checkpoints are kept."
    assert queue.cancel(never.id).ok and queue.get(never.id).message == "Cancelled before it ran."
