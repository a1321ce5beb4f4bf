"""The row layouts LoRA Studio reads, how each is recognised, and how each becomes messages.

Every layout normalizes to one representation: role/content messages (roles
system, user, assistant, tool) with an optional weight 0 on replies not to
train on, plus the tool definitions as JSON text; or plain ``text`` for
continued pre-training. Detection looks at the field names of the first rows;
a person can always override it, or map arbitrary columns.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from backend.data.rules import Reject, check_turns

FORMATS = ("messages", "sharegpt", "alpaca", "prompt_completion", "question_answer", "text", "columns")
"""Formats a person can choose (``auto`` detects one of the first six)."""

LABELS = {
    "messages": "OpenAI/ChatML messages",
    "sharegpt": "ShareGPT conversations",
    "alpaca": "Alpaca instructions",
    "prompt_completion": "prompt/completion pairs",
    "question_answer": "question/answer pairs",
    "text": "plain text for continued pre-training",
    "columns": "columns mapped by you",
    "stored": "a dataset imported into LoRA Studio",
    "preference": "preference pairs (chosen/rejected)",
    "kto": "KTO data (completions labelled good or bad)",
    "unknown": "not recognised",
}
UNSUPPORTED = {
    "preference": (
        "This file holds preference pairs (a chosen and a rejected answer), which train with DPO or ORPO. "
        "LoRA Studio runs supervised fine-tuning, which learns from one answer per prompt, so nothing was "
        "imported. To fine-tune on the preferred answers only, map the columns: instruction = prompt, "
        "response = chosen."
    ),
    "kto": (
        "This file holds KTO data (completions labelled good or bad), which trains with KTO. LoRA Studio runs "
        "supervised fine-tuning, which would learn the bad completions too, so nothing was imported. Keep the "
        "rows labelled true and map the columns: instruction = prompt, response = completion."
    ),
}
MAPPING_ROLES = ("instruction", "input", "response", "system")
"""What a column can be mapped to; instruction and response are required."""

_CONVERSATION_KEYS = ("messages", "conversations", "conversation")
_MEDIA_KEYS = frozenset({"image", "images", "audio", "audios", "video", "videos"})
_MESSAGE_ROLES: dict[object, str] = {  # looked up with raw JSON values
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
_SAMPLE = 200


class Normalized(NamedTuple):
    roles: list[str]
    contents: list[str]
    weights: list[int | None] | None  # per message; 0 = reply not trained on; None when every reply is
    text: str | None  # plain text for continued pre-training (then there are no messages)
    tools: str | None  # tool definitions as JSON text


Normalizer = Callable[[Any], Normalized]


@dataclass(frozen=True)
class Detection:
    format: str  # one of FORMATS, "stored", "preference", "kto" or "unknown"
    key: str | None  # the field holding the conversation, for messages and sharegpt
    reason: str  # why, in words
    columns: list[str]  # field names seen in the rows looked at

    @property
    def label(self) -> str:
        return LABELS[self.format]


# -- detection ------------------------------------------------------------------------


def detect(values: list[Any], chosen: str = "auto", mapping: Mapping[str, str] | None = None) -> Detection:
    """The format of a file from its first rows, or the one a person chose."""
    rows = [v for v in values[:_SAMPLE] if isinstance(v, dict)]
    columns = sorted({key for row in rows for key in row})
    if mapping:
        return Detection("columns", None, "you mapped the columns", columns)
    guesses = Counter(guess for guess in map(_guess, rows) if guess is not None)
    if chosen != "auto":
        key = next((k for fmt, k in guesses if fmt == chosen and k), None)
        if chosen in ("messages", "sharegpt") and key is None:
            key = next((k for k in _CONVERSATION_KEYS if any(k in row for row in rows)), "messages")
        return Detection(chosen, key, "you chose it", columns)
    if not guesses:
        seen = ", ".join(columns[:12]) or "none"
        return Detection("unknown", None, f"no known layout in the first {len(rows)} rows (fields: {seen})", columns)
    (fmt, key), count = guesses.most_common(1)[0]
    return Detection(fmt, key, f"{count} of the first {len(rows)} rows have its fields", columns)


def _guess(row: dict[str, Any]) -> tuple[str, str | None] | None:
    for key in _CONVERSATION_KEYS:
        turns = row.get(key)
        if isinstance(turns, str) and turns.startswith("["):
            turns = _json_list(turns)
        if isinstance(turns, list) and turns and isinstance(turns[0], dict):
            if "from" in turns[0] and "value" in turns[0]:
                return "sharegpt", key
            if "role" in turns[0]:
                return "messages", key
    if "chosen" in row and "rejected" in row:
        return "preference", None
    if "completion" in row and isinstance(row.get("label"), bool):
        return "kto", None
    if "instruction" in row and ("output" in row or "response" in row):
        return "alpaca", None
    if "question" in row and ("answer" in row or "response" in row):
        return "question_answer", None
    if "prompt" in row and "completion" in row:
        return "prompt_completion", None
    if isinstance(row.get("text"), str):
        return "text", None
    return None


def _json_list(text: str) -> list[Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


# -- normalizers ----------------------------------------------------------------------


def normalizer(detection: Detection, mapping: Mapping[str, str] | None = None) -> Normalizer:
    """A function from one row to its normalized form; it raises Reject for a row it cannot use."""
    fmt = detection.format
    if fmt == "messages":
        inner = _messages_of(detection.key or "messages")
    elif fmt == "sharegpt":
        inner = _sharegpt_of(detection.key or "conversations")
    elif fmt == "alpaca":
        inner = _alpaca
    elif fmt == "question_answer":
        inner = _question_answer
    elif fmt == "prompt_completion":
        inner = _prompt_completion
    elif fmt == "text":
        inner = _text
    elif fmt == "columns":
        inner = _columns_of(dict(mapping or {}))
    elif fmt == "stored":
        inner = _stored
    else:
        raise ValueError(f"no normalizer for {fmt!r}")

    def normalize(row: Any) -> Normalized:
        if type(row) is not dict:
            raise Reject("not_an_object", f"the row is {_kind(row)}, not an object with named fields")
        if not _MEDIA_KEYS.isdisjoint(row):
            _reject_media(row)
        return inner(row)

    return normalize


def _messages_of(key: str) -> Normalizer:
    roles_of = _MESSAGE_ROLES.get

    def messages(row: dict[str, Any]) -> Normalized:
        turns = _turns(row, key)
        # The common case, plain {role, content} text, without a function call per message.
        roles, contents = [], []
        for turn in turns:
            if type(turn) is not dict or "weight" in turn:
                break
            role, content = roles_of(turn.get("role")), turn.get("content")
            if role is None or type(content) is not str or not content or content.isspace():
                break
            roles.append(role)
            contents.append(content)
        else:
            check_turns(roles, range(1, len(roles) + 1), None, key)
            return Normalized(roles, contents, None, None, _tools(row))
        return _conversation(turns, key, _message_turn, _tools(row))

    return messages


def _sharegpt_of(key: str) -> Normalizer:
    def sharegpt(row: dict[str, Any]) -> Normalized:
        conversation = _conversation(_turns(row, key), key, _sharegpt_turn, _tools(row))
        system = row.get("system")
        if isinstance(system, str) and system.strip() and conversation.roles[0] != "system":
            weights = conversation.weights
            return conversation._replace(
                roles=["system", *conversation.roles],
                contents=[system, *conversation.contents],
                weights=[None, *weights] if weights else None,
            )
        return conversation

    return sharegpt


def _alpaca(row: dict[str, Any]) -> Normalized:
    instruction = _required(row, ("instruction",))
    extra = _optional(row, ("input", "context"))
    output = _required(row, ("output", "response"))
    roles, contents = _system(row, ("system", "system_prompt"))
    history = row.get("history")
    if history:
        if not isinstance(history, list):
            raise Reject("non_text", f"'history' is {_kind(history)}; it must be a list of [prompt, reply] pairs")
        for i, pair in enumerate(history, start=1):
            if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise Reject("non_text", f"history entry {i} is not a [prompt, reply] pair of texts", "history")
            if not pair[0].strip() or not pair[1].strip():
                raise Reject("empty_field", f"history entry {i} has an empty prompt or reply", "history")
            roles += ["user", "assistant"]
            contents += [pair[0], pair[1]]
    roles += ["user", "assistant"]
    contents += [f"{instruction}\n\n{extra}" if extra else instruction, output]
    return Normalized(roles, contents, None, None, None)


def _question_answer(row: dict[str, Any]) -> Normalized:
    question = _required(row, ("question",))
    context = _optional(row, ("context",))
    answer = _required(row, ("answer", "response"))
    roles, contents = _system(row, ("system", "system_prompt"))
    return Normalized(
        [*roles, "user", "assistant"],
        [*contents, f"{context}\n\n{question}" if context else question, answer],
        None,
        None,
        None,
    )


def _prompt_completion(row: dict[str, Any]) -> Normalized:
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, list) or isinstance(completion, list):  # TRL's conversational prompt-completion
        turns = [*_as_turns(prompt, "user"), *_as_turns(completion, "assistant")]
        return _conversation(turns, "prompt", _message_turn, _tools(row))
    text = _required(row, ("prompt",))
    reply = _required(row, ("completion",))
    roles, contents = _system(row, ("system",))
    return Normalized([*roles, "user", "assistant"], [*contents, text, reply], None, None, None)


def _text(row: dict[str, Any]) -> Normalized:
    return Normalized([], [], None, _required(row, ("text",)), None)


def _columns_of(mapping: dict[str, str]) -> Normalizer:
    instruction, response = mapping["instruction"], mapping["response"]
    extra, system = mapping.get("input"), mapping.get("system")

    def columns(row: dict[str, Any]) -> Normalized:
        prompt = _required(row, (instruction,))
        extra_text = _optional(row, (extra,)) if extra else None
        reply = _required(row, (response,))
        roles, contents = _system(row, (system,)) if system else ([], [])
        roles += ["user", "assistant"]
        contents += [f"{prompt}\n\n{extra_text}" if extra_text else prompt, reply]
        return Normalized(roles, contents, None, None, None)

    return columns


def _stored(row: dict[str, Any]) -> Normalized:
    if row.get("text") is not None:
        return _text(row)
    return _conversation(row["messages"], "messages", _message_turn, row.get("tools"))


# -- pieces ---------------------------------------------------------------------------


def _conversation(
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


def _message_turn(turn: Any, number: int, field: str) -> tuple[str, str, int | None]:
    if type(turn) is not dict:
        raise Reject("non_text", f"message {number} is {_kind(turn)}, not an object with role and content", field)
    role = _MESSAGE_ROLES.get(turn.get("role"))
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


def _sharegpt_turn(turn: Any, number: int, field: str) -> tuple[str, str, int | None]:
    if type(turn) is not dict:
        raise Reject("non_text", f"message {number} is {_kind(turn)}, not an object with from and value", field)
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
                what = f"a '{kind}' part" if kind else _kind(part)
                raise Reject(
                    "non_text", f"message {number} ({role}) holds {what}; only text parts can be trained on", field
                )
        return "\n".join(texts)
    if isinstance(content, int | float) and not isinstance(content, bool):
        return str(content)
    raise Reject("non_text", f"message {number} ({role}) content is {_kind(content)}, not text", field)


def _weight(turn: dict[str, Any], role: str, number: int, field: str) -> int | None:
    weight = turn.get("weight")
    if weight is None or role != "assistant":
        return None
    if weight in (0, 1) and not isinstance(weight, str):
        return None if weight else 0
    raise Reject("bad_weight", f"message {number} has weight {weight!r}; use 0 or 1", field)


def _turns(row: dict[str, Any], key: str) -> list[Any]:
    if key not in row:
        raise Reject("missing_field", f"no '{key}' field", key)
    turns = row[key]
    if isinstance(turns, str) and turns.lstrip().startswith("["):
        turns = _json_list(turns) or turns
    if turns is None or turns == []:
        raise Reject("empty_field", f"'{key}' is empty", key)
    if not isinstance(turns, list):
        raise Reject("non_text", f"'{key}' is {_kind(turns)}; it must be a list of messages", key)
    return turns


def _as_turns(value: Any, role: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if value is None:
        raise Reject("missing_field", "no 'prompt' field" if role == "user" else "no 'completion' field")
    return [{"role": role, "content": value}]


def _tools(row: dict[str, Any]) -> str | None:
    tools = row.get("tools")
    if tools is None or tools == "" or tools == []:
        return None
    if isinstance(tools, str):
        try:
            parsed = json.loads(tools)
        except json.JSONDecodeError:
            raise Reject("bad_tools", "'tools' is not valid JSON", "tools") from None
        if not isinstance(parsed, list | dict):
            raise Reject("bad_tools", f"'tools' holds {_kind(parsed)}, not a list of functions", "tools")
        return tools
    if isinstance(tools, list | dict):
        return json.dumps(tools, ensure_ascii=False)
    raise Reject("bad_tools", f"'tools' is {_kind(tools)}, not a list of functions", "tools")


def _required(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        if key in row:
            text = _field_text(row[key], key)
            if not text or text.isspace():
                raise Reject("empty_field", f"'{key}' is empty", key)
            return text
    also = f" (also looked for {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
    raise Reject("missing_field", f"no '{keys[0]}' field{also}", keys[0])


def _optional(row: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if row.get(key) is not None:
            text = _field_text(row[key], key)
            return text if text.strip() else None
    return None


def _system(row: dict[str, Any], keys: tuple[str, ...]) -> tuple[list[str], list[str]]:
    system = _optional(row, keys)
    return (["system"], [system]) if system else ([], [])


def _field_text(value: Any, key: str) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise Reject("non_text", f"'{key}' is {_kind(value)}, not text", key)


def _reject_media(row: dict[str, Any]) -> None:
    for key in sorted(_MEDIA_KEYS.intersection(row)):
        if row[key] not in (None, "", [], {}):
            raise Reject("multimodal", f"the row holds {key.rstrip('s')} data in '{key}'", key)


def _kind(value: Any) -> str:
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
