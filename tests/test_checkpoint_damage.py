"""Checkpoints checked before they are trusted: real training runs whose checkpoints are then damaged on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backend.core.events import Done, Error, Progress, Started, Warn, read_events
from backend.core.layout import JobLayout
from backend.jobs.worker import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from backend.training.checkpoints import (
    MARKER,
    NoValidCheckpoint,
    check_checkpoint,
    checkpoint_step,
    latest_checkpoint,
    pick_checkpoint,
    write_marker,
)
from tests.test_worker import make_job, of_type, run

STEPS = 40


@pytest.fixture(autouse=True)
def _worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _truncate(path: Path, keep: int = 100) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def _fake_checkpoint(folder: Path, step: int, *, marker: bool = True) -> Path:
    folder.mkdir(parents=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    (folder / "adapter_model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if marker:
        write_marker(folder, step)
    return folder


def test_the_checks_name_what_is_wrong_without_torch(tmp_path: Path) -> None:
    good = _fake_checkpoint(tmp_path / "checkpoint-1", 1)
    assert check_checkpoint(good) is None
    assert json.loads((good / MARKER).read_text())["files"]["adapter_model.safetensors"] > 16

    cut = _fake_checkpoint(tmp_path / "checkpoint-2", 2, marker=False)  # written before the marker existed
    assert check_checkpoint(cut) is None
    weights = cut / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])
    assert "cut short" in (check_checkpoint(cut) or "")

    sized = _fake_checkpoint(tmp_path / "checkpoint-3", 3)
    (sized / "trainer_state.json").write_text('{"global_step": 33}')
    assert "trainer_state.json is" in (check_checkpoint(sized) or "")

    state = _fake_checkpoint(tmp_path / "checkpoint-4", 4, marker=False)
    (state / "trainer_state.json").write_text('{"global_st')
    assert "does not parse" in (check_checkpoint(state) or "")

    optimizer = _fake_checkpoint(tmp_path / "checkpoint-5", 5, marker=False)
    (optimizer / "optimizer.pt").write_bytes(b"PK\x03\x04 cut")
    assert "optimizer.pt" in (check_checkpoint(optimizer) or "")

    source = Path(__import__("backend.training.checkpoints", fromlist=["x"]).__file__).read_text()
    assert "import torch" not in source


def test_picking_sets_damaged_checkpoints_aside_and_refuses_when_none_is_whole(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    for step in (2, 4, 6):
        _fake_checkpoint(root / f"checkpoint-{step}", step)
    _truncate(root / "checkpoint-6" / "adapter_model.safetensors", 20)
    assert latest_checkpoint(root) == root / "checkpoint-4"  # reading moves nothing
    assert (root / "checkpoint-6").is_dir()

    picked = pick_checkpoint(root)
    assert picked.path == root / "checkpoint-4"
    assert [(s.path.name, s.kept_at.name) for s in picked.skipped] == [("checkpoint-6", "damaged-checkpoint-6")]
    assert "adapter_model.safetensors" in picked.skipped[0].reason

    for step in (2, 4):
        (root / f"checkpoint-{step}" / "trainer_state.json").write_text("{")
    with pytest.raises(NoValidCheckpoint) as refused:
        pick_checkpoint(root)
    assert "damaged-checkpoint-6" in str(refused.value) and "queue retry" in refused.value.hint
    with pytest.raises(NoValidCheckpoint):  # and again on the next resume: the damaged ones are still there
        pick_checkpoint(root)
    assert sorted(p.name for p in root.iterdir()) == [f"damaged-checkpoint-{s}" for s in (2, 4, 6)]


@pytest.fixture(scope="module")
def cancelled_job(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> JobLayout:
    """A run cancelled after step 6 (it stops a little later), leaving two or three checkpoints with markers."""
    tmp_path = tmp_path_factory.mktemp("cancelled")
    layout = make_job(
        tmp_path,
        tiny_llama,
        "cancelled",
        training={"max_steps": STEPS},
        schedule={"save_every_steps": 4, "eval_every_steps": 100, "keep_checkpoints": 3},
    )

    def cancel_after_step_10(event, _process) -> None:
        if isinstance(event, Progress) and event.step == 6:
            layout.cancel_request.touch()

    code, _ = run(layout, on_event=cancel_after_step_10)
    assert code == EXIT_CANCELLED, layout.log.read_text()[-3000:]
    layout.cancel_request.unlink()
    steps = _steps(layout)
    assert len(steps) >= 2 and steps[-1] < STEPS, steps
    assert all((layout.checkpoints / f"checkpoint-{s}" / MARKER).is_file() for s in steps)
    return layout


def _steps(layout: JobLayout) -> list[int]:
    return sorted(s for p in layout.checkpoints.iterdir() if (s := checkpoint_step(p)) is not None)


def _copy(layout: JobLayout, tmp_path: Path) -> JobLayout:
    target = tmp_path / layout.root.name
    shutil.copytree(layout.root, target)
    return JobLayout(target)


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_resumed(
    cancelled_job: JobLayout, tmp_path: Path
) -> None:
    layout = _copy(cancelled_job, tmp_path)
    *_, previous, newest = _steps(layout)
    damaged = layout.checkpoints / f"checkpoint-{newest}"
    _truncate(damaged / "adapter_model.safetensors")

    code, events = run(layout, resume=True)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    started = of_type(events, Started)[0]
    assert started.resumed_from_step == previous
    warned = [w for w in of_type(events, Warn) if w.code == "damaged_checkpoint"]
    assert len(warned) == 1 and str(damaged) in warned[0].message
    assert "adapter_model.safetensors" in warned[0].message
    assert [p.step for p in of_type(events, Progress)] == list(range(previous + 1, STEPS + 1))
    assert events[-1].status == "succeeded" and events[-1].step == STEPS
    kept = layout.checkpoints / f"damaged-checkpoint-{newest}"
    assert kept.is_dir() and (kept / "adapter_model.safetensors").stat().st_size == 100
    assert not of_type(events, Error)


def test_a_checkpoint_written_before_the_marker_still_resumes(cancelled_job: JobLayout, tmp_path: Path) -> None:
    layout = _copy(cancelled_job, tmp_path)
    newest = _steps(layout)[-1]
    (layout.checkpoints / f"checkpoint-{newest}" / MARKER).unlink()

    code, events = run(layout, resume=True)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    assert of_type(events, Started)[0].resumed_from_step == newest
    assert not [w for w in of_type(events, Warn) if w.code == "damaged_checkpoint"]
    assert events[-1].status == "succeeded" and events[-1].step == STEPS


def test_all_checkpoints_damaged_is_a_typed_error_that_offers_to_start_over(
    cancelled_job: JobLayout, tmp_path: Path
) -> None:
    layout = _copy(cancelled_job, tmp_path)
    steps = _steps(layout)
    for step in steps:
        _truncate(layout.checkpoints / f"checkpoint-{step}" / "adapter_model.safetensors")
    before = layout.events.read_text()

    code, events = run(layout, resume=True)
    assert code == EXIT_FAILED, layout.log.read_text()[-3000:]
    errors = of_type(events, Error)
    assert len(errors) == 1 and errors[0].error_type != "internal"
    assert "no checkpoint it can resume from" in errors[0].message
    assert "queue retry" in (errors[0].hint or "") and "without --from-checkpoint" in (errors[0].hint or "")
    assert len([w for w in of_type(events, Warn) if w.code == "damaged_checkpoint"]) == len(steps)
    assert isinstance(events[-1], Done) and events[-1].status == "failed"
    # Nothing else lost: every damaged checkpoint kept, the earlier run's events still there, no adapter made.
    kept = sorted(p.name for p in layout.checkpoints.iterdir() if "checkpoint-" in p.name)
    assert kept == sorted(f"damaged-checkpoint-{s}" for s in steps)
    assert layout.events.read_text().startswith(before)
    assert len(list(read_events(layout.events))) > len(events)
    assert not layout.adapter.exists()


def test_queue_retry_from_damaged_checkpoints_fails_typed_and_show_keeps_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.cli.main import main
    from backend.jobs.queue import JobQueue
    from tests.queue_support import add, run_once

    monkeypatch.chdir(tmp_path)
    with JobQueue() as queue:
        job = add(queue, tmp_path, "damaged", script={"exit_at": 7}, steps=10, save_every=3)
        run_once(queue)
        interrupted = queue.get(job.id)
        assert interrupted.state == "interrupted" and interrupted.step == 7, interrupted
        for step in (3, 6):
            _truncate(job.layout.checkpoints / f"checkpoint-{step}" / "adapter_model.safetensors", 20)

        assert queue.retry(job.id, from_checkpoint=True).ok
        run_once(queue)
        failed = queue.get(job.id)
    assert failed.state == "failed" and failed.error_type == "data", failed
    assert "no checkpoint it can resume from" in failed.message and "queue retry" in failed.hint
    assert failed.step == 7 and failed.total_steps == 10
    assert sorted(p.name for p in job.layout.checkpoints.iterdir()) == ["damaged-checkpoint-3", "damaged-checkpoint-6"]

    assert main(["queue", "show", str(job.id)]) == 0
    out = capsys.readouterr().out
    assert "step        7/10" in out and "checkpoint  none" in out and "without --from-checkpoint" in out
