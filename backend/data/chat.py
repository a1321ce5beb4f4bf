"""Chat examples: the one representation every dataset format becomes.

An example is a list of ``{"role", "content"}`` messages. Loading reports each
rejected row with its line and the reason, so nothing is dropped silently, and
hashes the accepted examples so a job can record exactly what it trained on.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("system", "user", "assistant")


class DataError(ValueError):
    """A dataset that cannot be trained on, with what to do about it."""


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ChatDataset:
    path: Path
    examples: list[list[dict[str, str]]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    def content_hash(self) -> str:
        """sha256 of the accepted examples in order: the same data gives the same hash."""
        digest = hashlib.sha256()
        for example in self.examples:
            digest.update(json.dumps(example, sort_keys=True, ensure_ascii=False).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def split(self, eval_fraction: float, seed: int) -> tuple[list, list]:
        """A seeded, reproducible train/eval split; at least one eval example when asked for any."""
        if eval_fraction <= 0 or len(self.examples) < 2:
            return list(self.examples), []
        order = list(range(len(self.examples)))
        random.Random(seed).shuffle(order)  # noqa: S311 - a reproducible split, not a secret
        n_eval = max(1, round(len(order) * eval_fraction))
        eval_idx = set(order[:n_eval])
        train = [ex for i, ex in enumerate(self.examples) if i not in eval_idx]
        held = [ex for i, ex in enumerate(self.examples) if i in eval_idx]
        return train, held


def check_messages(messages: object) -> str | None:
    """Why a conversation cannot train a chat model, or None when it can."""
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list of {role, content} objects"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"message {i + 1} is not an object with role and content"
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            return f"message {i + 1} has role {role!r}; use one of {', '.join(ROLES)}"
        if not isinstance(content, str):
            return f"message {i + 1} ({role}) has no text content"
        if not content.strip():
            return f"message {i + 1} ({role}) is empty"
        if role == "system" and i != 0:
            return f"message {i + 1} is a system message; only the first message may be one"
    if messages[-1]["role"] != "assistant":
        return "the conversation does not end with an assistant reply, so there is nothing to learn from it"
    turns = [m["role"] for m in messages if m["role"] != "system"]
    for prev, cur in itertools.pairwise(turns):
        if prev == cur:
            return f"two {cur} messages in a row; user and assistant must alternate"
    if turns[0] != "user":
        return "the conversation must start with a user message (after an optional system message)"
    return None


def load_chat_jsonl(path: Path) -> ChatDataset:
    """Read a JSONL file of ``{"messages": [...]}`` rows; every bad row becomes a RowProblem."""
    dataset = ChatDataset(path=path)
    try:
        handle = path.open(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"cannot open the dataset {path}: {exc.strerror}") from None
    with handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                dataset.problems.append(RowProblem(line_no, f"not valid JSON ({exc.msg} at column {exc.colno})"))
                continue
            if not isinstance(row, dict) or "messages" not in row:
                problem = "no 'messages' field; each line needs {\"messages\": [...]}"
                dataset.problems.append(RowProblem(line_no, problem))
                continue
            reason = check_messages(row["messages"])
            if reason:
                dataset.problems.append(RowProblem(line_no, reason))
                continue
            dataset.examples.append([{"role": m["role"], "content": m["content"]} for m in row["messages"]])
    if not dataset.examples:
        first = "; ".join(str(p) for p in dataset.problems[:3]) or "the file is empty"
        raise DataError(f"{path} has no usable examples ({first})")
    return dataset
