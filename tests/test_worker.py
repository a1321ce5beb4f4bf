"""The training worker end to end: real QLoRA steps on tiny models in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from backend.core.events import Artifact, Done, Error, Event, Metric, Progress, Started, Telemetry, read_events
from backend.core.layout import ADAPTER_RECORD, JobLayout
from backend.core.spec import JobSpec
from backend.data.load import read_dataset
from backend.jobs.launch import start_worker, stream
from backend.jobs.worker import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from backend.models.fingerprint import fingerprint
from backend.training.checkpoints import checkpoint_step, is_complete, latest_checkpoint
from tests.datasets import colour_conversation, write_colour_task


@pytest.fixture(autouse=True)
def _worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    # Tiny matrices gain nothing from a second thread, and spin-waiting threads slow a busy machine.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def make_job(tmp_path: Path, model: Path, name: str = "job", **sections: dict) -> JobLayout:
    data = sections.pop("data", {})
    data.setdefault("path", str(write_colour_task(tmp_path / f"{name}.jsonl", 200)))
    spec = JobSpec.from_dict(
        {
            "name": name,
            "base_model": str(model),
            "lora": {"r": 8, **sections.pop("lora", {})},
            "training": {
                "max_steps": 30,
                "micro_batch_size": 4,
                "gradient_accumulation_steps": 1,
                "learning_rate": 3e-3,
                "max_seq_length": 64,
                **sections.pop("training", {}),
            },
            "data": data,
            "schedule": {"save_every_steps": 10, "eval_every_steps": 10, **sections.pop("schedule", {})},
            **sections,
        }
    )
    layout = JobLayout.new(tmp_path / "jobs", name)
    spec.save(layout.spec)
    return layout


def run(layout: JobLayout, resume: bool = False, on_event=None) -> tuple[int, list[Event]]:
    process = start_worker(layout, resume=resume)
    events: list[Event] = []
    for event in stream(process):
        assert not isinstance(event, str), f"non-event line on the worker's stdout: {event!r}"
        events.append(event)
        if on_event is not None:
            on_event(event, process)
    return process.wait(), events


def of_type(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def train_losses(events: list[Event]) -> list[float]:
    return [m.values["loss"] for m in of_type(events, Metric) if m.split == "train" and "loss" in m.values]


def test_qlora_run_learns_streams_events_and_saves_a_loadable_adapter(tmp_path: Path, tiny_llama: Path) -> None:
    layout = make_job(tmp_path, tiny_llama)
    code, events = run(layout)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]

    # The stream: started first, done last, the file holds exactly what stdout carried.
    assert isinstance(events[0], Started) and events[0].job_kind == "train"
    assert isinstance(events[-1], Done) and events[-1].status == "succeeded" and events[-1].step == 30
    assert [e.model_dump() for e in read_events(layout.events)] == [e.model_dump() for e in events]
    assert [p.step for p in of_type(events, Progress)] == list(range(1, 31))
    assert all(p.total_steps == 30 for p in of_type(events, Progress))
    assert of_type(events, Progress)[-1].tokens_per_second > 0
    assert of_type(events, Telemetry), "telemetry is sampled on a timer"
    assert {a.step for a in of_type(events, Artifact) if a.kind == "checkpoint"} == {10, 20, 30}

    # It learned: the loss on the colour task falls clearly.
    losses = train_losses(events)
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:3]) / 3, losses
    evals = [m.values["eval_loss"] for m in of_type(events, Metric) if m.split == "eval"]
    assert evals[-1] < evals[0]
    assert "eval_loss" in events[-1].metrics

    # The adapter: standard PEFT, with a record of base, data and metrics.
    adapter = Path(events[-1].adapter_path)
    assert adapter == layout.adapter
    record = json.loads((adapter / ADAPTER_RECORD).read_text())
    assert record["base_model"]["fingerprint"] == fingerprint(tiny_llama)
    spec = JobSpec.load(layout.spec)
    assert record["dataset"]["content_hash"] == read_dataset(Path(spec.data.path)).content_hash
    assert record["spec"] == spec.to_dict()
    assert record["metrics"]["eval_loss"] == pytest.approx(evals[-1])

    # And it is the first version of the adapter named after the job, in the registry.
    from backend.registry.registry import Registry

    (registered,) = [a for a in of_type(events, Artifact) if a.kind == "version"]
    (version,) = Registry().versions("job")
    assert (version.version, version.stage, version.folder) == (1, "staging", registered.path)
    assert version.base_fingerprint == record["base_model"]["fingerprint"]
    assert version.heldout_loss == pytest.approx(evals[-1])

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.data.chat_tokens import tokenize_chat

    tokenizer = AutoTokenizer.from_pretrained(adapter)
    tokens = tokenize_chat(tokenizer, colour_conversation("lemon"))
    ids = torch.tensor([tokens.input_ids])
    labels = torch.tensor([tokens.labels])
    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    with torch.no_grad():
        base_loss = base(input_ids=ids, labels=labels).loss.item()
        tuned = PeftModel.from_pretrained(base, adapter)
        tuned_loss = tuned(input_ids=ids, labels=labels).loss.item()
    assert tuned_loss < 0.8 * base_loss


def test_cancel_saves_a_checkpoint_and_resume_finishes_like_an_uninterrupted_run(
    tmp_path: Path, tiny_llama: Path
) -> None:
    settings = {"training": {"max_steps": 24}, "schedule": {"save_every_steps": 100, "eval_every_steps": 100}}
    reference_code, reference = run(make_job(tmp_path, tiny_llama, "reference", **settings))
    assert reference_code == EXIT_OK

    layout = make_job(tmp_path, tiny_llama, "interrupted", **settings)

    def cancel_after_step_5(event: Event, _process) -> None:
        if isinstance(event, Progress) and event.step == 5:
            layout.cancel_request.touch()

    code, first = run(layout, on_event=cancel_after_step_5)
    assert code == EXIT_CANCELLED, layout.log.read_text()[-3000:]
    done = first[-1]
    assert isinstance(done, Done) and done.status == "cancelled"
    stopped = done.step
    assert 5 <= stopped < 24
    checkpoint = latest_checkpoint(layout.checkpoints)
    assert checkpoint is not None and checkpoint_step(checkpoint) == stopped and is_complete(checkpoint)
    assert not layout.adapter.exists(), "a cancelled run leaves checkpoints, not a final adapter"

    layout.cancel_request.unlink()
    code, second = run(layout, resume=True)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    assert second[0].resumed_from_step == stopped
    assert [p.step for p in of_type(second, Progress)] == list(range(stopped + 1, 25))
    assert second[-1].status == "succeeded" and second[-1].step == reference[-1].step == 24

    # Same schedule: the learning rate of every resumed step matches the uninterrupted run's.
    def lrs(events: list[Event]) -> dict[int, float]:
        return {m.step: m.values["learning_rate"] for m in of_type(events, Metric) if "learning_rate" in m.values}

    resumed, expected = lrs(second), lrs(reference)
    assert resumed and all(resumed[s] == pytest.approx(expected[s]) for s in resumed)
    # And the same data order and weights: losses continue where an uninterrupted run would be.
    ref_losses = dict(zip(range(1, 25), train_losses(reference), strict=True))
    new_losses = dict(zip(range(stopped + 1, 25), train_losses(second), strict=True))
    assert all(new_losses[s] == pytest.approx(ref_losses[s], rel=0.05) for s in new_losses)


def test_sigterm_stops_at_the_next_step_with_a_checkpoint(tmp_path: Path, tiny_llama: Path) -> None:
    layout = make_job(tmp_path, tiny_llama, training={"max_steps": 500}, schedule={"save_every_steps": 1000})

    def terminate_after_step_3(event: Event, process) -> None:
        if isinstance(event, Progress) and event.step == 3:
            os.killpg(process.pid, signal.SIGTERM)

    code, events = run(layout, on_event=terminate_after_step_3)
    assert code == EXIT_CANCELLED
    assert events[-1].status == "cancelled"
    assert latest_checkpoint(layout.checkpoints) is not None


def test_unusable_data_is_a_typed_data_error(tmp_path: Path, tiny_llama: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "no reply"}]}\n{broken\n')
    code, events = run(make_job(tmp_path, tiny_llama, data={"path": str(bad)}))
    assert code == EXIT_FAILED
    error = of_type(events, Error)[0]
    assert error.error_type == "data"
    assert "line 1" in error.message and "line 2" in error.message
    assert events[-1].status == "failed"


def test_rejected_rows_are_reported_not_dropped_silently(tmp_path: Path, tiny_llama: Path) -> None:
    path = write_colour_task(tmp_path / "mixed.jsonl", 40)
    with path.open("a") as handle:
        handle.write('{"messages": [{"role": "user", "content": "no reply"}]}\n')
    code, events = run(make_job(tmp_path, tiny_llama, data={"path": str(path)}, training={"max_steps": 2}))
    assert code == EXIT_OK
    warnings = [e for e in events if e.type == "warning" and e.code == "row_rejected"]
    assert len(warnings) == 1 and "line 41" in warnings[0].message


def test_a_module_the_model_lacks_is_a_config_error(tmp_path: Path, tiny_llama: Path) -> None:
    code, events = run(make_job(tmp_path, tiny_llama, lora={"target_modules": ["c_attn"]}))
    assert code == EXIT_FAILED
    error = of_type(events, Error)[0]
    assert error.error_type == "config" and "c_attn" in error.message and "q_proj" in error.message


@pytest.mark.parametrize("tiny_model", ["qwen2", "mistral", "gemma", "gemma2", "gemma3"], indirect=True)
def test_every_architecture_trains_in_4bit(tmp_path: Path, tiny_model: Path) -> None:
    layout = make_job(tmp_path, tiny_model, training={"max_steps": 3}, schedule={"eval_every_steps": 3})
    code, events = run(layout)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    assert events[-1].status == "succeeded"
    assert (layout.adapter / "adapter_model.safetensors").is_file()
    config = json.loads((layout.adapter / "adapter_config.json").read_text())
    assert set(config["target_modules"]) >= {"q_proj", "v_proj", "down_proj"}
