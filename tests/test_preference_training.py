"""Preference training jobs end to end: DPO, ORPO, SimPO and KTO in real worker processes on a tiny model.

The task is learnable in a few dozen steps: each prompt asks the colour of a thing, the chosen answer names
the right colour and the rejected one a wrong one. The reward margin (how much more the adapter prefers the
chosen answer than the reference does) must rise; a cancelled job resumes to the same step count; the adapter
loads with PEFT and prefers the right answers on held-out prompts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from backend.core.events import Artifact, Done, Error, Event, Metric, Progress, Started
from backend.core.layout import ADAPTER_RECORD, JobLayout
from backend.core.spec import JobSpec
from backend.jobs.launch import start_worker, stream
from backend.jobs.worker import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from backend.training.checkpoints import checkpoint_step, is_complete, latest_checkpoint
from tests.datasets import COLOURS


@pytest.fixture(autouse=True)
def _worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def colour_pair(thing: str, rng: random.Random) -> dict[str, Any]:
    wrong = rng.choice([c for c in COLOURS.values() if c != COLOURS[thing]])
    return {
        "prompt": [{"role": "user", "content": f"What colour is the {thing}?"}],
        "chosen": [{"role": "assistant", "content": f"The {thing} is {COLOURS[thing]}."}],
        "rejected": [{"role": "assistant", "content": f"The {thing} is {wrong}."}],
    }


def write_pairs(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    path.write_text("".join(json.dumps(colour_pair(rng.choice(list(COLOURS)), rng)) + "\n" for _ in range(n)))
    return path


def write_kto(path: Path, n: int, seed: int = 0) -> Path:
    """Unpaired: each row one answer, labelled desirable when the colour is right."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        pair = colour_pair(rng.choice(list(COLOURS)), rng)
        good = i % 2 == 0
        rows.append({"prompt": pair["prompt"], "completion": pair["chosen" if good else "rejected"], "label": good})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def make_job(tmp_path: Path, model: Path, objective: str, name: str = "job", **sections: Any) -> JobLayout:
    writer = write_kto if objective == "kto" else write_pairs
    spec = JobSpec.from_dict(
        {
            "name": name,
            "base_model": str(model),
            "lora": {"r": 8},
            "training": {
                "objective": objective,
                "max_steps": 24,
                "micro_batch_size": 4,
                "gradient_accumulation_steps": 1,
                "learning_rate": 3e-3,
                "max_seq_length": 64,
                **sections.pop("training", {}),
            },
            "data": {"path": str(writer(tmp_path / f"{name}.jsonl", 120))},
            "schedule": {"save_every_steps": 8, "eval_every_steps": 8, **sections.pop("schedule", {})},
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


def series(events: list[Event], key: str, split: str = "train") -> list[float]:
    return [e.values[key] for e in events if isinstance(e, Metric) and e.split == split and key in e.values]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


SLOW = pytest.mark.slow  # each over 20 s on a 2-core CPU; DPO, the common case, stays in the quick suite


@pytest.mark.parametrize(
    "objective",
    ["dpo", pytest.param("orpo", marks=SLOW), pytest.param("simpo", marks=SLOW), pytest.param("kto", marks=SLOW)],
)
def test_a_preference_job_learns_the_preferred_answers(tmp_path: Path, tiny_llama: Path, objective: str) -> None:
    # ORPO's beta weighs its preference term beside learning the chosen answers: larger here, so that the
    # one-word difference between the answers moves the margin within 24 steps.
    preference = {"beta": 1.0} if objective == "orpo" else {}
    layout = make_job(tmp_path, tiny_llama, objective, preference=preference)
    code, events = run(layout)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    assert isinstance(events[0], Started) and events[0].job_kind == "train"
    done = events[-1]
    assert isinstance(done, Done) and done.status == "succeeded" and done.step == 24
    assert [p.step for p in events if isinstance(p, Progress)] == list(range(1, 25))
    assert {a.step for a in events if isinstance(a, Artifact) and a.kind == "checkpoint"} == {8, 16, 24}

    margins = series(events, "rewards/margins")
    assert len(margins) >= 20, "every logged step carries the method's reward margin"
    assert mean(margins[-5:]) > mean(margins[:3]) + 0.05, margins
    assert series(events, "rewards/chosen") and series(events, "rewards/rejected")
    if objective != "kto":  # KTO's micro-batches hold single answers: no per-pair accuracy
        assert mean(series(events, "rewards/accuracies")[-5:]) > 0.7
    assert series(events, "eval_rewards/margins", "eval"), "held-out pairs are measured too"

    record = json.loads((layout.adapter / ADAPTER_RECORD).read_text())
    assert record["spec"]["training"]["objective"] == objective
    assert "train_rewards/margins" in record["metrics"]
    assert not (layout.adapter / "ref").exists()


@SLOW
def test_the_adapter_loads_and_prefers_the_right_colours(tmp_path: Path, tiny_llama: Path) -> None:
    layout = make_job(tmp_path, tiny_llama, "dpo", training={"max_steps": 30})
    code, _ = run(layout)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(layout.adapter)

    def answer_logp(model: Any, thing: str, colour: str) -> float:
        prompt = [{"role": "user", "content": f"What colour is the {thing}?"}]
        full = [*prompt, {"role": "assistant", "content": f"The {thing} is {colour}."}]
        start = len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"])
        ids = torch.tensor([tokenizer.apply_chat_template(full, tokenize=True)["input_ids"]])
        with torch.no_grad():
            logps = model(input_ids=ids).logits.log_softmax(-1)[0, :-1].gather(-1, ids[0, 1:, None])[:, 0]
        return float(logps[start - 1 :].sum())

    def accuracy(model: Any) -> float:
        rng = random.Random(7)
        wins = [
            answer_logp(model, thing, COLOURS[thing])
            > answer_logp(model, thing, rng.choice([c for c in COLOURS.values() if c != COLOURS[thing]]))
            for thing in COLOURS
        ]
        return sum(wins) / len(wins)

    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    before = accuracy(base)
    tuned = PeftModel.from_pretrained(base, layout.adapter)
    assert accuracy(tuned) >= 0.75 > before


@SLOW
def test_a_cancelled_dpo_job_resumes_to_the_same_step_count(tmp_path: Path, tiny_llama: Path) -> None:
    layout = make_job(tmp_path, tiny_llama, "dpo", schedule={"save_every_steps": 100, "eval_every_steps": 100})

    def cancel_after_step_5(event: Event, _process: Any) -> None:
        if isinstance(event, Progress) and event.step == 5:
            layout.cancel_request.touch()

    code, first = run(layout, on_event=cancel_after_step_5)
    assert code == EXIT_CANCELLED, layout.log.read_text()[-3000:]
    stopped = first[-1].step
    assert 5 <= stopped < 24
    checkpoint = latest_checkpoint(layout.checkpoints)
    assert checkpoint is not None and checkpoint_step(checkpoint) == stopped and is_complete(checkpoint)

    layout.cancel_request.unlink()
    code, second = run(layout, resume=True)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    assert second[0].resumed_from_step == stopped
    assert [p.step for p in second if isinstance(p, Progress)] == list(range(stopped + 1, 25))
    assert second[-1].status == "succeeded" and second[-1].step == 24


@SLOW
def test_dpo_continues_an_sft_adapter(tmp_path: Path, tiny_llama: Path) -> None:
    from tests.datasets import write_colour_task

    sft = JobSpec.from_dict(
        {
            "name": "sft",
            "base_model": str(tiny_llama),
            "lora": {"r": 4, "target_modules": "attention"},
            "training": {"max_steps": 6, "micro_batch_size": 4, "gradient_accumulation_steps": 1},
            "data": {"path": str(write_colour_task(tmp_path / "sft.jsonl", 40))},
        }
    )
    sft_layout = JobLayout.new(tmp_path / "jobs", "sft")
    sft.save(sft_layout.spec)
    assert run(sft_layout)[0] == EXIT_OK, sft_layout.log.read_text()[-3000:]

    layout = make_job(tmp_path, tiny_llama, "dpo", "dpo", continue_from=str(sft_layout.adapter))
    code, events = run(layout)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    assert any(isinstance(e, Metric) and "rewards/margins" in e.values for e in events)
    config = json.loads((layout.adapter / "adapter_config.json").read_text())
    assert config["r"] == 4, "the continued adapter keeps its own shape"
    assert set(config["target_modules"]) == set(
        json.loads((sft_layout.adapter / "adapter_config.json").read_text())["target_modules"]
    )


def test_continuing_a_folder_that_is_no_adapter_is_a_data_error(tmp_path: Path, tiny_llama: Path) -> None:
    layout = make_job(tmp_path, tiny_llama, "dpo", continue_from=str(tmp_path))
    code, events = run(layout)
    assert code == EXIT_FAILED
    error = next(e for e in events if isinstance(e, Error))
    assert error.error_type == "data"
    assert error.message == (
        f"continue_from: {tmp_path} is not an adapter folder (it has no adapter_config.json); give the adapter "
        "folder of a finished job"
    )
