"""The rules a conversation must pass to be trainable, shared by every format.

A row that breaks one raises ``Reject`` with a problem code (see problems.ADVICE)
and a message that names the message at fault, numbered as in the file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][\w.\-]*\s*\}\}")


class Reject(Exception):
    """This row cannot be trained on: a problem code, a message and the field at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def check_turns(roles: list[str], numbers: Sequence[int], learned: Sequence[bool] | None, field: str) -> None:
    """System first if at all, then user and assistant taking turns (tool results after the assistant), ending
    with an assistant reply, and some turn learned (``learned`` per turn; None when every role has its default)."""
    previous = None
    for role, number in zip(roles, numbers, strict=True):
        if role == "system":
            if previous is not None:
                raise Reject("system_not_first", f"message {number} is a system message; only the first may be", field)
            continue
        if previous is None or previous == "system":
            if role != "user":
                raise Reject(
                    "role_order",
                    f"the conversation starts with {_a(role)} message (message {number}); "
                    "it must start with a user message, after an optional system message",
                    field,
                )
        elif role == previous and role != "tool":
            raise Reject(
                "role_order",
                f"messages {number - 1} and {number} are both {role} messages; user and assistant must take turns",
                field,
            )
        elif role == "tool" and previous == "user":
            raise Reject(
                "role_order",
                f"message {number} is a tool result after a user message; it must follow a tool call",
                field,
            )
        elif role == "user" and previous == "tool":
            raise Reject(
                "role_order",
                f"message {number} is a user message right after a tool result; the assistant must answer first",
                field,
            )
        previous = role
    if previous is None or previous == "system":
        raise Reject("empty_field", "the conversation has no user or assistant messages", field)
    if previous != "assistant":
        raise Reject(
            "no_reply", f"the conversation ends with {_a(previous)} message, so there is no reply to learn from", field
        )
    if learned is not None and not any(learned):
        raise Reject(
            "nothing_to_learn",
            "every assistant reply has weight 0 (or train false) and no other turn is marked learned, so nothing "
            "would be learned",
            field,
        )


def find_placeholder(texts: list[str]) -> str | None:
    """The first ``{{name}}``-style placeholder left in the texts, if any."""
    for text in texts:
        if "{{" in text:
            match = _PLACEHOLDER.search(text)
            if match:
                return match.group(0)
    return None


def _a(role: str) -> str:
    return f"an {role}" if role == "assistant" else f"a {role}"
