"""Reuse instead of redo: an export of an adapter converts a finished merge of it instead of merging again.

The jobs run as real worker processes through the queue on the tiny Llama; what a job did is read
from its events, as the Jobs page and the CLI read it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.core.events import Artifact, Done, Event, Log, Progress, read_events
from backend.core.task_specs import ExportSpec, MergeSpec, load_spec
from backend.export.job import MERGED_DIR
from backend.export.merge import merge_adapter, merge_key, plan_merge
from backend.export.merge_reuse import MERGE_RECORD, MergeKey, find_merge, why_not_reusable
from backend.jobs.adapter_preflight import export_checks
from backend.jobs.checks import Check
from backend.jobs.queue import JobQueue
from backend.jobs.runner import Runner, RunnerSettings
from tests.adapters import make_adapter


@pytest.fixture(scope="module")
def adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tiny_llama, tmp_path_factory.mktemp("reuse") / "adapter", r=4, lora_alpha=8)


def _run(queue: JobQueue, spec: MergeSpec | ExportSpec) -> tuple[Path, list[Event]]:
    """Queue ``spec``, run it in a real worker, and return its folder and events once it succeeded."""
    added = queue.add(spec)
    assert added.job is not None, added.checks
    Runner(queue, RunnerSettings(device="cpu", poll_s=0.1)).run(once=True)
    job = queue.get(added.job.id)
    assert job is not None and job.state == "succeeded", (job and job.message, added.job.layout.log.read_text())
    return added.job.folder, list(read_events(added.job.layout.events))


def _stages(events: list[Event]) -> set[str | None]:
    return {event.stage for event in events if isinstance(event, Progress)}


def _models(events: list[Event]) -> list[Path]:
    return [Path(event.path) for event in events if isinstance(event, Artifact) and event.kind == "model"]


def test_an_export_after_a_merge_of_the_same_adapter_does_not_merge_again(
    queue: JobQueue, adapter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # Unverified on both sides, to keep the test short; a verified merge would serve the export too.
    merge_folder, merge_events = _run(queue, MergeSpec(name="colours-merged", adapter=str(adapter), verify=False))
    assert "merging" in _stages(merge_events)
    merged = merge_folder / MERGED_DIR

    export = ExportSpec(name="colours", source=str(adapter), gguf_type="f16", verify=False)
    export_folder, events = _run(queue, export)

    assert "merging" not in _stages(events), "the export merged the adapter again"
    assert _models(events) == [merged], "the GGUF was made from the finished merge"
    assert any(isinstance(e, Log) and f"using the finished merge at {merged}" in e.message for e in events)
    assert not (export_folder / MERGED_DIR).exists()
    done = events[-1]
    assert isinstance(done, Done) and done.metrics["merge_reused"] == 1.0
    gguf = next(Path(e.path) for e in events if isinstance(e, Artifact) and e.kind == "gguf")
    assert gguf.is_file() and done.metrics["gguf_bytes"] == gguf.stat().st_size


def test_a_merged_model_and_a_gguf_are_one_job_whose_gguf_reads_the_merge_it_keeps(
    queue: JobQueue, adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    kept = tmp_path / "out" / "colours-merged"
    spec = ExportSpec(
        name="colours", source=str(adapter), gguf_type="f16", merge_dtype="float32", merged_dir=str(kept),
        output_dir=str(tmp_path / "out"), verify=False,
    )  # fmt: skip
    _, events = _run(queue, spec)
    assert "merging" in _stages(events) and _models(events) == [kept]
    assert json.loads((kept / MERGE_RECORD).read_text())["dtype"] == "float32"

    again = spec.model_copy(update={"gguf_type": "bf16"})
    _, events = _run(queue, again)
    assert "merging" not in _stages(events) and _models(events) == [kept], "the kept merge is converted again"


def test_only_a_complete_merge_with_the_same_key_is_reused(adapter: Path, tiny_llama: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    result = merge_adapter(adapter, out, dtype="float32", verify=False)
    key = merge_key(result.plan, verify=False)
    assert key is not None and find_merge(key, [out], remembered=False) == out

    verified = MergeKey(key.adapter, key.base, key.dtype, verified=True)
    assert "another adapter, base or precision" in (why_not_reusable(out, verified) or "")
    other_dtype = merge_key(plan_merge(adapter, None, "bfloat16"), verify=False)
    assert other_dtype is not None and find_merge(other_dtype, [out], remembered=False) is None
    other_adapter = make_adapter(tiny_llama, tmp_path / "other", r=4, lora_alpha=8, seed=1)
    assert merge_key(plan_merge(other_adapter), verify=False) != key

    shard = out / "model.safetensors"
    shard.write_bytes(shard.read_bytes()[:-10])  # a truncated file: the merge is no longer whole
    assert "incomplete" in (why_not_reusable(out, key) or "")
    hidden = tmp_path / ".merged.partial-0000"
    out.rename(hidden)
    assert "still being written" in (why_not_reusable(hidden, key) or "")


def test_a_merge_is_remembered_wherever_it_was_written(
    adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    out = tmp_path / "elsewhere" / "merged"
    merge_adapter(adapter, out, dtype="float32", verify=False)
    key = merge_key(plan_merge(adapter, None, "float32"), verify=False)
    assert key is not None and find_merge(key, []) == out.absolute()
    assert find_merge(key, [], remembered=False) is None


def test_a_merged_dir_that_exists_is_used_only_when_it_holds_this_merge(adapter: Path, tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    merge_adapter(adapter, kept, dtype="float32", verify=False)

    def checked(**spec: object) -> list[Check]:
        settings = {"source": str(adapter), "gguf_type": "f16", "merge_dtype": "float32", "merged_dir": str(kept)}
        return [
            c for c in export_checks(ExportSpec(**settings | spec), tmp_path / "jobs") if c.topic not in ("disk", "ram")
        ]

    assert [(c.level, c.message) for c in checked(verify=False)] == [
        ("info", f"merged_dir: {kept} holds this merge already; the GGUF is made from it.")
    ]
    (unverified,) = [c for c in checked() if c.level == "error"]
    assert "is not this merge" in unverified.message and "another adapter, base or precision" in unverified.message
    (other,) = [c for c in checked(merged_dir=str(tmp_path)) if c.level == "error"]
    assert f"merged_dir: {tmp_path} already exists and is not this merge" in other.message


def test_the_cli_queues_a_merged_model_and_a_gguf_as_one_job(
    queue: JobQueue, adapter: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.cli.common import EXIT_OK, EXIT_USAGE
    from backend.cli.main import main

    kept = tmp_path / "colours-merged"
    argv = ["export", "gguf", str(adapter), "--type", "f16", "--merged-dir", str(kept), "--merge-dtype", "float32"]
    assert main([*argv, "--queue", "--json"]) == EXIT_OK
    job = json.loads(capsys.readouterr().out)["job"]
    spec = load_spec(Path(job["folder"]) / "spec.yaml")
    assert isinstance(spec, ExportSpec) and (spec.merged_dir, spec.merge_dtype) == (str(kept), "float32")
    assert [j.kind for j in queue.jobs()] == ["export"], "one job, not a merge and an export"
    assert main([*argv, "--out", str(tmp_path)]) == EXIT_USAGE
    assert "--merged-dir is for a queued export" in capsys.readouterr().err
