"""Every job kind as a queued worker job: merge, export and measure run by real workers on the tiny Llama.

The adapter they start from comes from a short real training run (a worker subprocess),
so the merge and export see exactly what a finished training job leaves behind.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from backend.core.events import Artifact, Done, Event, Log, Progress, Started, Warn, read_events
from backend.core.layout import JobLayout
from backend.core.spec import JobSpec
from backend.core.task_specs import ExportSpec, MergeSpec
from backend.export.job import MERGED_DIR
from backend.jobs.job import Job
from backend.jobs.launch import start_worker
from backend.jobs.outcome import AttemptEvents, decide
from backend.jobs.process import ExitInfo
from backend.jobs.queue import JobQueue
from backend.jobs.runner import Runner, RunnerSettings
from backend.jobs.worker import EXIT_OK
from tests.datasets import write_colour_task

TRAINING = {"micro_batch_size": 4, "gradient_accumulation_steps": 1, "max_seq_length": 64, "learning_rate": 3e-3}


def _train_spec(tmp: Path, base: Path, **changes: object) -> JobSpec:
    return JobSpec.from_dict(
        {
            "name": "colours",
            "base_model": str(base),
            "lora": {"r": 8},
            "training": {**TRAINING, "max_steps": 4},
            "data": {"path": str(write_colour_task(tmp / "colours.jsonl", 40)), "eval_split": 0.0},
            "schedule": {"save_every_steps": 100},
            **changes,
        }
    )


@pytest.fixture(scope="module")
def adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The adapter of a finished four-step training job on the tiny Llama."""
    tmp = tmp_path_factory.mktemp("trained")
    layout = JobLayout.new(tmp / "jobs", "colours")
    _train_spec(tmp, tiny_llama).save(layout.spec)
    env = {"LORA_STUDIO_HOME": str(tmp / "home"), "OMP_NUM_THREADS": "1"}
    process = start_worker(layout, env=env, pipe_events=False)
    assert process.wait(300) == EXIT_OK, layout.log.read_text()[-3000:]
    return layout.adapter


@pytest.fixture
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobQueue]:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny matrices gain nothing from a second thread
    with JobQueue() as opened:
        yield opened
        for job in opened.jobs("running"):  # a failed test must not leave workers behind
            if job.pid:
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue


def run_queue(queue: JobQueue) -> None:
    """A runner with the real worker, in this process, until nothing is left to start."""
    Runner(queue, RunnerSettings(device="cpu", poll_s=0.1)).run(once=True)


def finished(queue: JobQueue, job: Job) -> tuple[Job, list[Event]]:
    final = queue.get(job.id)
    assert final is not None
    events = list(read_events(job.layout.events))
    assert final.state == "succeeded", (final.message, final.log_tail or job.layout.log.read_text()[-3000:])
    return final, events


