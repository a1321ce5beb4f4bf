"""Why a file in a refused layout imports nothing, with advice tried on the file's own rows before it is given.

A suggestion is a way to read the rows as supervised fine-tuning data that keeps what they mean: a
column mapping, or an edit to the file that removes only what SFT cannot use and never keeps a row
labelled undesirable. Each is applied to every row in memory, through the same detection and
normalizer an import would use after it is followed, and offered only when it imports rows, with
how many. A layout with no such way (stepwise labels, segments, pairs whose prompt is not separate)
gets its reason alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from backend.data.examples import canonical
from backend.data.formats import FORMATS, LABELS, UNSUPPORTED, Detection, Normalizer, detect, normalizer
from backend.data.preference import LAYOUTS, PROMPT_KEYS, flag
from backend.data.report import count
from backend.data.rules import Reject

Rewrite = Callable[[dict[str, Any]], dict[str, Any] | None]
"""A row as it is after the suggested edit; None when the edit leaves it out."""

_PAIRED_GOAL = "To fine-tune on the preferred answers only"
_UNPAIRED_GOAL = "To fine-tune on the desirable ones only"
_SAMPLE = 200


@dataclass(frozen=True)
class Suggestion:
    goal: str  # what following it achieves: "To fine-tune on the preferred answers only"
    words: str  # what to do: "map the columns instruction = prompt, response = chosen (...)"
    mapping: dict[str, str] | None = None  # a column mapping to import with
    rewrite: Rewrite | None = None  # or the edit to make to each row


def imported(values: Iterable[Any], normalize: Normalizer) -> int:
    """How many of ``values`` an import with ``normalize`` accepts (duplicates included, as it keeps them)."""
    count = 0
    for value in values:
        try:
            canonical(normalize(value)).encode()
        except (Reject, UnicodeEncodeError):
            continue
        count += 1
    return count


def suggestions(detection: Detection) -> list[Suggestion]:
    """The ways to read a refused layout as SFT data without losing its meaning, best first (maybe none)."""
    fmt, columns = detection.format, detection.columns
    field = LAYOUTS[fmt].label_field if fmt in LAYOUTS else None
    if field is not None:
        words = f"keep only the rows whose '{field}' is true and delete the '{field}' field"
        return [Suggestion(_UNPAIRED_GOAL, words, rewrite=_desirable(field))]
    if fmt == "preference":
        prompt = next(key for key in PROMPT_KEYS if key in columns)
        mapping = {"instruction": prompt, "response": "chosen"}
        if prompt == "instruction" and "input" in columns:
            mapping["input"] = "input"
        if "system" in columns:
            mapping["system"] = "system"
        shown = ", ".join(f"{role} = {column}" for role, column in mapping.items())
        flags = " ".join(f"--map {role}={column}" for role, column in mapping.items())
        found = []
        if "history" not in columns:  # a mapping reads no earlier turns
            found.append(Suggestion(_PAIRED_GOAL, f"map the columns {shown} ({flags})", mapping=mapping))
        # Message lists (trl's conversational pairs), which a mapping cannot read; Alpaca rows with history.
        reply = {"prompt": "completion", "instruction": "output", "question": "answer"}[prompt]
        words = f"rename 'chosen' to '{reply}' and delete 'rejected'"
        found.append(Suggestion(_PAIRED_GOAL, words, rewrite=_renamed(reply)))
        return found
    if fmt == "preference_implicit":
        words = "rename 'chosen' to 'messages' and delete 'rejected'"
        return [Suggestion(_PAIRED_GOAL, words, rewrite=_renamed("messages"))]
    if fmt == "preference_sharegpt" and detection.key:
        key = detection.key
        words = f"append 'chosen' to the end of '{key}' and delete 'chosen' and 'rejected'"
        return [Suggestion(_PAIRED_GOAL, words, rewrite=_appended(key))]
    if fmt == "preference_openai":
        words = (
            "write each row as 'messages' (the messages of 'input' followed by 'preferred_output') and 'tools' "
            "(those of 'input', if any), leaving out 'non_preferred_output'"
        )
        return [Suggestion(_PAIRED_GOAL, words, rewrite=_openai_preferred)]
    return []


class Refusal:
    """The reason a file imports nothing, fed its rows a chunk at a time so its advice is counted on all of them."""

    def __init__(self, detection: Detection) -> None:
        self.detection = detection
        self.rows = 0
        self._trials = [_Trial(suggestion) for suggestion in suggestions(detection)]

    def add(self, values: list[Any]) -> None:
        """Count one chunk's rows and try each suggestion on them."""
        self.rows += len(values)
        for trial in self._trials:
            trial.add(values, self.detection)

    @property
    def message(self) -> str:
        """The reason, then the suggestion that imports the most rows, with its count (none when none imports)."""
        reason = UNSUPPORTED[self.detection.format]
        best = max(self._trials, key=lambda trial: trial.imported, default=None)
        if best is None or not best.imported:
            return reason
        s = best.suggestion
        advice = f"{s.goal}, {s.words}: that imports {best.imported:,} of {count(self.rows, 'row')}{best.target}"
        if best.left_out:
            advice += f" and leaves out {count(best.left_out, 'row')} labelled undesirable"
        return f"{reason} {advice}."


