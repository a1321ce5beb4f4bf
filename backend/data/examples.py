"""Normalized examples, one at a time (``Example``) or a chunk at a time, by column (``Batch``).

Import moves examples a chunk at a time because that is what Arrow stores and
what batched tokenization wants; training and previews use ``Example``. The
canonical form holds exactly what is trained on, so the dataset's content hash
and duplicate detection do not depend on the file format or unused fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.data.turns import Normalized


@dataclass
class Example:
    messages: list[dict[str, Any]]  # {"role", "content"}, plus "weight": 0 on a reply not trained on
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

    Its sha256 is the example's digest; the dataset's content hash is the sha256 of its digests in order.
    """
    if example.text is not None:
        return f"text|{example.text}"
    roles = example.roles
    if example.weights is not None:
        roles = [r if w is None else f"{r}#{w}" for r, w in zip(roles, example.weights, strict=True)]
    key = f"{','.join(map(str, map(len, example.contents)))}|{chr(0).join(roles)}|{''.join(example.contents)}"
    return key if example.tools is None else f"{key}|tools:{example.tools}"


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

    def messages(self, index: int) -> list[dict[str, Any]]:
        example = self.items[index][0]
        weights = example.weights or [None] * len(example.roles)
        return [
            {"role": r, "content": c} if w is None else {"role": r, "content": c, "weight": w}
            for r, c, w in zip(example.roles, example.contents, weights, strict=True)
        ]

    def example(self, index: int) -> Example:
        normalized, line, row = self.items[index]
        return Example(self.messages(index), normalized.text, normalized.tools, self.file, line, row, self.unit)

    def examples(self) -> list[Example]:
        return [self.example(i) for i in range(len(self))]
