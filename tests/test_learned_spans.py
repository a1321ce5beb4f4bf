"""What is learned, per layout and flag, asserted token by token on real tokenizers; tool calls as structure.

Rows are written as each source documents them (OpenAI and Together ``weight``, Axolotl ``train``,
``train_detail`` and flagged content parts, LLaMA-Factory ``function_call``/``observation``, OpenAI
``tool_calls``/``function_call``/``functions``), read through the importer, and tokenized as training
does. A property test checks the mask against the templates' own ``{% generation %}`` markers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backend.data.chat_tokens import IGNORE, RowRefused, tokenize_chat, tool_support
from backend.data.examples import canonical
from backend.data.formats import Detection, detect, normalizer
from backend.data.load import check_dataset, read_dataset
from backend.data.rules import Reject
from backend.data.scan import ImportOptions
from backend.data.store import import_dataset, read_examples
from backend.data.tokens import TokenCounter, tokenize_example
from tests.tiny_models import TOOLS_TEMPLATE, build_tiny_tokenizer

_TOKENIZERS: dict[str, Any] = {}


def tokenizer_for(name: str) -> Any:
    """chatml (Qwen2), gemma (Gemma 3: no system or tool role) or tools (ChatML with native tool calls)."""
    if name not in _TOKENIZERS:
        tokenizer = build_tiny_tokenizer("gemma3" if name == "gemma" else "qwen2")
        if name == "tools":
            tokenizer.chat_template = TOOLS_TEMPLATE
        _TOKENIZERS[name] = tokenizer
    return _TOKENIZERS[name]


def runs(tokenizer: Any, tokens: Any) -> list[str]:
    """The learned tokens, decoded run by run: the exact mask, token for token."""
    out: list[str] = []
    current: list[int] = []
    for token, label in zip(tokens.input_ids, tokens.labels, strict=True):
        if label != IGNORE:
            current.append(token)
        elif current:
            out.append(tokenizer.decode(current))
            current = []
    return [*out, tokenizer.decode(current)] if current else out


def example_of(tmp_path: Path, row: dict[str, Any]) -> Any:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(row) + "\n")
    loaded = read_dataset(path, ImportOptions())
    assert loaded.examples, loaded.report.problems
    return loaded.examples[0]


def learned_runs(tmp_path: Path, row: dict[str, Any], template: str = "chatml") -> list[str]:
    tokenizer = tokenizer_for(template)
    return runs(tokenizer, tokenize_example(tokenizer, example_of(tmp_path, row)))


def refusal(row: dict[str, Any]) -> Reject:
    values = [row]
    with pytest.raises(Reject) as caught:
        normalizer(detect(values))(row)
    return caught.value


def u(text: str, **flags: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **flags}


def a(text: str, **flags: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": text, **flags}


END = "<|im_end|>\n"


# -- per-turn flags ----------------------------------------------------------------------


def test_openai_weight_0_and_1_on_replies(tmp_path: Path) -> None:
    row = {"messages": [u("Hi"), a("Hello there.", weight=0), u("Again"), a("Welcome back.", weight=1)]}
    assert learned_runs(tmp_path, row) == ["Welcome back." + END]


def test_together_weight_1_on_a_user_turn_trains_it(tmp_path: Path) -> None:
    row = {"messages": [u("Question one", weight=1), a("Answer one."), u("Question two", weight=0), a("Two.")]}
    assert learned_runs(tmp_path, row) == ["Question one", "Answer one." + END, "Two." + END]


def test_sharegpt_weights_are_honoured(tmp_path: Path) -> None:
    # OpenHermes/SlimOrca carry weight on every turn; 0.0 on a reply keeps it out of the loss
    turns = [
        {"from": "human", "value": "q1", "weight": 0.0},
        {"from": "gpt", "value": "skip this", "weight": 0.0},
        {"from": "human", "value": "q2", "weight": 0.0},
        {"from": "gpt", "value": "learn this", "weight": 1.0},
    ]
    assert learned_runs(tmp_path, {"conversations": turns}) == ["learn this" + END]


def test_axolotl_train_flag_per_message(tmp_path: Path) -> None:
    row = {"messages": [u("Prompt", train=True), a("Wrong answer.", train=False), u("Retry"), a("Right answer.")]}
    assert learned_runs(tmp_path, row) == ["Prompt", "Right answer." + END]


def test_axolotl_train_detail_offsets_are_inclusive(tmp_path: Path) -> None:
    content = "The answer is 42 because reasons."
    begin = content.index(" 42")
    detail = [
        {"begin_offset": 0, "end_offset": begin - 1, "train": False},
        {"begin_offset": begin, "end_offset": begin + 2, "train": True},  # " 42", end inclusive
        {"begin_offset": begin + 3, "end_offset": len(content) - 1, "train": False},
    ]
    row = {"messages": [u("Why?"), a(content, train_detail=detail)]}
    example = example_of(tmp_path, row)
    assert example.messages[1]["train_spans"] == [[begin, begin + 3]]
    assert learned_runs(tmp_path, row) == [" 42", END]  # the span, then the end-of-turn


def test_axolotl_train_detail_on_a_user_turn(tmp_path: Path) -> None:
    detail = [{"begin_offset": 4, "end_offset": 8, "train": True}]  # " me a": whole tokens
    row = {"messages": [u("Tell me a joke", train_detail=detail), a("No.")]}
    assert learned_runs(tmp_path, row) == [" me a", "No." + END]


def test_axolotl_flagged_content_parts(tmp_path: Path) -> None:
    parts = [{"type": "text", "text": "Let me think.", "train": False}, {"type": "text", "text": " It is blue."}]
    row = {"messages": [u("Sky?"), {"role": "assistant", "content": parts}]}
    example = example_of(tmp_path, row)
    assert example.messages[1]["content"] == "Let me think. It is blue."  # flagged parts join as Axolotl does
    assert learned_runs(tmp_path, row) == [" It is blue." + END]


def test_a_span_the_template_changes_is_refused_not_ignored(tmp_path: Path) -> None:
    # Gemma's template trims content, so a span in text with a trailing space cannot be placed
    detail = [{"begin_offset": 0, "end_offset": 2, "train": True}]
    example = example_of(tmp_path, {"messages": [u("Hi"), a("Yes, fine. ", train_detail=detail)]})
    tokenizer = tokenizer_for("gemma")
    with pytest.raises(RowRefused, match="changes the text of message 2"):
        tokenize_example(tokenizer, example)


@pytest.mark.parametrize(
    ("turn", "words"),
    [
        (a("x", weight=0.5), "weight 0.5"),
        (a("x", train="yes"), "train 'yes'"),
        (a("x", train_detail=[{"begin_offset": 0, "end_offset": 5, "train": True}]), "train_detail entry"),
    ],
)
def test_flags_that_cannot_be_honoured_refuse_the_row(turn: dict[str, Any], words: str) -> None:
    assert words in refusal({"messages": [u("q"), turn]}).message


def test_all_turns_marked_unlearned_is_nothing_to_learn() -> None:
    assert refusal({"messages": [u("q"), a("x", train=False)]}).code == "nothing_to_learn"


# -- tool calls as structure -------------------------------------------------------------------

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def test_content_and_tool_calls_both_reach_the_template(tmp_path: Path) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    row = {
        "messages": [
            u("Weather in Oslo?"),
            {"role": "assistant", "content": "Let me check.", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "5 C"},
            a("It is 5 C."),
        ],
        "tools": [WEATHER],
    }
    example = example_of(tmp_path, row)
    assert example.messages[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}
    assert example.messages[2]["tool_call_id"] == "call_1"
    tokenizer = tokenizer_for("tools")
    tokens = tokenize_example(tokenizer, example)
    assert '"name": "get_weather"' in tokens.text.split("<tools>")[1].split("</tools>")[0]  # the tool list
    call_text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert runs(tokenizer, tokens) == [f"Let me check.\n{call_text}<|im_end|>\n", "It is 5 C." + END]


def test_legacy_function_call_and_functions(tmp_path: Path) -> None:
    row = {
        "messages": [
            u("Weather?"),
            {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "{}"}},
            {"role": "function", "name": "get_weather", "content": "5 C"},
            a("5 C."),
        ],
        "functions": [{"name": "get_weather", "parameters": {"type": "object"}}],
    }
    example = example_of(tmp_path, row)
    assert json.loads(example.tools or "") == [{"type": "function", "function": row["functions"][0]}]
    assert example.messages[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {}}}],
    }
    assert example.messages[2] == {"role": "tool", "content": "5 C", "name": "get_weather"}


def test_llama_factory_function_call_and_observation(tmp_path: Path) -> None:
    row = {
        "conversations": [
            {"from": "human", "value": "Weather in Oslo?"},
            {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Oslo"}}'},
            {"from": "observation", "value": "5 C"},
            {"from": "gpt", "value": "It is 5 C."},
        ],
        "tools": json.dumps([WEATHER]),
    }
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert learned_runs(tmp_path, row, "tools") == [call + END, "It is 5 C." + END]


def test_arguments_that_are_not_json_refuse_the_row() -> None:
    call = {"type": "function", "function": {"name": "f", "arguments": "{city: Oslo"}}
    row = {"messages": [u("q"), {"role": "assistant", "content": None, "tool_calls": [call]}]}
    rejected = refusal(row)
    assert rejected.code == "bad_tool_call" and "not valid JSON" in rejected.message


def test_a_template_without_tool_calls_refuses_a_learned_call(tmp_path: Path) -> None:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {}}}
    row = {
        "messages": [
            u("q"),
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": "r"},
        ]
    }
    row["messages"].append(a("done"))
    example = example_of(tmp_path, row)
    assert tool_support(tokenizer_for("chatml")).tool_calls is False
    assert tool_support(tokenizer_for("tools")).tool_calls is True and tool_support(tokenizer_for("tools")).tools
    with pytest.raises(RowRefused, match="does not show tool calls"):
        tokenize_example(tokenizer_for("chatml"), example)
    counter = TokenCounter(tokenizer_for("chatml"), "tiny", 512)
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(row) + "\n")
    check_dataset(path, counter=counter)
    assert counter.failed == 1 and "does not show tool calls" in counter.problems.kept[0].message


# -- roles, storage and the hash ----------------------------------------------------------


def test_provider_role_aliases_and_all_unknown_roles_at_once() -> None:
    cohere = {"messages": [{"role": "SYSTEM", "content": "s"}, {"role": "USER", "content": "q"}]}
    cohere["messages"].append({"role": "CHATBOT", "content": "a"})
    assert normalizer(detect([cohere]))(cohere).roles == ["system", "user", "assistant"]
    gemini = {"messages": [{"role": "user", "content": "q"}, {"role": "model", "content": "a"}]}
    assert normalizer(detect([gemini]))(gemini).roles == ["user", "assistant"]
    odd = {"messages": [{"role": "robot", "content": "q"}, {"role": "oracle", "content": "a"}]}
    message = refusal(odd).message
    assert "'robot' (message 1)" in message and "'oracle' (message 2)" in message
    assert refusal({"messages": [{"role": ["user"], "content": "q"}, a("x")]}).code == "unknown_role"


def test_flags_and_calls_survive_storage_and_change_the_hash(tmp_path: Path) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": [1, 2]}}}
    detail = [{"begin_offset": 0, "end_offset": 1, "train": True}]
    rows = [
        {"messages": [u("q", weight=1), a("abc", train_detail=detail)]},
        {"messages": [u("q"), a("call", tool_calls=[call]), {"role": "tool", "content": "r", "tool_call_id": "c1"}]}
        | {"tools": [WEATHER]},
    ]
    rows[1]["messages"].append(a("ok"))
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stored, _ = import_dataset(path, root=tmp_path / "store")
    original = read_dataset(path).examples
    assert [e.messages for e in read_examples(stored.path)] == [e.messages for e in original]
    assert read_dataset(stored.path).content_hash == read_dataset(path).content_hash
    assert original[0].messages == [u("q", trained=True), a("abc", train_spans=[[0, 2]])]
    plain = detect([{"messages": [u("q"), a("abc")]}])
    keys = {
        canonical(normalizer(plain)({"messages": [u("q"), a("abc", **flag)]}))
        for flag in ({}, {"train_detail": detail})
    }
    keys.add(canonical(normalizer(plain)({"messages": [u("q", weight=1), a("abc")]})))
    assert len(keys) == 3


def test_datasets_stored_with_weight_still_read(tmp_path: Path) -> None:
    import pyarrow as pa

    from backend.data import store

    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"messages": [u("q"), a("skip", weight=0), u("q2"), a("keep")]}) + "\n")
    stored, _ = import_dataset(path, root=tmp_path / "store")
    old_message = pa.struct([("role", pa.string()), ("content", pa.string()), ("weight", pa.int8())])
    old_schema = pa.schema([("messages", pa.list_(old_message)), *list(store.SCHEMA)[1:]])
    messages = [[u("q"), a("skip", weight=0), u("q2"), a("keep")]]
    for m in messages[0]:
        m.setdefault("weight", None)
    table = pa.table(
        {"messages": messages, "text": [None], "tools": [None], "file": ["d.jsonl"], "line": [1], "row": [1]}
        | {"unit": ["line"]},
        schema=old_schema,
    )
    with pa.ipc.new_file(str(stored.path / store.DATA_FILE), old_schema) as writer:
        writer.write_table(table)
    [example] = read_examples(stored.path)
    assert example.messages[1] == a("skip", trained=False) and example.messages[3] == a("keep")


# -- the property: the mask is exactly what the flags say ------------------------------------------------

LAYOUTS = ("openai", "axolotl", "axolotl_parts", "sharegpt")
TEMPLATES = ("chatml", "gemma", "tools")
WORDS = ("alpha", "beta", "gamma", "delta", "omega", "sigma")


@st.composite
def conversations(draw: st.DrawFn, layout: str, template: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A row in ``layout`` and the conversation it must become: each message's flag as the model keeps it."""
    flags: list[Any] = [None, True, False]
    if layout.startswith("axolotl"):
        flags.append("span")
    counter = iter(range(1000))

    def text() -> str:
        return f"t{next(counter)} " + " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)))

    def flagged(role: str) -> dict[str, Any]:
        flag = draw(st.sampled_from(flags))
        content = text()
        message: dict[str, Any] = {"role": role, "content": content, "flag": flag}
        if flag == "span":
            first = content.index(" ")  # the span: from the first space to the end, on a token boundary
            message["span"] = (first, len(content))
        return message

    turns: list[dict[str, Any]] = []
    if template != "gemma" and draw(st.booleans()):
        turns.append(flagged("system"))
    for _ in range(draw(st.integers(1, 3))):
        turns.append(flagged("user"))
        if template == "tools" and draw(st.booleans()):
            call = {"type": "function", "function": {"name": f"fn{next(counter)}", "arguments": {"n": 1}}}
            turns.append({**flagged("assistant"), "content": "", "call": call, "span": None})
            if turns[-1]["flag"] == "span":
                turns[-1]["flag"] = True
            turns.append({**flagged("tool"), "call_name": call["function"]["name"]})
        turns.append(flagged("assistant"))
    return _row(layout, turns), turns


