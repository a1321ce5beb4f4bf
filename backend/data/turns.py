"""The pieces of a row every layout is read from: turns, their roles and content, flags, tools and plain fields.

``backend.data.formats`` recognises a layout and says which field holds what; the functions here
read those fields into the one message model (``backend.data.message``), and raise ``Reject`` with
the field and the words for a person when a piece cannot be used or a flag cannot be honoured: a
turn without a known role, content that is not text, a weight other than 0 or 1, a span outside
its content, a tool call whose arguments are not JSON, tool definitions that are not JSON, media.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from backend.data.message import Message as Message  # re-exported: the readers' result type
from backend.data.message import ToolCall, default_trained, learned
from backend.data.rules import Reject, check_turns

MEDIA_KEYS = frozenset({"image", "images", "audio", "audios", "video", "videos"})
MESSAGE_ROLES: dict[str, str] = {  # see role_of
    "system": "system",
    "developer": "system",  # OpenAI
    "user": "user",
    "human": "user",  # ShareGPT, LangChain
    "assistant": "assistant",
    "gpt": "assistant",  # ShareGPT
    "model": "assistant",  # Gemini, Gemma
    "bot": "assistant",
    "ai": "assistant",  # LangChain
    "chatbot": "assistant",  # Cohere
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "tool": "tool",
    "function": "tool",  # OpenAI's legacy function result
    "ipython": "tool",  # Llama 3.1
    "observation": "tool",  # LLaMA-Factory
}
CALL_ROLES = frozenset({"function_call"})  # LLaMA-Factory: an assistant turn whose value is the call as JSON text
_KNOWN = "system, user, assistant or tool (or human, gpt, model, function_call, observation)"
_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
_PART_TEXT_KEYS = ("text", "value", "content")  # where a text part's text is found, in this order
_MEDIA_PART_MARKERS = ("image", "audio", "video")


class Normalized(NamedTuple):
    messages: list[Message]
    text: str | None  # plain text for continued pre-training (then there are no messages)
    tools: str | None  # tool definitions as JSON text: a list of {"type": "function", "function": {...}}

    @property
    def roles(self) -> list[str]:
        return [m["role"] for m in self.messages]

    @property
    def contents(self) -> list[str]:
        return [m["content"] for m in self.messages]


def json_list(text: str) -> list[Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


class _UnknownRole(Exception):
    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


def read_conversation(
    turns: list[Any], field: str, read_turn: Callable[[Any, int, str], Message], tools: str | None
) -> Normalized:
    """The turns as messages, checked; every unknown role of the row is named at once."""
    messages: list[Message] = []
    numbers: list[int] = []
    unknown: list[tuple[Any, int]] = []
    for number, turn in enumerate(turns, start=1):
        try:
            message = read_turn(turn, number, field)
        except _UnknownRole as exc:
            unknown.append((exc.value, number))
            continue
        content = message["content"]
        if (not content or content.isspace()) and not message.get("tool_calls"):
            if message["role"] == "system":
                continue  # an empty system prompt is the same as none
            raise Reject("empty_field", f"message {number} ({message['role']}) is empty", field)
        messages.append(message)
        numbers.append(number)
    if len(unknown) == 1:
        raise Reject("unknown_role", f"message {unknown[0][1]} has role {unknown[0][0]!r}; use {_KNOWN}", field)
    if unknown:
        names = ", ".join(f"{value!r} (message {number})" for value, number in unknown)
        raise Reject("unknown_role", f"messages have unknown roles {names}; use {_KNOWN}", field)
    check_turns([m["role"] for m in messages], numbers, [learned(m) for m in messages], field)
    return Normalized(messages, None, tools)


def role_of(value: Any) -> str | None:
    """The role a raw value names, or None; any case, as providers write them (Cohere's USER, CHATBOT)."""
    if not isinstance(value, str):
        return None  # a list or object as a role is unknown, not a crash
    return MESSAGE_ROLES.get(value) or MESSAGE_ROLES.get(value.strip().lower())


def message_turn(turn: Any, number: int, field: str) -> Message:
    """An OpenAI-style message ({role, content, ...}) in the message model."""
    if type(turn) is not dict:
        raise Reject("non_text", f"message {number} is {kind_of(turn)}, not an object with role and content", field)
    return _turn(turn, turn.get("role"), turn.get("content"), number, field)


def sharegpt_turn(turn: Any, number: int, field: str) -> Message:
    """A ShareGPT turn ({from, value, ...}) in the message model."""
    if type(turn) is not dict:
        raise Reject("non_text", f"message {number} is {kind_of(turn)}, not an object with from and value", field)
    return _turn(turn, turn.get("from"), turn.get("value"), number, field)


def _turn(turn: dict[str, Any], raw_role: Any, content: Any, number: int, field: str) -> Message:
    if isinstance(raw_role, str) and raw_role.strip().lower() in CALL_ROLES:
        call_turn: Message = {
            "role": "assistant",
            "content": "",
            "tool_calls": _calls_from_text(content, number, field),
        }
        _apply_flags(call_turn, turn, None, number, field)
        return call_turn
    role = role_of(raw_role)
    if role is None:
        raise _UnknownRole(raw_role)
    parts: list[tuple[str, bool | None]] | None = None
    if type(content) is not str:
        content, parts = _content_text(content, role, number, field)
    message: Message = {"role": role, "content": content}
    calls = turn.get("tool_calls")
    legacy = turn.get("function_call")
    if calls not in (None, "", []) or legacy not in (None, "", {}):
        if role != "assistant":
            raise Reject(
                "bad_tool_call", f"message {number} ({role}) carries tool calls; only assistant turns may", field
            )
        message["tool_calls"] = _tool_calls(calls, legacy, number, field)
    if role == "tool":
        call_id, name = turn.get("tool_call_id"), turn.get("name")
        if isinstance(call_id, str) and call_id:
            message["tool_call_id"] = call_id
        if isinstance(name, str) and name:
            message["name"] = name
    _apply_flags(message, turn, parts, number, field)
    return message


def _apply_flags(
    message: Message, turn: dict[str, Any], parts: list[tuple[str, bool | None]] | None, number: int, field: str
) -> None:
    """What the layout says is learned of this turn: Axolotl's train/train_detail, weight, flagged content parts."""
    role, content = message["role"], message["content"]
    trained: bool | None = None
    train = turn.get("train", turn.get("trained"))  # Axolotl's message_field_training, or this model's own
    if train is not None:
        if not isinstance(train, bool):
            raise Reject("bad_weight", f"message {number} has train {train!r}; use true or false", field)
        trained = train
    weight = turn.get("weight")
    if weight is not None and trained is None:
        if isinstance(weight, bool | str) or weight not in (0, 1):
            raise Reject("bad_weight", f"message {number} has weight {weight!r}; use 0 or 1", field)
        trained = bool(weight)
    spans: list[list[int]] | None = None
    detail = turn.get("train_detail")
    if detail not in (None, []) and train is None:
        spans = _detail_spans(detail, content, number, field)
        trained = bool(spans)
    elif turn.get("train_spans") not in (None, []):  # this model's own ranges (a stored dataset)
        spans = _given_spans(turn["train_spans"], content, number, field)
    elif parts is not None and any(flag is not None for _, flag in parts):
        whole = default_trained(role) if trained is None else trained
        spans, start = [], 0
        for text, flag in parts:
            if (whole if flag is None else flag) and text:
                spans.append([start, start + len(text)])
            start += len(text)
        trained = bool(spans)
    if spans is not None:
        spans = _merged(spans)
        if spans and spans != [[0, len(content)]]:
            message["train_spans"] = spans
    if trained is not None and trained != default_trained(role):
        message["trained"] = trained


def _detail_spans(detail: Any, content: str, number: int, field: str) -> list[list[int]]:
    """Axolotl's train_detail: [{begin_offset, end_offset (inclusive), train}] → learned [start, end) ranges."""
    if not isinstance(detail, list):
        raise Reject("bad_train_span", f"message {number}: train_detail is {kind_of(detail)}, not a list", field)
    spans = []
    for item in detail:
        begin = item.get("begin_offset") if isinstance(item, dict) else None
        end = item.get("end_offset") if isinstance(item, dict) else None
        train = item.get("train") if isinstance(item, dict) else None
        if not (
            type(begin) is int and type(end) is int and isinstance(train, bool) and 0 <= begin <= end < len(content)
        ):
            raise Reject(
                "bad_train_span",
                f"message {number}: train_detail entry {item!r} needs whole-number begin_offset <= end_offset "
                f"(inclusive) within its content, offsets 0 to {len(content) - 1}, and train true or false",
                field,
            )
        if train:
            spans.append([begin, end + 1])
    return spans


def _given_spans(given: Any, content: str, number: int, field: str) -> list[list[int]]:
    ok = isinstance(given, list) and all(
        isinstance(s, list | tuple)
        and len(s) == 2
        and all(type(v) is int for v in s)
        and 0 <= s[0] < s[1] <= len(content)
        for s in given
    )
    if not ok:
        raise Reject(
            "bad_train_span", f"message {number}: train_spans {given!r} are not [start, end) inside its content", field
        )
    return [[int(s[0]), int(s[1])] for s in given]


def _merged(spans: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def _tool_calls(calls: Any, legacy: Any, number: int, field: str) -> list[ToolCall]:
    """OpenAI's tool_calls (or the legacy function_call) as structured calls with dict arguments."""
    if isinstance(calls, str):
        parsed = json_list(calls)
        if parsed is None:
            raise Reject("bad_tool_call", f"message {number}: tool_calls is not a JSON list", field)
        calls = parsed
    items = list(calls) if isinstance(calls, list) else [] if calls in (None, "") else [calls]
    if legacy not in (None, "", {}):
        items.append(legacy)
    return [_call(item, number, field) for item in items]


def _calls_from_text(content: Any, number: int, field: str) -> list[ToolCall]:
    """LLaMA-Factory's function_call turn: its value is JSON text of {"name", "arguments"} (or a list of them)."""
    value = content
    if isinstance(content, str):
        try:
            value = json.loads(content)
        except json.JSONDecodeError:
            raise Reject("bad_tool_call", f"message {number} (function_call) is not JSON of a call", field) from None
    items = value if isinstance(value, list) else [value]
    if not items:
        raise Reject("bad_tool_call", f"message {number} (function_call) holds no call", field)
    return [_call(item, number, field) for item in items]


def _call(item: Any, number: int, field: str) -> ToolCall:
    if not isinstance(item, dict):
        raise Reject("bad_tool_call", f"message {number}: a tool call is {kind_of(item)}, not an object", field)
    function = item.get("function", item)
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise Reject("bad_tool_call", f"message {number}: a tool call has no function name", field)
    arguments = function.get("arguments", function.get("parameters"))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            raise Reject(
                "bad_tool_call", f"message {number}: the arguments of {name} are not valid JSON", field
            ) from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise Reject(
            "bad_tool_call", f"message {number}: the arguments of {name} are {kind_of(arguments)}, not an object", field
        )
    call: ToolCall = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if isinstance(item.get("id"), str) and item["id"]:
        call["id"] = item["id"]
    return call


def _content_text(content: Any, role: str, number: int, field: str) -> tuple[str, list[tuple[str, bool | None]] | None]:
    """Text from content that is not a plain string: typed parts (with their train/weight flags), or a number.

    Parts are joined with a newline; parts that carry a flag (Axolotl) are joined as they are, as Axolotl does.
    """
    if content is None:
        return "", None
    if isinstance(content, list):
        parts: list[tuple[str, bool | None]] = []
        for part in content:
            if isinstance(part, str):
                parts.append((part, None))
                continue
            kind = str(part.get("type", "")) if isinstance(part, dict) else ""
            if isinstance(part, dict) and (kind in _TEXT_PART_TYPES or (not kind and "text" in part)):
                parts.append((_part_text(part, role, number, field), _part_flag(part, number, field)))
            elif any(marker in kind for marker in _MEDIA_PART_MARKERS):
                raise Reject("multimodal", f"message {number} ({role}) holds {kind.replace('_', ' ')} content", field)
            else:
                what = f"a '{kind}' part" if kind else kind_of(part)
                raise Reject(
                    "non_text", f"message {number} ({role}) holds {what}; only text parts can be trained on", field
                )
        if any(flag is not None for _, flag in parts):
            return "".join(text for text, _ in parts), parts
        return "\n".join(text for text, _ in parts), None
    if isinstance(content, int | float) and not isinstance(content, bool):
        return str(content), None
    raise Reject("non_text", f"message {number} ({role}) content is {kind_of(content)}, not text", field)


def _part_text(part: dict[str, Any], role: str, number: int, field: str) -> str:
    """A text part's text: under 'text', or 'value' or 'content' as some exports write it; else the keys found."""
    for key in _PART_TEXT_KEYS:
        if isinstance(part.get(key), str):
            return str(part[key])
    said = f"message {number} ({role}) has a text part"
    if "text" in part:
        raise Reject("non_text", f"{said} whose 'text' is {kind_of(part['text'])}, not text", field)
    keys = ", ".join(f"'{k}'" for k in part if k != "type") or "none"
    raise Reject("non_text", f"{said} without 'text' (its other keys: {keys}); put the text under 'text'", field)


def _part_flag(part: dict[str, Any], number: int, field: str) -> bool | None:
    flag = part.get("train", part.get("weight"))
    if flag is None:
        return None
    if isinstance(flag, bool):
        return flag
    if isinstance(flag, str) or flag not in (0, 1):
        raise Reject("bad_weight", f"message {number} has a text part with train/weight {flag!r}; use 0 or 1", field)
    return bool(flag)


def turns_of(row: dict[str, Any], key: str) -> list[Any]:
    if key not in row:
        raise Reject("missing_field", f"no '{key}' field", key)
    turns = row[key]
    if isinstance(turns, str) and turns.lstrip().startswith("["):
        turns = json_list(turns) or turns
    if turns is None or turns == []:
        raise Reject("empty_field", f"'{key}' is empty", key)
    if not isinstance(turns, list):
        raise Reject("non_text", f"'{key}' is {kind_of(turns)}; it must be a list of messages", key)
    return turns


def as_turns(value: Any, role: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if value is None:
        raise Reject("missing_field", "no 'prompt' field" if role == "user" else "no 'completion' field")
    return [{"role": role, "content": value}]


def tools_of(row: dict[str, Any]) -> str | None:
    """The row's tool definitions as JSON text: ``tools``, plus OpenAI's legacy ``functions`` as function tools."""
    tools = row.get("tools")
    functions = row.get("functions")
    if functions in (None, "", []):
        return _tools_text(tools)
    listed = _parsed(functions, "functions")
    if not isinstance(listed, list) or not all(isinstance(f, dict) for f in listed):
        raise Reject("bad_tools", "'functions' is not a list of function definitions", "functions")
    wrapped = [{"type": "function", "function": f} for f in listed]
    given = _parsed(tools, "tools") if tools not in (None, "", []) else []
    given = given if isinstance(given, list) else [given]
    return json.dumps([*given, *wrapped], ensure_ascii=False)


def _parsed(value: Any, key: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise Reject("bad_tools", f"'{key}' is not valid JSON", key) from None
    return value


def _tools_text(tools: Any) -> str | None:
    if tools is None or tools == "" or tools == []:
        return None
    if isinstance(tools, str):
        parsed = _parsed(tools, "tools")
        if not isinstance(parsed, list | dict):
            raise Reject("bad_tools", f"'tools' holds {kind_of(parsed)}, not a list of functions", "tools")
        return tools
    if isinstance(tools, list | dict):
        return json.dumps(tools, ensure_ascii=False)
    raise Reject("bad_tools", f"'tools' is {kind_of(tools)}, not a list of functions", "tools")


def required(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        if key in row:
            text = _field_text(row[key], key)
            if not text or text.isspace():
                raise Reject("empty_field", f"'{key}' is empty", key)
            return text
    also = f" (also looked for {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
    raise Reject("missing_field", f"no '{keys[0]}' field{also}", keys[0])


def optional(row: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if row.get(key) is not None:
            text = _field_text(row[key], key)
            return text if text.strip() else None
    return None


def system_turns(row: dict[str, Any], keys: tuple[str, ...]) -> list[Message]:
    system = optional(row, keys)
    return [{"role": "system", "content": system}] if system else []


def _field_text(value: Any, key: str) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise Reject("non_text", f"'{key}' is {kind_of(value)}, not text", key)


def reject_media(row: dict[str, Any]) -> None:
    for key in sorted(MEDIA_KEYS.intersection(row)):
        if row[key] not in (None, "", [], {}):
            raise Reject("multimodal", f"the row holds {key.rstrip('s')} data in '{key}'", key)


def kind_of(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
