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

from backend.core.events import Artifact, Done, Error, Event, EventSink, Metric, Progress, Started
from backend.core.layout import ADAPTER_RECORD, JobLayout
from backend.core.spec import JobSpec
from backend.core.stop import StopRequest
from backend.core.task_specs import EvaluateSpec
from backend.evaluation.job import run_evaluation
from backend.evaluation.preference import preference_accuracy
from backend.jobs.worker import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from backend.training.checkpoints import checkpoint_step, is_complete, latest_checkpoint
from tests.datasets import COLOURS
from tests.test_worker import run


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
def test_the_adapter_loads_prefers_the_right_colours_and_evaluates(tmp_path: Path, tiny_llama: Path) -> None:
    layout = make_job(tmp_path, tiny_llama, "dpo", training={"max_steps": 30})
    code, _ = run(layout)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(layout.adapter)
    rng = random.Random(7)
    held_out = [colour_pair(thing, rng) for thing in COLOURS]
    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    before = preference_accuracy(base, tokenizer, held_out)
    tuned = PeftModel.from_pretrained(base, layout.adapter)
    assert preference_accuracy(tuned, tokenizer, held_out) >= 0.75 > before

    # The evaluate job remakes the training job's held-out pairs and measures both models on them.
    evaluation = JobLayout.new(tmp_path / "jobs", "evaluate")
    spec = EvaluateSpec.from_dict({"adapter": str(layout.adapter), "max_prompts": 2, "max_new_tokens": 4})
    outcome = run_evaluation(spec, evaluation, EventSink(None, None), StopRequest())
    assert outcome.metrics["eval_examples"] == 12, "the 10% held out of 120 pairs, as training split them"
    assert outcome.metrics["adapter_preference_accuracy"] > outcome.metrics["base_preference_accuracy"]
    report = json.loads(outcome.report_path.read_text())
    assert report["losses"]["adapter"]["loss"] < report["losses"]["base"]["loss"], "the chosen answers got likelier"


@SLOW
def test_a_cancelled_dpo_job_resumes_to_the_same_step_count_and_losses(tmp_path: Path, tiny_llama: Path) -> None:
    settings: dict[str, Any] = {"schedule": {"save_every_steps": 100, "eval_every_steps": 100}}
    code, reference = run(make_job(tmp_path, tiny_llama, "dpo", "reference", **settings))
    assert code == EXIT_OK
    layout = make_job(tmp_path, tiny_llama, "dpo", "interrupted", **settings)

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
    # The resumed steps are the uninterrupted run's: same data order, weights and optimizer state.
    for key in ("loss", "rewards/margins"):
        expected = dict(enumerate(series(reference, key), start=1))
        got = {
            **dict(enumerate(series(first, key), start=1)),
            **dict(enumerate(series(second, key), start=stopped + 1)),
        }
        assert got == expected, key


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


@SLOW
def test_dpo_on_smollm2_raises_preference_accuracy_on_held_out_pairs(smollm2_store: dict, tmp_path: Path) -> None:
    """The shipped concise-answers set (assets/datasets/concise_answers): held-out questions the training pairs
    never ask, answered correctly and briefly, are preferred more often after DPO than before."""
    assets = Path(__file__).parent.parent / "assets" / "datasets" / "concise_answers"
    spec = JobSpec.from_dict(
        {
            "name": "concise",
            "base_model": str(smollm2_store["record"].path),
            "quantization": {"mode": "none"},
            "lora": {"r": 16},
            "training": {
                "objective": "dpo",
                "max_steps": 24,
                "micro_batch_size": 4,
                "gradient_accumulation_steps": 1,
                "learning_rate": 5e-4,
                "max_seq_length": 128,
                "gradient_checkpointing": False,
            },
            "data": {"path": str(assets / "train.jsonl"), "eval_path": str(assets / "eval.jsonl")},
            "schedule": {"save_every_steps": 100, "eval_every_steps": 12},
        }
    )
    layout = JobLayout.new(tmp_path / "jobs", "concise")
    spec.save(layout.spec)
    code, events = run(layout)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    assert series(events, "eval_rewards/accuracies", "eval")

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.data.preference_rows import flatten, read_preferences

    pairs = flatten(read_preferences(assets / "eval.jsonl", "dpo").records)
    tokenizer = AutoTokenizer.from_pretrained(layout.adapter)
    base = AutoModelForCausalLM.from_pretrained(smollm2_store["record"].path, dtype=torch.float32)
    before = preference_accuracy(base, tokenizer, pairs)
    after = preference_accuracy(PeftModel.from_pretrained(base, layout.adapter), tokenizer, pairs)
    print(f"SmolLM2 preference accuracy on {len(pairs)} held-out pairs: {before:.2f} before DPO, {after:.2f} after")
    assert after > before