def _row(layout: str, turns: list[dict[str, Any]]) -> dict[str, Any]:
    out = []
    for turn in turns:
        role, content, flag = turn["role"], turn["content"], turn["flag"]
        if layout == "sharegpt":
            if "call" in turn:
                item: dict[str, Any] = {"from": "function_call", "value": json.dumps(turn["call"]["function"])}
            else:
                names = {"user": "human", "assistant": "gpt", "tool": "observation", "system": "system"}
                item = {"from": names[role], "value": content}
        else:
            item = {"role": role, "content": content}
            if "call" in turn:
                item["tool_calls"] = [turn["call"]]
            if "call_name" in turn:
                item["name"] = turn["call_name"]
        if flag in (True, False) and layout in ("openai", "sharegpt"):
            item["weight"] = int(flag)
        elif flag in (True, False):
            item["train"] = flag
        elif flag == "span":
            start, end = turn["span"]
            if layout == "axolotl":
                item["train_detail"] = [{"begin_offset": start, "end_offset": end - 1, "train": True}]
            else:
                item["content"] = [
                    {"type": "text", "text": content[:start], "train": False},
                    {"type": "text", "text": content[start:], "train": True},
                ]
        out.append(item)
    return {"conversations": out} if layout == "sharegpt" else {"messages": out}


