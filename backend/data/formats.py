"""The row layouts LoRA Studio reads, how each is recognised, and how each becomes messages.

Every layout normalizes to one representation: the message model of
``backend.data.message`` (roles system, user, assistant, tool; what the layout
says is learned; structured tool calls and results), plus the tool definitions
as JSON text; or plain ``text`` for continued pre-training. Detection looks at the field names of the first rows;
a person can always override it, or map arbitrary columns. The pieces each layout
is read from (turns, their roles and content, tools, plain fields) are in
``backend.data.turns``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from backend.data.chunk import Unreadable
from backend.data.preference import CONVERSATION_KEYS, LAYOUTS, recognise
from backend.data.report import count
from backend.data.rules import Reject, check_turns
from backend.data.turns import (
    MEDIA_KEYS,
    MESSAGE_ROLES,
    Message,
    Normalized,
    as_turns,
    json_list,
    kind_of,
    message_turn,
    optional,
    read_conversation,
    reject_media,
    required,
    sharegpt_turn,
    system_turns,
    tools_of,
    turns_of,
)

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
    **{fmt: layout.label for fmt, layout in LAYOUTS.items()},
    "unknown": "not recognised",
    "unread": "not read",
}
UNSUPPORTED = {fmt: layout.refusal for fmt, layout in LAYOUTS.items()}
"""Layouts recognised and refused for SFT, with the reason; ``backend.data.refusal`` adds checked advice."""
MAPPING_ROLES = ("instruction", "input", "response", "system")
"""What a column can be mapped to; instruction and response are required."""

_SAMPLE = 200


Normalizer = Callable[[Any], Normalized]


@dataclass(frozen=True)
class Detection:
    format: str  # one of FORMATS, "stored", a key of preference.LAYOUTS or "unknown"
    key: str | None  # the field holding the conversation, for messages and sharegpt
    reason: str  # why, in words
    columns: list[str]  # field names seen in the rows looked at

    @property
    def label(self) -> str:
        return LABELS[self.format]

    @property
    def objective(self) -> str | None:
        """What trains on this layout: "sft", "dpo/orpo", "kto" or "prm"; None when it is not recognised."""
        layout = LAYOUTS.get(self.format)
        if layout is not None:
            return layout.objective
        return None if self.format == "unknown" else "sft"


# -- detection ------------------------------------------------------------------------


def detect(values: list[Any], chosen: str = "auto", mapping: Mapping[str, str] | None = None) -> Detection:
    """The format of a file from its first rows, or the one a person chose."""
    rows = [v for v in values[:_SAMPLE] if isinstance(v, dict)]
    columns = sorted({key for row in rows for key in row})
    guesses = Counter(guess for guess in map(_guess, rows) if guess is not None)
    if mapping or chosen != "auto":
        labelled = _labelled(guesses, len(rows), columns)
        if labelled is not None:
            return labelled
    if mapping:
        return Detection("columns", None, "you mapped the columns", columns)
    if chosen != "auto":
        key = next((k for fmt, k in guesses if fmt == chosen and k), None)
        if chosen in ("messages", "sharegpt") and key is None:
            key = next((k for k in CONVERSATION_KEYS if any(k in row for row in rows)), "messages")
        return Detection(chosen, key, "you chose it", columns)
    if not guesses:
        return Detection("unknown", None, _unknown_reason(values[:_SAMPLE], rows, columns), columns)
    (fmt, key), count = guesses.most_common(1)[0]
    return Detection(fmt, key, f"its fields are in {_share(count, len(rows))} looked at", columns)


def _share(part: int, rows: int) -> str:
    """'the one row', 'all 3 rows', '150 of the 200 rows'."""
    if rows == 1:
        return "the one row"
    return f"all {rows:,} rows" if part == rows else f"{part:,} of the {rows:,} rows"


def _unknown_reason(values: list[Any], rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Why no layout was recognised: the fields of the rows looked at, or what the rows are instead of objects."""
    if rows:
        shown = ", ".join(columns[:12]) + (f" and {len(columns) - 12:,} more" if len(columns) > 12 else "")
        return f"no known layout in the {count(len(rows), 'row')} looked at; fields: {shown or 'none'}"
    kinds = ", ".join(dict.fromkeys(kind_of(v) for v in values if type(v) is not Unreadable))
    return f"the rows are {kinds}, not objects with named fields" if kinds else "no row could be read"


def _labelled(guesses: Counter[tuple[str, str | None]], rows: int, columns: list[str]) -> Detection | None:
    """Unpaired preference data stays refused whatever format or mapping is chosen: either reads it without
    its label, so the rows marked undesirable would be learned as good answers."""
    if not guesses:
        return None
    (fmt, key), count = guesses.most_common(1)[0]
    field = LAYOUTS[fmt].label_field if fmt in LAYOUTS else None
    if field is None:
        return None
    reason = f"'{field}' is in {_share(count, rows)} looked at, and a chosen format or mapping would ignore it"
    return Detection(fmt, key, reason, columns)


