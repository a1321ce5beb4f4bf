"""Preference data as trl's trainers take it: prompt, chosen and rejected, or prompt, completion and label (KTO).

Every layout that ``backend.data.preference`` recognises is read through the normalizers SFT data goes
through: the row is rewritten once with its chosen answer and once with its rejected one (or, for labelled
data, without its label), so roles, typed content parts, system prompts, Alpaca inputs and history are read
and checked exactly as an import reads them. The prompt is then the messages both conversations share, and
each answer is what follows: assistant turns only, compared whole (a per-turn train flag on an answer cannot
be honoured and the row is left out with that reason). Rows come out in trl's conversational form, so every
model renders them with its own chat template, the way SFT does.

A pair trains KTO too (its chosen answer desirable, its rejected one not); labelled single answers cannot
train DPO, ORPO or SimPO, and a file of ordinary chat data trains none of them: those are refused with what
to do instead.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.events import EventSink, Warn
from backend.core.spec import Data
from backend.data.chunk import Unreadable
from backend.data.files import TEXT_KINDS, SourceFile, find_sources
from backend.data.formats import FORMATS, LABELS, Detection, Normalizer, detect, normalizer
from backend.data.load import MAX_LISTED_PROBLEMS
from backend.data.message import Message
from backend.data.preference import LAYOUTS, PROMPT_KEYS, flag
from backend.data.problems import DataError
from backend.data.readers import read_file
from backend.data.rules import Reject
from backend.data.split import split

PAIRED = frozenset(fmt for fmt, layout in LAYOUTS.items() if layout.objective == "dpo/orpo")
UNPAIRED = frozenset(fmt for fmt, layout in LAYOUTS.items() if layout.objective == "kto")
_REPLY_KEYS = {"prompt": "completion", "instruction": "output", "question": "answer"}
_SAMPLE = 200

Record = list[dict[str, Any]]
"""The trainer rows one source row becomes: one pair, or one or two labelled answers (kept together when split)."""


@dataclass
class PreferenceData:
    """A file's rows in trl's form, with what was left out and why."""

    records: list[Record] = field(default_factory=list)
    places: list[str] = field(default_factory=list)  # where each record came from: "pairs.jsonl line 3"
    problems: list[str] = field(default_factory=list)  # each row left out: "pairs.jsonl line 4: why"
    layouts: list[str] = field(default_factory=list)  # the layout of each file, in words
    rows: int = 0  # rows read

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for record in self.records:
            digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
        return digest.hexdigest()

    def split(self, fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
        """The same seeded split as SFT data (``backend.data.split``), by source row."""
        return split(self.records, fraction, seed)


def load_preference_split(data: Data, objective: str, sink: EventSink) -> tuple[list[Record], list[Record], str]:
    """Train and held-out records split as SFT data is (``data.eval_path``, else ``data.eval_split`` by source
    row), and their hash; every row left out becomes a warning (the first few, then the count). Training reads
    them with this call, and evaluation remakes the held-out pairs with it."""
    train_set = read_preferences(Path(data.path), objective, data.chunk_chars, data.sheet)
    eval_set = (
        read_preferences(Path(data.eval_path), objective, data.chunk_chars, data.sheet) if data.eval_path else None
    )
    for loaded in (train_set, eval_set):
        if loaded is not None:
            sink.log("; ".join(loaded.layouts))
            for problem in loaded.problems[:MAX_LISTED_PROBLEMS]:
                sink.emit(Warn(code="row_rejected", message=problem))
            if len(loaded.problems) > MAX_LISTED_PROBLEMS:
                message = (
                    f"{len(loaded.problems)} of {loaded.rows} rows excluded in all; the first {MAX_LISTED_PROBLEMS}"
                )
                sink.emit(Warn(code="rows_rejected", message=message + " are listed above"))
    if eval_set is None:
        train, held = train_set.split(data.eval_split, data.split_seed)
        return train, held, train_set.content_hash
    both = hashlib.sha256((train_set.content_hash + eval_set.content_hash).encode()).hexdigest()
    return train_set.records, eval_set.records, both


def flatten(records: list[Record]) -> list[dict[str, Any]]:
    return [row for record in records for row in record]


def read_preferences(path: Path, objective: str, chunk_chars: int = 4000, sheet: str | None = None) -> PreferenceData:
    """Every usable row of ``path`` for ``objective`` (dpo, orpo, simpo or kto); DataError when none is."""
    data = PreferenceData()
    for source in find_sources(path).files:
        _read_source(source, objective, chunk_chars, sheet, data)
    if not data.records:
        first = "; ".join(data.problems[:3]) or "it holds no rows"
        raise DataError(f"{path} has no usable preference rows ({first})")
    return data


def _read_source(source: SourceFile, objective: str, chunk_chars: int, sheet: str | None, data: PreferenceData) -> None:
    if source.kind in TEXT_KINDS:
        raise DataError(_not_preference(source.name, "plain text", objective))
    with closing(read_file(source, chunk_chars, sheet)) as chunks:
        convert: _Converter | None = None
        row = 0
        for chunk in chunks:
            if convert is None:
                values = [value for _, value in chunk.records if not isinstance(value, Unreadable)]
                convert = _converter(source, detect(values[:_SAMPLE]), objective)
                data.layouts.append(f"{source.name}: {LABELS[convert.layout]}")
            for line, value in chunk.records:
                row += 1
                where = f"{source.name} {chunk.unit} {line}" if line is not None else f"{source.name} row {row}"
                try:
                    if isinstance(value, Unreadable):
                        raise Reject(value.code, value.message)
                    if type(value) is not dict:
                        raise Reject("not_an_object", "the row is not an object with named fields")
                    record = convert(value)
                except Reject as reject:
                    data.problems.append(f"{where}: {reject.message}")
                    continue
                data.records.append(record)
                data.places.append(where)
        data.rows += row


def _not_preference(name: str, label: str, objective: str) -> str:
    wants = (
        "answers labelled desirable or undesirable (prompt, completion, label) or preference pairs"
        if objective == "kto"
        else "preference pairs: a prompt with a chosen and a rejected answer"
    )
    return (
        f"{name} holds {label}, one answer per prompt; training.objective {objective} learns from {wants} "
        "(the layouts are in docs/data-formats.md). To fine-tune on these answers, set training.objective to sft."
    )


class _Converter:
    """One file's rows to trainer records, for its layout and the job's objective."""

    def __init__(self, layout: str, key: str | None, objective: str) -> None:
        self.layout, self.key, self.objective = layout, key, objective
        self._normalize: Normalizer | None = None

    def __call__(self, row: dict[str, Any]) -> Record:
        """The trainer rows of one source row; Reject when it cannot be used."""
        if self.layout in UNPAIRED:
            label_field = LAYOUTS[self.layout].label_field or "label"
            label = flag(row.get(label_field))
            if label is None:
                raise Reject(
                    "bad_label", f"'{label_field}' is {row.get(label_field)!r}; use true or false", label_field
                )
            messages = self._messages({k: v for k, v in row.items() if k != label_field})
            cut = _answer_start(messages)
            return [{"prompt": _plain(messages[:cut]), "completion": _answer(messages, cut), "label": label}]
        chosen, rejected = (self._messages(side) for side in _sides(row, self.layout, self.key))
        prompt, chosen_answer, rejected_answer = _split_pair(chosen, rejected)
        if self.objective == "kto":
            return [
                {"prompt": prompt, "completion": chosen_answer, "label": True},
                {"prompt": prompt, "completion": rejected_answer, "label": False},
            ]
        return [{"prompt": prompt, "chosen": chosen_answer, "rejected": rejected_answer}]

    def _messages(self, row: dict[str, Any]) -> list[Message]:
        if self._normalize is None:
            detection = detect([row])
            if detection.format not in FORMATS:
                raise Reject(
                    "unknown_format", f"the answers are not a conversation LoRA Studio reads ({detection.reason})"
                )
            self._normalize = normalizer(detection)
        normalized = self._normalize(row)
        if normalized.text is not None:
            raise Reject("non_text", "the row holds plain text, not a prompt and an answer")
        return normalized.messages


def _converter(source: SourceFile, detection: Detection, objective: str) -> _Converter:
    layout = detection.format
    if layout in PAIRED or (layout in UNPAIRED and objective == "kto"):
        return _Converter(layout, detection.key, objective)
    if layout in UNPAIRED:
        raise DataError(
            f"{source.name} holds {detection.label}: single answers labelled desirable or undesirable, not pairs. "
            f"training.objective {objective} compares a chosen and a rejected answer to the same prompt; set "
            "training.objective to kto, which learns from labelled answers."
        )
    if layout in LAYOUTS:
        raise DataError(f"{source.name} holds {detection.label}, which no LoRA Studio objective trains yet.")
    if layout == "unknown":
        raise DataError(
            f"{source.name}: no preference layout was recognised ({detection.reason}); training.objective "
            f"{objective} reads the layouts listed in docs/data-formats.md"
        )
    raise DataError(_not_preference(source.name, detection.label, objective))


def _sides(row: dict[str, Any], layout: str, key: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The row as two SFT rows: with its chosen answer, and with its rejected one."""
    rest = {k: v for k, v in row.items() if k not in ("chosen", "rejected")}
    if layout != "preference_openai":
        for side in ("chosen", "rejected"):
            if row.get(side) in (None, "", []):
                raise Reject("missing_field", f"no '{side}' answer", side)
    if layout == "preference":
        prompt = next(k for k in PROMPT_KEYS if k in row)
        reply = _REPLY_KEYS[prompt]
        return {**rest, reply: row.get("chosen")}, {**rest, reply: row.get("rejected")}
    if layout == "preference_implicit":
        chosen, rejected = row.get("chosen"), row.get("rejected")
        if isinstance(chosen, str) and isinstance(rejected, str):
            return _implicit_text(chosen, rejected)
        return {**rest, "messages": chosen}, {**rest, "messages": rejected}
    if layout == "preference_sharegpt" and key is not None:
        turns = row.get(key)
        if not isinstance(turns, list):
            raise Reject("non_text", f"'{key}' is not a list of messages", key)
        return {**rest, key: [*turns, row.get("chosen")]}, {**rest, key: [*turns, row.get("rejected")]}
    # preference_openai: input messages, then the preferred or the non-preferred output
    given = row.get("input")
    messages = given.get("messages") if isinstance(given, dict) else None
    if not isinstance(messages, list):
        raise Reject("missing_field", "'input' has no 'messages' list", "input")
    if isinstance(given, dict) and given.get("tools"):
        raise Reject("unsupported_field", "'input' has tools, which preference training does not use yet", "input")
    sides = []
    for name in ("preferred_output", "non_preferred_output"):
        output = row.get(name)
        if not isinstance(output, list):
            raise Reject("missing_field", f"'{name}' is not a list of messages", name)
        sides.append({"messages": [*messages, *output]})
    return sides[0], sides[1]