def _is_learned(turn: dict[str, Any]) -> bool:
    return turn["role"] == "assistant" if turn["flag"] is None else turn["flag"] is not False


def _expected(tokenizer: Any, turns: list[dict[str, Any]], tools: Any, ids: list[int], offsets: Any) -> set[int]:
    """Token indices to learn, from the template's own generation markers and the contents found in order."""
    shown = []
    for turn in turns:
        message: dict[str, Any] = {"role": turn["role"], "content": turn["content"]}
        if "call" in turn:
            message["tool_calls"] = [turn["call"]]
        shown.append(message)
    marked = tokenizer.apply_chat_template(
        shown, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert marked["input_ids"] == ids
    generation: list[list[int]] = []  # token indices of each assistant turn, in order
    for index, flag in enumerate(marked["assistant_masks"]):
        if flag and (not generation or generation[-1][-1] != index - 1):
            generation.append([])
        if flag:
            generation[-1].append(index)
    text = tokenizer.apply_chat_template(shown, tools=tools, tokenize=False)
    expected: set[int] = set()
    cursor, replies = 0, iter(generation)
    for turn in turns:
        run = next(replies) if turn["role"] == "assistant" else []
        at = text.find(turn["content"], cursor) if turn["content"] else cursor
        assert at >= 0
        cursor = at + len(turn["content"])
        if not _is_learned(turn):
            continue
        low, high = (at + turn["span"][0], at + turn["span"][1]) if turn["flag"] == "span" else (at, cursor)
        expected |= {i for i, (s, e) in enumerate(offsets) if s < high and e > low}
        if turn["role"] == "assistant":  # the reply's own tokens after its content: calls and end-of-turn
            expected |= {i for i in run if offsets[i][1] > cursor}
    return expected


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_mask_covers_exactly_the_flagged_turns(layout: str, template: str) -> None:
    tokenizer = tokenizer_for(template)

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(conversations(layout, template))
    def check(drawn: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
        row, turns = drawn
        assume(any(_is_learned(t) for t in turns))
        normalized = normalizer(Detection(_format(layout), _key(layout), "test", []))(row)
        tools = [WEATHER] if template == "tools" else None
        tokens = tokenize_chat(tokenizer, list(normalized.messages), tools=tools)
        offsets = tokenizer(tokens.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        expected = _expected(tokenizer, turns, tools, tokens.input_ids, offsets)
        learned = {i for i, label in enumerate(tokens.labels) if label != IGNORE}
        # Ours may also learn the newline after an end-of-turn; nothing else may differ.
        extra = learned - expected
        assert all(tokenizer.decode([tokens.input_ids[i]]).strip() == "" for i in extra), extra
        assert expected <= learned

    check()


def _format(layout: str) -> str:
    return "sharegpt" if layout == "sharegpt" else "messages"


def _key(layout: str) -> str:
    return "conversations" if layout == "sharegpt" else "messages"
