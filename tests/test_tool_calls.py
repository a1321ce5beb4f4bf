"""The evaluation's tool-call check on hand-written answers in each model family's syntax, with known results."""

from __future__ import annotations

from typing import Any

from backend.evaluation.assemble import PromptItem, _tool_call_check
from backend.evaluation.report_schema import ToolCallAnswer
from backend.evaluation.tool_calls import check_calls, find_calls, tool_call_rates
from backend.registry.gates import Gate, Gates, check

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TOOLS: list[dict[str, Any]] = [WEATHER]


def test_each_family_syntax_is_read_as_a_call() -> None:
    hermes = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    llama = '{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "C"}}'
    mistral = '[{"name": "get_weather", "arguments": {"city": "Rome"}}]'  # [TOOL_CALLS] is stripped as special
    openai = '{"type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Lima\\"}"}}'
    for answer, city in ((hermes, "Paris"), (llama, "Oslo"), (mistral, "Rome"), (openai, "Lima")):
        [call] = check_calls(answer, TOOLS)
        assert (call.parsed, call.name, call.arguments["city"]) == (True, "get_weather", city), answer
        assert call.valid_name and call.valid_arguments and call.problem is None


def test_two_calls_in_one_answer_and_prose_around_them() -> None:
    answer = (
        "Let me check both.\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Nice"}}\n</tool_call>'
    )
    assert [c.arguments["city"] for c in find_calls(answer)] == ["Paris", "Nice"]
    assert find_calls("The weather in Paris is {mild} today.") == []  # braces without a call are prose


def test_broken_calls_say_what_is_wrong() -> None:
    [cut] = check_calls('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par', TOOLS)
    assert not cut.parsed and cut.problem is not None and cut.problem.startswith("not JSON:")
    [untagged] = check_calls('{"name": "get_weather", "arguments": {city: Paris}}', TOOLS)
    assert not untagged.parsed and untagged.problem is not None and "not JSON" in untagged.problem
    [text_arguments] = check_calls('{"name": "get_weather", "arguments": "{city"}', TOOLS)
    assert not text_arguments.parsed and text_arguments.problem is not None
    assert text_arguments.problem.startswith("the arguments are not JSON")


def test_names_and_arguments_are_checked_against_the_examples_schema() -> None:
    [unknown] = check_calls('{"name": "get_time", "arguments": {"city": "Paris"}}', TOOLS)
    assert unknown.parsed and not unknown.valid_name and not unknown.valid_arguments
    assert unknown.problem == "get_time is not a defined function (defined: get_weather)"
    [missing] = check_calls('{"name": "get_weather", "arguments": {"unit": "C"}}', TOOLS)
    assert missing.valid_name and not missing.valid_arguments
    assert missing.problem == "arguments: 'city' is a required property"
    [wrong] = check_calls('{"name": "get_weather", "arguments": {"city": "Paris", "unit": "K"}}', TOOLS)
    assert not wrong.valid_arguments and wrong.problem == "arguments/unit: 'K' is not one of ['C', 'F']"
    [extra] = check_calls('{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}', TOOLS)
    assert not extra.valid_arguments and extra.problem is not None and "days" in extra.problem


def test_rates_count_the_answers_expected_to_call() -> None:
    good = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    bad_arguments = '<tool_call>{"name": "get_weather", "arguments": {"town": "Paris"}}</tool_call>'
    bad_name = '<tool_call>{"name": "weather", "arguments": {"city": "Paris"}}</tool_call>'
    unparsed = "<tool_call>{get_weather(Paris)}</tool_call>"
    answers = [good, bad_arguments, bad_name, unparsed, "It is sunny.", good]
    expected = [True, True, True, True, True, False]  # the last prompt's reference answers in words
    rates = tool_call_rates(expected, [check_calls(a, TOOLS) for a in answers])
    assert rates == {
        "calls_expected": 5.0,
        "calls_made": 5.0,
        "parse_rate": 3 / 5,
        "valid_name_rate": 2 / 5,
        "valid_arguments_rate": 1 / 5,
    }
    assert tool_call_rates([], [])["parse_rate"] == 0.0


def test_the_report_lists_every_answer_and_the_gates_read_the_rates() -> None:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    items = [
        PromptItem([{"role": "user", "content": "Weather in Paris?"}], "", "row 1", TOOLS, [call]),
        PromptItem([{"role": "user", "content": "Hello"}], "Hi!", "row 2"),  # no tools: not checked
    ]
    outputs = [
        {
            "base": "I think it is sunny.",
            "adapter": '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}',
        },
        {"base": "Hi", "adapter": "Hello!"},
    ]
    found = _tool_call_check(items, outputs, ["base", "adapter"])
    assert found["tool_calls"]["base"]["parse_rate"] == 0.0
    assert found["tool_calls"]["adapter"]["valid_arguments_rate"] == 1.0
    [answer] = [ToolCallAnswer.model_validate(a) for a in found["tool_call_answers"]]
    assert (answer.index, answer.expected, answer.calls["base"]) == (0, True, [])
    assert answer.calls["adapter"][0].arguments == {"city": "Paris"}
    assert _tool_call_check(items[1:], outputs[1:], ["base", "adapter"]) == {}

    summary = {"tool_calls": found["tool_calls"]["adapter"], "base_tool_calls": found["tool_calls"]["base"]}
    gates = Gates(
        gates=[
            Gate(metric="tool_calls.valid_arguments_rate", rule=">=", than=0.9),
            Gate(metric="tool_calls.parse_rate", rule=">", than="base"),
        ]
    )
    results = check(gates, summary, None)
    assert [r.passed for r in results] == [True, True]
    assert results[1].reference == 0.0
    failing = check(gates, {"tool_calls": found["tool_calls"]["base"]}, None)
    assert [r.passed for r in failing] == [False, False]
    assert failing[1].why == "the base's tool_calls.parse_rate was not measured"
    unmeasured = check(gates, {"loss": 1.0}, None)[0]
    assert unmeasured.why == (
        "tool_calls.valid_arguments_rate was not measured: run an evaluation whose held-out examples carry tools "
        "and tool calls"
    )


def test_the_report_files_show_the_rates_per_model() -> None:
    from backend.evaluation.report import render_html, render_markdown
    from backend.evaluation.report_schema import EvaluationReport

    rates = {"calls_expected": 8.0, "calls_made": 6.0, "parse_rate": 0.75, "valid_name_rate": 0.75}
    report = EvaluationReport.model_validate(
        {
            "name": "weather",
            "created_at": "2026-12-08T00:00:00Z",
            "job": "/jobs/evaluate",
            "precision": "float32",
            "device": "cpu",
            "base": {"label": "tiny", "path": "/models/tiny"},
            "models": [{"key": "base", "label": "base"}, {"key": "adapter", "label": "weather-tools"}],
            "data": {"source": "held_out.jsonl"},
            "tool_calls": {
                "base": {
                    **rates,
                    "calls_made": 0.0,
                    "parse_rate": 0.0,
                    "valid_name_rate": 0.0,
                    "valid_arguments_rate": 0,
                },
                "adapter": {**rates, "valid_arguments_rate": 0.625},
            },
        }
    )
    markdown = render_markdown(report)
    assert "## Tool calls" in markdown
    assert "| base | 8 | 0 | 0% | 0% | 0% |" in markdown
    assert "| weather-tools | 8 | 6 | 75% | 75% | 62% |" in markdown
    html = render_html(report)
    assert "<h2>Tool calls</h2>" in html and "<td class='num'>62%</td>" in html
    assert "Tool calls" not in render_markdown(report.model_copy(update={"tool_calls": {}}))
