"""The one model of a conversation turn and of what in it is learned, shared by every layout.

Readers (``backend.data.turns``, ``backend.data.formats``) produce it, storage keeps it, and the loss
mask (``backend.data.chat_tokens``), the preview and the token counts read it, so a flag a layout
sets reaches training the same way everywhere. Fields are absent rather than null when unused, so
a plain conversation stays ``{"role", "content"}`` and hashes as it always did.
"""

from __future__ import annotations

from typing import Any, TypedDict


class _Call(TypedDict):
    type: str  # "function"
    function: dict[str, Any]  # {"name": str, "arguments": dict}


class ToolCall(_Call, total=False):
    """A call the assistant makes, as ``apply_chat_template`` takes it: arguments are a dict, not JSON text."""

    id: str


class _Turn(TypedDict):
    role: str  # system, user, assistant or tool
    content: str  # "" for a call without text


class Message(_Turn, total=False):
    trained: bool  # the layout's word on this turn; absent = the role's default
    train_spans: list[list[int]]  # learned [start, end) ranges of content, where a layout marks parts
    tool_calls: list[ToolCall]
    tool_call_id: str  # a tool result: the call it answers
    name: str  # a tool result: the function that produced it


def learned(message: Message | dict[str, Any]) -> bool:
    """Whether any of the turn is learned: the layout's flag, else assistant turns are and others are not."""
    trained = message.get("trained")
    return message["role"] == "assistant" if trained is None else bool(trained)


def default_trained(role: str) -> bool:
    return role == "assistant"
