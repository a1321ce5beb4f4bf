"""``lora-studio queue``: every action from the terminal, in text and in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from backend.cli.main import main
from backend.jobs.queue import JobQueue
from tests.queue_support import spec, wait_for


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    """A spec whose dataset path is relative to the spec file, as people write them."""
    folder = tmp_path / "project"
    folder.mkdir()
    written = spec(folder, "colours", steps=4)
    relative = written.model_copy(update={"data": written.data.model_copy(update={"path": "colours.jsonl"})})
    relative.save(folder / "spec.yaml")
    return folder / "spec.yaml"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["queue", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_show_and_move_in_text_and_json(
    home: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "add", str(spec_file))
    assert code == EXIT_OK and "queued job 1: colours" in out and "trains on the CPU" in out
    code, out, _ = cli(capsys, "add", str(spec_file), "--json")
    added = json.loads(out)
    assert code == EXIT_OK and added["job"]["id"] == 2 and added["job"]["state"] == "queued"
    assert {check["topic"] for check in added["checks"]} >= {"gpu"}

    code, out, _ = cli(capsys, "move", "2", "--to", "1")
    assert code == EXIT_OK and "number 1" in out
    code, out, _ = cli(capsys, "list")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "STATE", "STEP", "NAME"]
    assert lines[1].split()[:2] == ["2", "queued"] and "#1 in line" in lines[1]
    assert "#2 in line" in lines[2] and "no runner is running" in out

    code, out, _ = cli(capsys, "show", "1", "--json")
    shown = json.loads(out)
    assert shown["state"] == "queued" and shown["folder_exists"] and shown["checkpoint_step"] is None
    copied = JobQueue().get(1).layout.spec.read_text()
    assert str(spec_file.parent / "colours.jsonl") in copied, "relative paths are anchored to the spec file"
    code, out, _ = cli(capsys, "show", "1")
    assert code == EXIT_OK and out.startswith("job 1: colours (train), queued")


def test_actions_answer_with_a_sentence_and_an_exit_status(
    home: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        cli(capsys, "add", str(spec_file))
    assert cli(capsys, "pause", "1")[0] == EXIT_OK
    code, out, _ = cli(capsys, "list", "--json")
    assert [job["label"] for job in json.loads(out)["jobs"]] == ["paused", "queued", "queued"]
    assert cli(capsys, "resume", "1")[0] == EXIT_OK
    code, out, _ = cli(capsys, "cancel", "2", "--json")
    assert code == EXIT_OK and json.loads(out)["job"]["state"] == "cancelled"
    code, _, err = cli(capsys, "cancel", "2")
    assert code == EXIT_FAILED and "already cancelled" in err
    code, out, _ = cli(capsys, "retry", "2", "--from-checkpoint")
    assert code == EXIT_OK and "from its newest checkpoint" in out
    code, out, _ = cli(capsys, "dup", "3")
    assert code == EXIT_OK and "queued job 4" in out
    code, _, err = cli(capsys, "resume", "99")
    assert code == EXIT_FAILED and "no job 99" in err


def test_pause_all_keeps_a_runner_from_starting_jobs_until_resume_all(
    home: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "add", str(spec_file))
    code, out, _ = cli(capsys, "pause-all")
    assert code == EXIT_OK and "no job starts until you resume it" in out
    code, out, _ = cli(capsys, "list")
    assert "the queue is paused" in out and "queue resume-all" in out and "no runner is running" not in out
    assert json.loads(cli(capsys, "list", "--json")[1])["paused"] is True
    assert main(["queue", "run", "--once", "--device", "cpu"]) == EXIT_OK  # finds nothing it may start
    with JobQueue() as queue:
        assert [job.state for job in queue.jobs()] == ["queued"]
    code, out, _ = cli(capsys, "resume-all", "--json")
    assert code == EXIT_OK and json.loads(out)["ok"]
    with JobQueue() as queue:
        assert not queue.paused()


def test_rm_asks_unless_told_yes(home: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "add", str(spec_file))
    folder = JobQueue().get(1).folder
    code, _, err = cli(capsys, "rm", "1")
    assert code == EXIT_FAILED and "--yes" in err and folder.is_dir()
    assert cli(capsys, "rm", "1", "--yes")[0] == EXIT_OK and not folder.exists()
    assert "the queue is empty" in cli(capsys, "list")[1]


def test_an_invalid_spec_is_a_usage_error_with_every_problem(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {path: x.jsonl}\nlora: {r: -1}\ntraining: {learnin_rate: 1}\n")
    code, _, err = cli(capsys, "add", str(bad))
    assert code == EXIT_USAGE and "lora.r must be greater than 0" in err and "did you mean learning_rate" in err
    code, _, err = cli(capsys, "add", str(tmp_path / "missing-data.yaml"))
    assert code == EXIT_USAGE


def test_a_blocked_job_is_not_queued_and_says_why(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = spec(tmp_path)
    no_data = written.model_copy(update={"data": written.data.model_copy(update={"path": str(tmp_path / "gone")})})
    no_data.save(tmp_path / "spec.yaml")
    code, _, err = cli(capsys, "add", str(tmp_path / "spec.yaml"))
    assert code == EXIT_FAILED and "error: data.path: cannot read" in err
    assert not JobQueue().jobs()


def test_run_once_on_an_empty_queue_returns_and_a_bad_device_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "run", "--once", "--device", "cpu")[0] == EXIT_OK
    code, _, err = cli(capsys, "run", "--device", "gpu7")
    assert code == EXIT_USAGE and "cpu or cuda:N" in err


def test_run_detach_starts_a_runner_in_the_background(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "run", "--detach", "--once", "--device", "cpu")
    assert code == EXIT_OK and ("runner started on cpu" in out or "found nothing to run" in out)
    assert (home / "runner-cpu.log").is_file()
    with JobQueue() as queue:
        wait_for(lambda: not queue.runners(), what="the runner to finish")
