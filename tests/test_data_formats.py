"""Each row layout: how it is recognised, how it becomes messages, and how a person overrides or maps it.

The rows follow the published layouts of well-known datasets (named in each case), so
detection is tested against what people actually download.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from backend.core.spec import DataFormat, JobSpec, SpecError
from backend.data.formats import FORMATS, detect
from backend.data.load import check_dataset, read_dataset
from backend.data.scan import ImportOptions


def write(tmp_path: Path, rows: list[dict], name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def only(tmp_path: Path, row: dict, **options) -> tuple[str, list[dict], str | None]:
    """The detected format, the normalized messages and tools of a one-row file."""
    loaded = read_dataset(write(tmp_path, [row]), ImportOptions(**options))
    example = loaded.examples[0]
    return loaded.report.files[0].format, example.messages, example.tools


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str, **extra) -> dict:
    return {"role": "assistant", "content": text, **extra}


def system(text: str) -> dict:
    return {"role": "system", "content": text}


# -- OpenAI / ChatML messages ----------------------------------------------------------


def test_openai_fine_tuning_rows_with_tools_tool_calls_and_weights(tmp_path: Path) -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    row = {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            user("Weather in Oslo?"),
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "5 C"},
            {"role": "assistant", "content": "5 C and clear.", "weight": 1},
            user("Thanks"),
            {"role": "assistant", "content": "Any time.", "weight": 0},
            user("Bye"),
            assistant("Bye!"),
        ],
        "tools": tools,
    }
    fmt, messages, saved_tools = only(tmp_path, row)
    assert fmt == "messages"
    assert messages[0] == system("Be brief.")
    structured = {**call, "function": {"name": "weather", "arguments": {"city": "Oslo"}}}
    assert messages[2] == assistant("", tool_calls=[structured])  # the call as structure, arguments parsed
    assert messages[3] == {"role": "tool", "content": "5 C", "tool_call_id": "c1"}
    assert messages[4] == assistant("5 C and clear.")
    assert messages[6] == assistant("Any time.", trained=False)
    assert json.loads(saved_tools or "") == tools


def test_content_as_typed_text_parts(tmp_path: Path) -> None:
    row = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            assistant("c"),
        ]
    }
    assert only(tmp_path, row)[1][0] == user("a\nb")


def test_ultrachat_layout_uses_messages_not_the_prompt_column(tmp_path: Path) -> None:
    # HuggingFaceH4/ultrachat_200k: prompt, prompt_id, messages
    row = {"prompt": "Hi", "prompt_id": "abc", "messages": [user("Hi"), assistant("Hello")]}
    fmt, messages, _ = only(tmp_path, row)
    assert fmt == "messages" and messages == [user("Hi"), assistant("Hello")]


def test_conversation_key_with_role_content(tmp_path: Path) -> None:
    # lmsys-chat-1m style: "conversation" of {role, content}
    fmt, messages, _ = only(tmp_path, {"conversation": [user("q"), assistant("a")], "model": "x"})
    assert fmt == "messages" and messages == [user("q"), assistant("a")]


# -- ShareGPT ---------------------------------------------------------------------------


def test_sharegpt_vicuna_layout(tmp_path: Path) -> None:
    # anon8231489123/ShareGPT_Vicuna_unfiltered: id, conversations of {from: human|gpt, value}
    row = {"id": "x1", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    fmt, messages, _ = only(tmp_path, row)
    assert fmt == "sharegpt" and messages == [user("q"), assistant("a")]


def test_sharegpt_openhermes_and_slimorca_weights(tmp_path: Path) -> None:
    # teknium/OpenHermes-2.5 and Open-Orca/SlimOrca: {from, value, weight} with system turns
    turns = [
        {"from": "system", "value": "sys", "weight": 0.0},
        {"from": "human", "value": "q", "weight": 0.0},
        {"from": "gpt", "value": "a", "weight": 1.0},
    ]
    fmt, messages, _ = only(tmp_path, {"conversations": turns, "source": "x"})
    assert fmt == "sharegpt" and messages == [system("sys"), user("q"), assistant("a")]


def test_sharegpt_llama_factory_tools_and_system_fields(tmp_path: Path) -> None:
    # LLaMA-Factory's sharegpt: function_call / observation turns, system and tools as separate fields
    row = {
        "conversations": [
            {"from": "human", "value": "weather?"},
            {"from": "function_call", "value": '{"name": "weather", "arguments": {}}'},
            {"from": "observation", "value": "5 C"},
            {"from": "gpt", "value": "It is 5 C."},
        ],
        "system": "You can call tools.",
        "tools": '[{"name": "weather", "parameters": {}}]',
    }
    fmt, messages, tools = only(tmp_path, row)
    assert fmt == "sharegpt"
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[0]["content"] == "You can call tools." and tools == row["tools"]


# -- instruction pairs ------------------------------------------------------------------


def test_alpaca_with_input_system_and_history(tmp_path: Path) -> None:
    # tatsu-lab/alpaca (instruction, input, output, text) plus LLaMA-Factory's system and history
    row = {
        "instruction": "Translate",
        "input": "Hallo",
        "output": "Hello",
        "text": "### Instruction: ...",
        "system": "You translate.",
        "history": [["Translate Tschüss", "Bye"]],
    }
    fmt, messages, _ = only(tmp_path, row)
    assert fmt == "alpaca"
    assert messages == [
        system("You translate."),
        user("Translate Tschüss"),
        assistant("Bye"),
        user("Translate\n\nHallo"),
        assistant("Hello"),
    ]


def test_alpaca_empty_input_is_left_out(tmp_path: Path) -> None:
    assert only(tmp_path, {"instruction": "Say hi", "input": "", "output": "hi"})[1] == [
        user("Say hi"),
        assistant("hi"),
    ]


def test_dolly_layout(tmp_path: Path) -> None:
    # databricks/databricks-dolly-15k: instruction, context, response, category
    row = {"instruction": "Summarise", "context": "Long text", "response": "Short", "category": "summarization"}
    fmt, messages, _ = only(tmp_path, row)
    assert fmt == "alpaca" and messages == [user("Summarise\n\nLong text"), assistant("Short")]


def test_openorca_layout_is_question_answer_with_system_prompt(tmp_path: Path) -> None:
    # Open-Orca/OpenOrca: id, system_prompt, question, response
    row = {"id": "flan.1", "system_prompt": "Think step by step.", "question": "2+2?", "response": "4"}
    fmt, messages, _ = only(tmp_path, row)
    assert fmt == "question_answer" and messages == [system("Think step by step."), user("2+2?"), assistant("4")]


def test_question_answer_numbers_become_text(tmp_path: Path) -> None:
    assert only(tmp_path, {"question": "6*7?", "answer": 42})[1] == [user("6*7?"), assistant("42")]


def test_prompt_completion_standard_and_conversational(tmp_path: Path) -> None:
    # TRL's prompt-completion type, standard and conversational
    assert only(tmp_path, {"prompt": "The sky is", "completion": " blue."}) == (
        "prompt_completion",
        [user("The sky is"), assistant(" blue.")],
        None,
    )
    row = {"prompt": [system("s"), user("What colour?")], "completion": [assistant("Blue.")]}
    assert only(tmp_path, row)[1] == [system("s"), user("What colour?"), assistant("Blue.")]


def test_plain_text_rows(tmp_path: Path) -> None:
    # timdettmers/openassistant-guanaco style: one pre-rendered "text" column
    loaded = read_dataset(write(tmp_path, [{"text": "### Human: hi ### Assistant: hello"}]))
    assert loaded.report.files[0].format == "text"
    assert loaded.examples[0].text == "### Human: hi ### Assistant: hello" and loaded.examples[0].messages == []


# Preference and labelled layouts (refused for SFT, with checked advice) are in test_data_preference.py.


def test_multimodal_rows_are_recognised(tmp_path: Path) -> None:
    # liuhaotian/LLaVA-Instruct-150K: id, image, conversations with "<image>"
    llava = {
        "id": "1",
        "image": "coco/1.jpg",
        "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A cat."}],
    }
    parts = {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}, assistant("x")]}
    text_only = {
        "id": "2",
        "image": None,
        "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
    }
    report = check_dataset(write(tmp_path, [llava, text_only]))
    assert report.accepted == 1
    problem = report.problems.kept[0]
    assert (problem.code, problem.field) == ("multimodal", "image") and "image data in 'image'" in problem.message
    assert "text-only" in problem.hint
    report = check_dataset(write(tmp_path, [parts], "parts.jsonl"))
    assert report.problems.kept[0].code == "multimodal" and "input audio" in report.problems.kept[0].message


# -- detection, override, mapping --------------------------------------------------------------


def test_detection_takes_the_layout_most_rows_have(tmp_path: Path) -> None:
    rows = [{"instruction": "i", "output": "o"}] * 3 + [{"question": "q", "answer": "a"}]
    detection = detect(rows)
    assert detection.format == "alpaca" and detection.reason == "its fields are in 3 of the 4 rows looked at"


def test_unknown_layout_lists_the_columns_to_map(tmp_path: Path) -> None:
    report = check_dataset(write(tmp_path, [{"ticket": "t", "reply": "r", "agent": "a"}]))
    assert not report.usable
    assert report.files[0].columns == ["agent", "reply", "ticket"]
    problem = report.problems.kept[0]
    assert problem.code == "unknown_format" and "ticket" in problem.message and "map the columns" in problem.message


def test_format_override_applies_its_rules(tmp_path: Path) -> None:
    path = write(tmp_path, [{"instruction": "i", "output": "o", "question": "q", "answer": "a"}])
    assert read_dataset(path).examples[0].messages == [user("i"), assistant("o")]
    forced = read_dataset(path, ImportOptions(format="question_answer"))
    assert (
        forced.examples[0].messages == [user("q"), assistant("a")] and "you chose it" in forced.report.files[0].reason
    )
    wrong = check_dataset(path, ImportOptions(format="messages"))
    assert wrong.problems.kept[0].code == "missing_field" and "no 'messages' field" in wrong.problems.kept[0].message


def test_column_mapping(tmp_path: Path) -> None:
    rows = [{"ticket": "Printer jams", "notes": "model X", "reply": "Open tray B", "persona": "Support agent"}]
    mapping = {"instruction": "ticket", "input": "notes", "response": "reply", "system": "persona"}
    loaded = read_dataset(write(tmp_path, rows), ImportOptions(format="columns", columns=mapping))
    assert loaded.examples[0].messages == [
        system("Support agent"),
        user("Printer jams\n\nmodel X"),
        assistant("Open tray B"),
    ]
    missing = check_dataset(
        write(tmp_path, [{"ticket": "t"}]), ImportOptions(columns={"instruction": "ticket", "response": "reply"})
    )
    assert "no 'reply' field" in missing.problems.kept[0].message


def test_spec_format_names_match_the_readers() -> None:
    assert set(get_args(DataFormat)) == {"auto", *FORMATS}


def test_spec_mapping_round_trips_into_import_options(tmp_path: Path) -> None:
    spec = JobSpec.from_dict(
        {
            "data": {
                "path": "x.csv",
                "format": "columns",
                "columns": {"instruction": "q", "response": "a"},
                "dedupe": True,
            }
        }
    )
    again = JobSpec.from_text(spec.to_yaml())
    options = ImportOptions.from_spec(again.data)
    assert options == ImportOptions(format="columns", columns={"instruction": "q", "response": "a"}, dedupe=True)


def test_spec_refuses_a_mapping_that_cannot_apply() -> None:
    with pytest.raises(SpecError, match=r"needs data\.columns when data\.format is 'columns'"):
        JobSpec.from_dict({"data": {"path": "x", "format": "columns"}})
    with pytest.raises(SpecError, match=r"data\.columns\.response is required"):
        JobSpec.from_dict({"data": {"path": "x", "columns": {"instruction": "q"}}})
    with pytest.raises(SpecError, match="has a column mapping"):
        JobSpec.from_dict({"data": {"path": "x", "format": "alpaca", "columns": {"instruction": "q", "response": "a"}}})