def _guess(row: dict[str, Any]) -> tuple[str, str | None] | None:
    labelled = recognise(row)
    if labelled is not None:
        return labelled
    for key in CONVERSATION_KEYS:
        turns = row.get(key)
        if isinstance(turns, str) and turns.startswith("["):
            turns = json_list(turns)
        if isinstance(turns, list) and turns and isinstance(turns[0], dict):
            if "from" in turns[0] and "value" in turns[0]:
                return "sharegpt", key
            if "role" in turns[0]:
                return "messages", key
    if "instruction" in row and ("output" in row or "response" in row):
        return "alpaca", None
    if "question" in row and ("answer" in row or "response" in row):
        return "question_answer", None
    if "prompt" in row and "completion" in row:
        return "prompt_completion", None
    if isinstance(row.get("text"), str):
        return "text", None
    return None


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
            raise Reject("not_an_object", f"the row is {kind_of(row)}, not an object with named fields")
        if not MEDIA_KEYS.isdisjoint(row):
            reject_media(row)
        return inner(row)

    return normalize


def _messages_of(key: str) -> Normalizer:
    def messages(row: dict[str, Any]) -> Normalized:
        turns = turns_of(row, key)
        # The common case, plain {role, content} text: no flag, call or id on any message, and a role spelled
        # as the table spells it (any other spelling, an alias's case say, takes the full path below).
        plain_messages: list[Message] = []
        for turn in turns:
            if type(turn) is not dict or len(turn) != 2:
                break
            raw, content = turn.get("role"), turn.get("content")
            role = MESSAGE_ROLES.get(raw) if type(raw) is str else None
            if role is None or type(content) is not str or not content or content.isspace():
                break
            plain_messages.append({"role": role, "content": content})
        else:
            check_turns([m["role"] for m in plain_messages], range(1, len(plain_messages) + 1), None, key)
            return Normalized(plain_messages, None, tools_of(row))
        return read_conversation(turns, key, message_turn, tools_of(row))

    return messages


def _sharegpt_of(key: str) -> Normalizer:
    def sharegpt(row: dict[str, Any]) -> Normalized:
        conversation = read_conversation(turns_of(row, key), key, sharegpt_turn, tools_of(row))
        system = row.get("system")
        if isinstance(system, str) and system.strip() and conversation.roles[0] != "system":
            return conversation._replace(messages=[{"role": "system", "content": system}, *conversation.messages])
        return conversation

    return sharegpt


def _alpaca(row: dict[str, Any]) -> Normalized:
    instruction = required(row, ("instruction",))
    extra = optional(row, ("input", "context"))
    output = required(row, ("output", "response"))
    messages = system_turns(row, ("system", "system_prompt"))
    history = row.get("history")
    if history:
        if not isinstance(history, list):
            raise Reject("non_text", f"'history' is {kind_of(history)}; it must be a list of [prompt, reply] pairs")
        for i, pair in enumerate(history, start=1):
            if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise Reject("non_text", f"history entry {i} is not a [prompt, reply] pair of texts", "history")
            if not pair[0].strip() or not pair[1].strip():
                raise Reject("empty_field", f"history entry {i} has an empty prompt or reply", "history")
            messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    return _exchange(messages, f"{instruction}\n\n{extra}" if extra else instruction, output)


def _exchange(before: list[Message], prompt: str, reply: str) -> Normalized:
    """Earlier turns (a system prompt, history), then one prompt and its reply."""
    return Normalized(
        [*before, {"role": "user", "content": prompt}, {"role": "assistant", "content": reply}], None, None
    )


def _question_answer(row: dict[str, Any]) -> Normalized:
    question = required(row, ("question",))
    context = optional(row, ("context",))
    answer = required(row, ("answer", "response"))
    return _exchange(
        system_turns(row, ("system", "system_prompt")), f"{context}\n\n{question}" if context else question, answer
    )


def _prompt_completion(row: dict[str, Any]) -> Normalized:
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, list) or isinstance(completion, list):  # TRL's conversational prompt-completion
        turns = [*as_turns(prompt, "user"), *as_turns(completion, "assistant")]
        return read_conversation(turns, "prompt", message_turn, tools_of(row))
    text = required(row, ("prompt",))
    reply = required(row, ("completion",))
    return _exchange(system_turns(row, ("system",)), text, reply)


def _text(row: dict[str, Any]) -> Normalized:
    return Normalized([], required(row, ("text",)), None)


def _columns_of(mapping: dict[str, str]) -> Normalizer:
    instruction, response = mapping["instruction"], mapping["response"]
    extra, system = mapping.get("input"), mapping.get("system")

    def columns(row: dict[str, Any]) -> Normalized:
        prompt = required(row, (instruction,))
        extra_text = optional(row, (extra,)) if extra else None
        reply = required(row, (response,))
        before = system_turns(row, (system,)) if system else []
        return _exchange(before, f"{prompt}\n\n{extra_text}" if extra_text else prompt, reply)

    return columns


def _stored(row: dict[str, Any]) -> Normalized:
    if row.get("text") is not None:
        return _text(row)
    return read_conversation(row["messages"], "messages", message_turn, row.get("tools"))
