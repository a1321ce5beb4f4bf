"""``lora-studio spec check`` runs the queue's pre-flight; a job re-checks its data when it starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.cli.common import EXIT_FAILED, EXIT_OK
from backend.cli.main import main
from backend.jobs.queue import JobQueue
from backend.jobs.runner import Runner, RunnerSettings
from tests.queue_support import REPO, spec


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def _spec_file(folder: Path, data: str, model: str = "default", eval_path: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    written = spec(folder)
    update = {"path": data, "eval_path": eval_path}
    edited = written.model_copy(update={"base_model": model, "data": written.data.model_copy(update=update)})
    edited.save(folder / "spec.yaml")
    return folder / "spec.yaml"


def test_a_good_spec_passes(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _spec_file(tmp_path / "project", "colours.jsonl")
    assert main(["spec", "check", str(path)]) == EXIT_OK
    assert "is valid (schema 1)" in capsys.readouterr().out


def test_every_failed_check_is_listed_and_a_relative_path_says_relative_to_what(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "project"
    path = _spec_file(folder, "missing.jsonl", model="/nowhere/model", eval_path="also-missing.jsonl")
    assert main(["spec", "check", str(path)]) == EXIT_FAILED
    out, err = capsys.readouterr()
    assert "is valid (schema 1)" not in out
    assert f"data.path: cannot read {folder.resolve() / 'missing.jsonl'}" in err
    assert f"'missing.jsonl', relative to the spec file's folder {folder.resolve()}" in err
    assert f"data.eval_path: cannot read {folder.resolve() / 'also-missing.jsonl'}" in err
    assert "error: " in err and "/nowhere/model" in err
    assert "3 check(s) failed" in err


def test_spec_check_imports_no_torch(tmp_path: Path) -> None:
    path = _spec_file(tmp_path / "project", "missing.jsonl")
    code = (
        "import sys\nfrom backend.cli.main import main\n"
        f"code = main(['spec', 'check', {str(path)!r}])\n"
        "assert 'torch' not in sys.modules, 'spec check imported torch'\nsys.exit(code)\n"
    )
    env = {**os.environ, "LORA_STUDIO_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == EXIT_FAILED, result.stderr
    assert "data.path: cannot read" in result.stderr


def test_a_data_file_removed_after_queueing_fails_the_job_when_it_starts(home: Path, tmp_path: Path) -> None:
    with JobQueue() as queue:
        added = queue.add(spec(tmp_path, steps=2))
        assert added.job is not None, added.checks
        (tmp_path / "colours.jsonl").unlink()
        Runner(queue, RunnerSettings(device="cpu", poll_s=0.05)).run(once=True)
        job = queue.get(added.job.id)
    assert job is not None and job.state == "failed"
    assert str(tmp_path / "colours.jsonl") in (job.message or "") and "does not exist" in (job.message or "")


def test_spec_check_refuses_a_job_the_disk_cannot_hold_by_the_estimators_need(
    home: Path, tmp_path: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.core.spec import JobSpec
    from backend.estimator.estimate import estimate
    from backend.jobs import preflight
    from backend.models.store import get_model

    path = _spec_file(tmp_path / "project", "colours.jsonl", model=str(tiny_llama))
    spec = JobSpec.load(path)
    checkpoints = estimate(spec, tiny_llama, with_suggestions=False).host.disk_checkpoints_bytes
    keep = spec.schedule.keep_checkpoints
    assert preflight.estimate_disk_bytes(spec, get_model(str(tiny_llama))) == checkpoints + checkpoints // (keep + 1)
    monkeypatch.setattr(preflight, "free_bytes", lambda _path: 1 << 20)
    assert main(["spec", "check", str(path)]) == EXIT_FAILED
    assert "error: Not enough disk space" in capsys.readouterr().err