def _implicit_text(chosen: str, rejected: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """trl's standard implicit-prompt pair: the shared text up to a word break is the prompt."""
    n = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        n += 1
    while n > 0 and not chosen[n - 1].isspace():
        n -= 1
    prompt = chosen[:n].strip()
    if not prompt:
        raise Reject("missing_field", "'chosen' and 'rejected' share no prompt: they differ from the first word")
    return (
        {"prompt": prompt, "completion": chosen[n:].strip()},
        {"prompt": prompt, "completion": rejected[n:].strip()},
    )


def _split_pair(chosen: list[Message], rejected: list[Message]) -> tuple[list[dict[str, Any]], ...]:
    """The shared prompt and the two answers; Reject when they do not differ in assistant turns after it."""
    n = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        n += 1
    if n == len(chosen) and n == len(rejected):
        raise Reject("same_answers", "'chosen' and 'rejected' are the same, so there is no preference to learn")
    for name, side in (("chosen", chosen), ("rejected", rejected)):
        if n == len(side):
            raise Reject("missing_field", f"'{name}' has no answer after the prompt they share", name)
        if side[n]["role"] != "assistant":
            raise Reject(
                "role_order",
                f"'chosen' and 'rejected' differ at message {n + 1}, a {side[n]['role']} message; they must share "
                "the prompt and differ only in the assistant's answer",
                name,
            )
    while n > 0 and chosen[n - 1]["role"] == "assistant" and chosen[n]["role"] == "assistant":
        n -= 1  # an answer of several assistant turns is compared whole
    return _plain(chosen[:n]), _answer(chosen, n), _answer(rejected, n)


def _answer_start(messages: list[Message]) -> int:
    """Where the final answer starts: the trailing assistant turns."""
    cut = len(messages)
    while cut > 0 and messages[cut - 1]["role"] == "assistant":
        cut -= 1
    return cut


def _answer(messages: list[Message], start: int) -> list[dict[str, Any]]:
    for number, message in enumerate(messages[start:], start=start + 1):
        if message.get("trained") is False or message.get("train_spans") is not None:
            raise Reject(
                "unsupported_field",
                f"message {number} marks part of the answer as not learned; preference training compares whole "
                "answers, so remove the flag or the message",
            )
    return _plain(messages[start:])


def _plain(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as chat templates take them: the flags of what is learned left out."""
    return [{k: v for k, v in m.items() if k not in ("trained", "train_spans")} for m in messages]


def counts(records: list[Record]) -> tuple[int, int]:
    """Desirable and undesirable answers among KTO records."""
    rows = flatten(records)
    desirable = sum(1 for row in rows if row.get("label") is True)
    return desirable, sum(1 for row in rows if row.get("label") is False)