def test_a_merge_job_through_the_queue_gives_a_model_with_the_adapters_logits(
    queue: JobQueue, adapter: Path, tiny_llama: Path
) -> None:
    added = queue.add(MergeSpec(name="colours-merged", adapter=str(adapter), dtype="float32"))
    assert added.job is not None, added.checks
    run_queue(queue)
    job, events = finished(queue, added.job)

    merged = added.job.folder / MERGED_DIR
    assert job.kind == "merge" and job.adapter_path == str(merged)
    assert isinstance(events[0], Started) and events[0].job_kind == "merge" and events[0].device.kind == "cpu"
    stages = {e.stage for e in events if isinstance(e, Progress)}
    assert {"merging", "verifying"} <= stages
    assert [(a.kind, a.path) for a in events if isinstance(a, Artifact)] == [("model", str(merged))]
    done = events[-1]
    assert isinstance(done, Done) and done.output_path == str(merged)
    assert done.metrics["merge_relative_diff"] < 1e-4 and done.metrics["merge_top1_agreement"] == 1.0

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ids = torch.tensor([AutoTokenizer.from_pretrained(merged)("What colour is the lemon?")["input_ids"]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
        untouched = base(input_ids=ids).logits
        reference = PeftModel.from_pretrained(base, adapter).eval()(input_ids=ids).logits
        result = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()(input_ids=ids).logits
    difference = float((reference - result).abs().max())
    assert difference < 1e-4
    assert float((reference - untouched).abs().max()) > 100 * difference, "the trained adapter changes the logits"


def test_an_export_job_from_an_adapter_merges_then_writes_a_gguf_and_modelfile(queue: JobQueue, adapter: Path) -> None:
    added = queue.add(ExportSpec(name="colours", source=str(adapter), gguf_type="f16"))
    assert added.job is not None, added.checks
    run_queue(queue)
    job, events = finished(queue, added.job)

    folder = added.job.folder / "export" / "lora-studio" / "colours-F16"
    assert job.adapter_path == str(folder)
    artifacts = {a.kind: Path(a.path) for a in events if isinstance(a, Artifact)}
    assert artifacts == {
        "model": added.job.folder / MERGED_DIR,
        "gguf": folder / "colours-F16.gguf",
        "modelfile": folder / "Modelfile",
        "export": folder,
    }
    assert all(path.exists() for path in artifacts.values())
    assert "FROM ./colours-F16.gguf" in (folder / "Modelfile").read_text()
    assert {"merging", "writing", "verifying"} <= {e.stage for e in events if isinstance(e, Progress)}
    done = events[-1]
    assert isinstance(done, Done) and done.metrics["gguf_bytes"] == (folder / "colours-F16.gguf").stat().st_size
    assert done.metrics["gguf_relative_diff"] < 0.01


def test_a_gguf_lora_export_job_writes_the_adapter_file_and_a_modelfile_for_the_base(
    queue: JobQueue, adapter: Path
) -> None:
    added = queue.add(ExportSpec(name="colours", source=str(adapter), target="gguf_lora"))
    assert added.job is not None, added.checks
    run_queue(queue)
    job, events = finished(queue, added.job)

    folder = added.job.folder / "export" / "colours-LoRA-F16"
    artifacts = {a.kind: Path(a.path) for a in events if isinstance(a, Artifact)}
    assert artifacts == {"gguf": folder / "colours-LoRA-F16.gguf", "modelfile": folder / "Modelfile", "export": folder}
    assert job.adapter_path == str(folder) and not (added.job.folder / MERGED_DIR).exists(), "nothing is merged"
    assert "ADAPTER ./colours-LoRA-F16.gguf" in (folder / "Modelfile").read_text()
    assert any(isinstance(e, Log) and "FROM is a placeholder" in e.message for e in events)
    done = events[-1]
    assert isinstance(done, Done) and done.metrics["gguf_bytes"] == (folder / "colours-LoRA-F16.gguf").stat().st_size


def test_an_export_with_a_bad_source_is_refused_before_it_is_queued(
    queue: JobQueue, tmp_path: Path, adapter: Path
) -> None:
    not_there = queue.add(ExportSpec(source=str(tmp_path / "no-such-folder")))
    (error,) = [c for c in not_there.checks if c.level == "error"]
    assert not_there.job is None and error.message == f"source: {tmp_path / 'no-such-folder'} is not a folder."

    (tmp_path / "notes").mkdir()
    neither = queue.add(ExportSpec(source=str(tmp_path / "notes")))
    (error,) = [c for c in neither.checks if c.level == "error"]
    assert neither.job is None and "neither an adapter folder (adapter_config.json) nor a model folder" in error.message
    assert "no config.json" in error.message

    model_as_adapter = queue.add(ExportSpec(source=str(adapter.parent.parent), target="adapter"))
    (error,) = [c for c in model_as_adapter.checks if c.level == "error"]
    assert model_as_adapter.job is None and "is not an adapter" in error.message
    assert not queue.jobs(), "nothing was queued"


def test_a_measure_job_on_the_cpu_reports_peak_ram_and_saves_nothing(
    queue: JobQueue, tmp_path: Path, tiny_llama: Path
) -> None:
    spec = _train_spec(tmp_path, tiny_llama, kind="measure", name="measured")
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"eval_split": 0.1})})
    added = queue.add(spec)
    assert added.job is not None, added.checks
    assert any(c.level == "warning" and "peak RAM only" in c.message for c in added.checks)
    run_queue(queue)
    job, events = finished(queue, added.job)

    layout = added.job.layout
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3, 4], "one warm-up step and three more"
    assert any(isinstance(e, Warn) and e.code == "no_gpu" and "CUDA GPU" in e.message for e in events)
    done = events[-1]
    assert isinstance(done, Done) and done.status == "succeeded" and done.step == 4
    assert done.metrics["peak_rss_bytes"] > 100 * 2**20 and done.metrics["tokens_per_row"] == 64
    assert done.output_path is None and job.adapter_path is None
    assert not layout.adapter.exists() and not layout.checkpoints.exists()
    assert not any(isinstance(e, Artifact) for e in events)
    assert not (tmp_path / "home" / "vram_calibration.json").exists(), "no GPU, no calibration"
    predicted = json.loads(layout.estimate.read_text())
    assert predicted["gpu"] is None and predicted["verdict"] == "unknown"
    assert sum(t["bytes"] for t in predicted["terms"]) == predicted["total_bytes"]
    assert predicted["tokens_per_micro_batch"] == done.metrics["rows"] * 64, "the measured worst case"


