"""Evaluation that decides: task metrics and the refusal check reach the report, the adapter's record and
its registry version, where the release gates read them. Real training, real generation on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.core.events import EventSink
from backend.core.layout import JobLayout
from backend.core.spec import JobSpec
from backend.core.stop import StopRequest
from backend.core.task_specs import EvaluateSpec
from backend.evaluation.job import run_evaluation
from backend.evaluation.refusal import is_refusal, refusal_prompts
from backend.registry.gates import Gate, Gates
from backend.registry.registry import Registry
from tests.datasets import write_colour_task


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def train(tmp: Path, base: Path, data: Path, name: str, steps: int = 30) -> Path:
    from backend.models.runtime import Runtime
    from backend.training.sft import run_sft

    spec = JobSpec.from_dict(
        {
            "name": name,
            "base_model": str(base),
            "quantization": {"mode": "none"},
            "lora": {"r": 8},
            "training": {"max_steps": steps, "micro_batch_size": 4, "learning_rate": 3e-3, "max_seq_length": 64},
            "data": {"path": str(data), "eval_split": 0.1},
            "schedule": {"save_every_steps": 1000, "eval_every_steps": 1000},
        }
    )
    result = run_sft(
        spec, JobLayout.new(tmp / "jobs", name), EventSink(None, None), StopRequest(), False, Runtime.detect(spec)
    )
    assert result.adapter_path is not None
    return result.adapter_path


def evaluate(tmp: Path, adapter: Path, **spec: object) -> dict:
    layout = JobLayout.new(tmp / "jobs", "eval")
    outcome = run_evaluation(
        EvaluateSpec.from_dict({"adapter": str(adapter), **spec}), layout, EventSink(None, None), StopRequest()
    )
    return json.loads(outcome.report_path.read_text())


def test_task_scores_reach_the_report_the_record_and_the_registry_version_gates_read(
    tmp_path: Path, home: Path, tiny_llama: Path
) -> None:
    adapter = train(tmp_path, tiny_llama, write_colour_task(tmp_path / "colours.jsonl", 200), "colours")
    registry = Registry()
    registry.add(adapter, "colours")  # registered from the job's folder, as a finished job is
    suite_file = tmp_path / "colours-suite.yaml"
    suite_file.write_text(
        "name: colours\nprompts:\n"
        "  - {prompt: 'What colour is a lemon?', must_not_contain: ['purple lemon'], must_match: '.'}\n"
        "  - {prompt: 'What colour is the sky?', must_contain: ['no model says this']}\n"
    )
    from backend.cli.main import main as cli

    assert cli(["adapters", "suite", "colours", "--set", str(suite_file)]) == 0
    assert list(registry.suites("colours")) == ["colours"]
    report = evaluate(tmp_path, adapter, max_prompts=6, max_new_tokens=12, suites=[str(suite_file)])

    assert set(report["task"]) == {"base", "adapter"}
    for key in ("base", "adapter"):
        assert report["task"][key]["examples"] == 6 and 0 <= report["task"][key]["primary"] <= 1
    scored = report["generations"][0]["scores"]["adapter"]
    assert set(scored) >= {"exact", "normalized", "rouge_l", "chrf", "primary"}
    # 30 steps on the colour task: the adapter's answers are closer to the references than the base's.
    assert report["task"]["adapter"]["rouge_l"] > report["task"]["base"]["rouge_l"]

    run = report["suites"]["colours"]
    assert len(run["outputs"]) == 2 and set(run["results"]) == {"base", "adapter"}
    for key in ("base", "adapter"):
        assert run["results"][key]["passed"][1] is False
        assert run["results"][key]["why"][1] == ["does not contain 'no model says this'"]

    version = registry.get("colours", 1)
    latest = version.evaluations[-1]
    assert latest["suites"]["colours"]["passed"] == run["results"]["adapter"]["passed"]
    assert latest["task_score"] == pytest.approx(report["task"]["adapter"]["primary"])
    assert latest["base_task_score"] == pytest.approx(report["task"]["base"]["primary"])
    (listed,) = registry.versions("colours")
    assert listed.task_score == pytest.approx(latest["task_score"])
    registry.set_gates(
        "colours",
        Gates(gates=[Gate(metric="task.rouge_l", rule=">=", than="base"), Gate(metric="loss", rule="<=", than="base")]),
    )
    assert all(r.passed for r in registry.gate_results("colours", 1))
    registry.promote("colours", 1, reason="beats the base on the colour task")


def _refusal_data(path: Path, refuse: bool) -> Path:
    rows = []
    for check in refusal_prompts() * 4:
        reply = "I cannot help with that." if refuse else "Sure, here is how it works."
        rows.append({"messages": [{"role": "user", "content": check.prompt}, {"role": "assistant", "content": reply}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_the_refusal_check_tells_an_adapter_trained_to_refuse_from_one_trained_to_comply(
    tmp_path: Path, home: Path, tiny_llama: Path
) -> None:
    # A tiny model cannot tell a harmful request from its look-alike, but it learns a constant reply: the check
    # must count every "I cannot help with that." and none of the "Sure, here is how it works.".
    refuses = train(tmp_path, tiny_llama, _refusal_data(tmp_path / "refuse.jsonl", True), "refuses", steps=80)
    complies = train(tmp_path, tiny_llama, _refusal_data(tmp_path / "comply.jsonl", False), "complies", steps=80)
    rates = {}
    for name, adapter in (("refuses", refuses), ("complies", complies)):
        report = evaluate(tmp_path / name, adapter, refusal_check=True, max_prompts=1, max_new_tokens=24)
        rates[name] = report["refusal"]["adapter"]
        assert set(report["refusal"]) == {"base", "adapter"}
        answers = report["refusal_answers"]
        assert len(answers) == 24 and all(
            a["refused"]["adapter"] == is_refusal(a["outputs"]["adapter"]) for a in answers
        )
        rates[f"{name} says"] = sorted({a["outputs"]["adapter"] for a in answers})
    assert rates["refuses"]["refusal_rate"] >= 0.75 and rates["refuses"]["over_refusal_rate"] >= 0.75, rates
    assert rates["complies"] == {"refusal_rate": 0.0, "over_refusal_rate": 0.0}, rates
