"""The pieces of a row every layout is read from: turns, their roles and content, tools and plain fields.

``backend.data.formats`` recognises a layout and says which field holds what; the functions here
read those fields into the one normalized form (``Normalized``), and raise ``Reject`` with the
field and the words for a person when a piece cannot be used: a turn without a known role,
content that is not text (typed parts are joined, a tool call becomes the JSON the model must
write), a weight other than 0 or 1, tool definitions that are not JSON, media.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from backend.data.rules import Reject, check_turns

MEDIA_KEYS = frozenset({"image", "images", "audio", "audios", "video", "videos"})
MESSAGE_ROLES: dict[object, str] = {  # looked up with raw JSON values
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}
_SHAREGPT_ROLES: dict[object, str] = {  # looked up with raw JSON values
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}
_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
_MEDIA_PART_MARKERS = ("image", "audio", "video")


class Normalized(NamedTuple):
    roles: list[str]
    contents: list[str]
    weights: list[int | None] | None  # per message; 0 = reply not trained on; None when every reply is
    text: str | None  # plain text for continued pre-training (then there are no messages)
    tools: str | None  # tool definitions as JSON text


def json_list(text: str) -> list[Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def read_conversation(
    turns: list[Any], field: str, read_turn: Callable[[Any, int, str], tuple[str, str, int | None]], tools: str | None
) -> Normalized:
    roles: list[str] = []
    contents: list[str] = []
    weights: list[int | None] = []
    numbers: list[int] = []
    for number, turn in enumerate(turns, start=1):
        role, content, weight = read_turn(turn, number, field)
        if not content or content.isspace():
            if role == "system":
                continue  # an empty system prompt is the same as none
            raise Reject("empty_field", f"message {number} ({role}) is empty", field)
        roles.append(role)
        contents.append(content)
        weights.append(weight)
        numbers.append(number)
    trained = None if all(w is None for w in weights) else weights
    check_turns(roles, numbers, trained, field)
    return Normalized(roles, contents, trained, None, tools)


def message_turn(turn: Any, number: int, field: str) -> tuple[str, str, int | None]:
    if type(turn) is not dict:
        raise Reject("non_text", f"message {number} is {kind_of(turn)}, not an object with role and content", field)
    role = MESSAGE_ROLES.get(turn.get("role"))
    if role is None:
        raise Reject(
            "unknown_role",
            f"message {number} has role {turn.get('role')!r}; use system, user, assistant or tool",
            field,
        )
    content = turn.get("content")
    if type(content) is not str:
        content = _content_text(content, turn, number, role, field)
    return role, content, _weight(turn, role, number, field)


def sharegpt_turn(turn: Any, number: int, field: str) -> tuple[str, str, int | None]:
    if type(turn) is not dict:
        raise Reject("non_text", f"message {number} is {kind_of(turn)}, not an object with from and value", field)
    role = _SHAREGPT_ROLES.get(turn.get("from"))
    if role is None:
        known = "human, gpt, system, function_call or observation"
        raise Reject("unknown_role", f"message {number} is from {turn.get('from')!r}; use {known}", field)
    value = turn.get("value")
    if type(value) is not str:
        value = _content_text(value, turn, number, role, field)
    return role, value, _weight(turn, role, number, field)


def _content_text(content: Any, turn: dict[str, Any], number: int, role: str, field: str) -> str:
    """Text from content that is not a plain string: typed parts, a tool call, or a number."""
    if content is None:
        calls = turn.get("tool_calls") or turn.get("function_call")
        if calls and role == "assistant":  # a tool call is trained on as the JSON the model must write
            calls = (
                [c.get("function", c) if isinstance(c, dict) else c for c in calls]
                if isinstance(calls, list)
                else calls
            )
            return json.dumps(calls, ensure_ascii=False)
        return ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
                continue
            kind = str(part.get("type", "")) if isinstance(part, dict) else ""
            if isinstance(part, dict) and (kind in _TEXT_PART_TYPES or (not kind and "text" in part)):
                text = part.get("text")
                if not isinstance(text, str):
                    raise Reject("non_text", f"message {number} ({role}) has a text part without text", field)
                texts.append(text)
            elif any(marker in kind for marker in _MEDIA_PART_MARKERS):
                raise Reject("multimodal", f"message {number} ({role}) holds {kind.replace('_', ' ')} content", field)
            else:
                what = f"a '{kind}' part" if kind else kind_of(part)
                raise Reject(
                    "non_text", f"message {number} ({role}) holds {what}; only text parts can be trained on", field
                )
        return "\n".join(texts)
    if isinstance(content, int | float) and not isinstance(content, bool):
        return str(content)
    raise Reject("non_text", f"message {number} ({role}) content is {kind_of(content)}, not text", field)


def _weight(turn: dict[str, Any], role: str, number: int, field: str) -> int | None:
    weight = turn.get("weight")
    if weight is None or role != "assistant":
        return None
    if weight in (0, 1) and not isinstance(weight, str):
        return None if weight else 0
    raise Reject("bad_weight", f"message {number} has weight {weight!r}; use 0 or 1", field)


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
    tools = row.get("tools")
    if tools is None or tools == "" or tools == []:
        return None
    if isinstance(tools, str):
        try:
            parsed = json.loads(tools)
        except json.JSONDecodeError:
            raise Reject("bad_tools", "'tools' is not valid JSON", "tools") from None
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


def system_turns(row: dict[str, Any], keys: tuple[str, ...]) -> tuple[list[str], list[str]]:
    system = optional(row, keys)
    return (["system"], [system]) if system else ([], [])


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