class _Trial:
    """One suggestion applied to a file's rows: how many it imports, and as what."""

    def __init__(self, suggestion: Suggestion) -> None:
        self.suggestion = suggestion
        self.imported = self.left_out = 0
        self.target = ""  # " as <the layout the edited rows are read as>"
        self._normalize: Normalizer | None = None

    def add(self, values: list[Any], detection: Detection) -> None:
        rewrite = self.suggestion.rewrite
        rows = values
        if rewrite is not None:
            edited = [rewrite(value) if type(value) is dict else value for value in values]
            self.left_out += sum(row is None for row in edited)
            rows = [row for row in edited if row is not None]
        if self._normalize is None:
            target = (
                Detection("columns", None, "the suggested mapping", detection.columns)
                if self.suggestion.mapping
                else detect(rows[:_SAMPLE])
            )
            if target.format not in FORMATS:
                return  # the edit leaves no layout that SFT reads: no suggestion
            self._normalize = normalizer(target, self.suggestion.mapping)
            self.target = "" if target.format == "columns" else f" as {LABELS[target.format]}"
        self.imported += imported(rows, self._normalize)


def _desirable(field: str) -> Rewrite:
    def edit(row: dict[str, Any]) -> dict[str, Any] | None:
        if flag(row.get(field)) is not True:
            return None
        return {key: value for key, value in row.items() if key != field}

    return edit


def _renamed(to: str) -> Rewrite:
    def edit(row: dict[str, Any]) -> dict[str, Any]:
        kept = {key: value for key, value in row.items() if key not in ("chosen", "rejected")}
        return {**kept, to: row.get("chosen")}

    return edit


def _appended(key: str) -> Rewrite:
    def edit(row: dict[str, Any]) -> dict[str, Any]:
        kept = {k: value for k, value in row.items() if k not in ("chosen", "rejected")}
        turns = row.get(key)
        return {**kept, key: [*turns, row.get("chosen")] if isinstance(turns, list) else turns}

    return edit


def _openai_preferred(row: dict[str, Any]) -> dict[str, Any]:
    given = row.get("input")
    messages = given.get("messages") if isinstance(given, dict) else None
    preferred = row.get("preferred_output")
    if not isinstance(messages, list) or not isinstance(preferred, list):
        return {}  # nothing to read: the import would refuse it
    edited: dict[str, Any] = {"messages": [*messages, *preferred]}
    tools = given.get("tools") if isinstance(given, dict) else None
    if tools:
        edited["tools"] = tools
    return edited
