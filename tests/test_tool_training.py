"""A tool-calling fine-tune end to end: SFT on get_weather calls in a real worker process, then an evaluation
whose tool-call check finds calls that parse, name the function and carry valid arguments, where the base's
answers hold none."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from backend.core.events import EventSink
from backend.core.layout import ADAPTER_RECORD, JobLayout
from backend.core.spec import JobSpec
from backend.core.stop import StopRequest
from backend.core.task_specs import EvaluateSpec
from backend.evaluation.job import run_evaluation
from backend.evaluation.report_schema import read_report
from backend.jobs.launch import start_worker
from backend.jobs.worker import EXIT_OK
from tests.tiny_models import TOOLS_TEMPLATE, build_tiny_model

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
CITIES = ["Paris", "Oslo", "Rome", "Lima", "Cairo", "Tokyo", "Quito", "Dublin"]
ASKS = ["What is the weather in {}?", "How warm is it in {} today?", "Is it raining in {}?"]


@pytest.fixture(autouse=True)
def _worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def weather_rows(path: Path, n: int, seed: int) -> Path:
    """User questions about a city, each answered by a get_weather call for that city."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for _ in range(n):
        city = rng.choice(CITIES)
        call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}}
        messages = [
            {"role": "user", "content": rng.choice(ASKS).format(city)},
            {"role": "assistant", "content": "", "tool_calls": [call]},
        ]
        rows.append({"messages": messages, "tools": [WEATHER]})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.slow  # about 40 s on a 2-core CPU: 80 steps and 16 answers of 72 tokens
def test_a_tool_calling_sft_makes_calls_that_parse(tmp_path: Path) -> None:
    # The tool list in the system turn takes ~200 of this byte-level tokenizer's tokens: max_seq_length
    # leaves room for the whole call, which a cut at 256 tokens would silently drop from training.
    model = build_tiny_model("qwen2", tmp_path / "model", chat_template=TOOLS_TEMPLATE)
    spec = JobSpec.from_dict(
        {
            "name": "weather-tools",
            "base_model": str(model),
            "lora": {"r": 8},
            "training": {
                "max_steps": 80,
                "micro_batch_size": 8,
                "gradient_accumulation_steps": 1,
                "learning_rate": 1e-2,
                "max_seq_length": 384,
            },
            "data": {"path": str(weather_rows(tmp_path / "train.jsonl", 160, seed=0))},
            "schedule": {"save_every_steps": 80, "eval_every_steps": 80},
        }
    )
    layout = JobLayout.new(tmp_path / "jobs", "weather-tools")
    spec.save(layout.spec)
    process = start_worker(layout, pipe_events=False)
    assert process.wait() == EXIT_OK, layout.log.read_text()[-3000:]

    evaluation = JobLayout.new(tmp_path / "jobs", "evaluate")
    held_out = weather_rows(tmp_path / "held_out.jsonl", 8, seed=1)
    evaluate = EvaluateSpec.from_dict(
        {"adapter": str(layout.adapter), "data": str(held_out), "max_new_tokens": 72, "batch_size": 8}
    )
    outcome = run_evaluation(evaluate, evaluation, EventSink(None, None), StopRequest())
    report = read_report(outcome.report_path)
    adapter, base = report.tool_calls["adapter"], report.tool_calls["base"]
    assert adapter["calls_expected"] == base["calls_expected"] == 8
    assert base["parse_rate"] == 0.0, "the untrained base writes no call"
    assert adapter["parse_rate"] > base["parse_rate"]
    assert adapter["parse_rate"] >= 0.5, report.tool_call_answers  # measured: 0.75 (6 of 8)
    assert adapter["valid_name_rate"] >= 0.5 and adapter["valid_arguments_rate"] >= 0.5
    assert outcome.metrics["adapter_tool_parse_rate"] == adapter["parse_rate"]
    # Each held-out reference makes a call, so every answer is listed as expected to call.
    assert all(answer.expected for answer in report.tool_call_answers)
    record = json.loads((layout.adapter / ADAPTER_RECORD).read_text())
    assert record["evaluation"]["tool_calls"]["parse_rate"] == adapter["parse_rate"]
    assert record["evaluation"]["base_tool_calls"]["parse_rate"] == 0.0