def test_the_cli_queues_an_export_spec_and_a_merge(
    queue: JobQueue, tmp_path: Path, adapter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.cli.common import EXIT_OK, EXIT_USAGE
    from backend.cli.main import main

    spec_file = tmp_path / "specs" / "export.yaml"
    spec_file.parent.mkdir()
    relative = os.path.relpath(adapter, spec_file.parent)
    spec_file.write_text(yaml.safe_dump({"kind": "export", "name": "colours", "source": relative, "gguf_type": "f16"}))

    assert main(["queue", "add", str(spec_file), "--json"]) == EXIT_OK
    queued = json.loads(capsys.readouterr().out)["job"]
    assert queued["kind"] == "export" and queued["state"] == "queued"
    stored = yaml.safe_load((Path(queued["folder"]) / "spec.yaml").read_text())
    assert stored["source"] == str(adapter), "a relative path means next to the spec file"

    assert main(["merge", str(adapter), "--queue", "--json"]) == EXIT_OK
    merge = json.loads(capsys.readouterr().out)["job"]
    assert merge["kind"] == "merge"
    assert main(["merge", str(adapter)]) == EXIT_USAGE
    assert "--out is required" in capsys.readouterr().err
    assert [job.kind for job in queue.jobs()] == ["export", "merge"]


def test_a_merge_that_fails_in_the_worker_says_why_and_runs_again_from_the_start(
    queue: JobQueue, adapter: Path, tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    added = queue.add(MergeSpec(adapter=str(adapter), output_dir=str(out)))
    assert added.job is not None, added.checks
    out.mkdir()  # taken while the job waited: the merge itself refuses it
    run_queue(queue)

    failed = queue.get(added.job.id)
    assert (failed.state, failed.error_type) == ("failed", "config") and "already exists" in failed.message
    assert failed.hint == "Choose another output folder, or remove the old one first."
    resumed = queue.resume(added.job.id)
    assert resumed.ok and resumed.message == f"Job {added.job.id} will run again from the start."
    assert queue.cancel(added.job.id).ok
    refused = queue.retry(added.job.id, from_checkpoint=True)
    assert not refused.ok and "keeps no checkpoints" in refused.message

    seen = AttemptEvents(started=True, done=Done(status="cancelled", duration_s=1.0))
    stopped = decide(
        added.job.layout, seen, ExitInfo(code=3), request="cancel", forced=None, checkpoint=None, log_tail=None,
        kind="merge",
    )  # fmt: skip
    assert stopped.message == "Cancelled. Resuming runs it again from the start (a merge job keeps no checkpoints)."


def test_a_paused_merge_job_that_never_ran_is_released(queue: JobQueue, adapter: Path) -> None:
    added = queue.add(MergeSpec(adapter=str(adapter)))
    assert added.job is not None
    assert queue.pause(added.job.id).ok
    resumed = queue.resume(added.job.id)
    assert resumed.ok and resumed.message == f"Job {added.job.id} is released; it runs in its turn."
