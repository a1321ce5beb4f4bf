"""Normalized examples, one at a time (``Example``) or a chunk at a time, by column (``Batch``).

Import moves examples a chunk at a time because that is what Arrow stores and
what batched tokenization wants; training and previews use ``Example``. The
canonical form holds exactly what is trained on, so the dataset's content hash
and duplicate detection do not depend on the file format or unused fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from backend.data.message import Message
from backend.data.turns import Normalized

_PLAIN = frozenset({"role", "content"})


@dataclass
class Example:
    messages: list[Message]  # the message model: role, content, what is learned, tool calls and results
    text: str | None = None  # plain text for continued pre-training (then messages is empty)
    tools: str | None = None  # tool definitions, JSON text
    file: str = ""
    line: int | None = None
    row: int | None = None
    unit: str = "line"  # what ``line`` counts: line, page, paragraph, or "<sheet> row" in a workbook

    @property
    def is_text(self) -> bool:
        return self.text is not None

    def where(self) -> str:
        place = f"{self.unit} {self.line}" if self.line is not None else f"row {self.row}"
        return f"{self.file} {place}" if self.file else place


def canonical(example: Normalized) -> str:
    """Exactly what is trained on as one string, unambiguous: content lengths first, then roles, then contents.

    A role carries the rest of its message when there is any (what is learned, tool calls, ids) as sorted
    JSON, so two rows that differ only in what is learned differ here; a plain conversation keeps the
    key it always had. Its sha256 is the example's digest; the dataset's content hash is the sha256 of
    its digests in order.
    """
    if example.text is not None:
        return f"text|{example.text}"
    messages = example.messages
    roles = [m["role"] if len(m) == 2 else f"{m['role']}#{_extra(m)}" for m in messages]  # 2: role and content
    contents = [m["content"] for m in messages]
    key = f"{','.join(map(str, map(len, contents)))}|{chr(0).join(roles)}|{''.join(contents)}"
    return key if example.tools is None else f"{key}|tools:{example.tools}"


def _extra(message: Message) -> str:
    rest = {k: v for k, v in message.items() if k not in _PLAIN}
    if rest == {"trained": False}:
        return "0"  # as "weight": 0 was keyed before the message model, so those hashes stay
    return json.dumps(rest, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Batch:
    """Accepted examples of one chunk of one file, with where each came from."""

    file: str
    unit: str = "line"  # what the lines count (see Example)
    items: list[tuple[Normalized, int | None, int]] = field(default_factory=list)  # (example, line, row)

    def add(self, example: Normalized, line: int | None, row: int) -> None:
        self.items.append((example, line, row))

    def __len__(self) -> int:
        return len(self.items)

    def messages(self, index: int) -> list[Message]:
        return self.items[index][0].messages

    def example(self, index: int) -> Example:
        normalized, line, row = self.items[index]
        return Example(self.messages(index), normalized.text, normalized.tools, self.file, line, row, self.unit)

    def examples(self) -> list[Example]:
        return [self.example(i) for i in range(len(self))]
