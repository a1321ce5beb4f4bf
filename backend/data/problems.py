"""What can be wrong with a dataset, where, and what to do about it.

Every rule that rejects or flags a row has a code here with the advice a person
needs to fix it, so the CLI, the report file and the GUI's issue list all say
the same thing. A problem names its file, line or row and field, so a person can
jump straight to it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


class DataError(ValueError):
    """A dataset that cannot be trained on, with what to do about it.

    ``code`` says which rule (see ADVICE) when one file of several fails, so the
    report can list it with the others.
    """

    def __init__(self, message: str, code: str = "unreadable_file") -> None:
        super().__init__(message)
        self.code = code


def said(exc: BaseException) -> str:
    """What a library's exception says, for a message: its type and text, the type alone where it has no text
    (never empty brackets)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ImportCancelled(Exception):
    """Reading a dataset was stopped on request."""


# code -> (short title for grouped listings, what to do)
ADVICE: dict[str, tuple[str, str]] = {
    # whole files
    "unreadable_file": ("file cannot be read", "check the path and that the file is not open in another program"),
    "invalid_json_file": (
        "file is not valid JSON",
        "fix the file at the place shown (often a missing comma or an unclosed quote); rows after it were not read",
    ),
    "invalid_csv_file": (
        "file is not valid CSV",
        "fix the quoting at the place shown (a quote opened and never closed is typical); rows after it were not read",
    ),
    "empty_file": ("file is empty", "choose the file that holds the rows, or export the data again"),
    "not_text": (
        "file is not text",
        "choose the data file itself; a compressed, image or other binary file renamed .jsonl cannot be read",
    ),
    "no_rows": ("file holds no rows", "write the rows as a JSON list of objects, or one object per line in .jsonl"),
    "encrypted": (
        "file is protected by a password",
        "save a copy without the password (for a PDF, printing it to a new PDF also works) and import that",
    ),
    "no_sheet": ("no sheet of that name", "give the name of one of the workbook's sheets, as its tab shows it"),
    "no_text": (
        "no text to read",
        "a scanned page is a picture of text: run OCR on the file first (e.g. ocrmypdf, or Scan & OCR in Acrobat) "
        "and import the searchable result",
    ),
    "unknown_format": (
        "format not recognised",
        "choose the format, or map your columns to instruction, input, response and system",
    ),
    "unsupported_format": ("data type not supported for fine-tuning", "see the explanation; nothing was imported"),
    "unsupported_field": (
        "field with training meaning not supported",
        "the row is left out rather than trained without the field; remove the field where its meaning may be "
        "ignored, or train these rows with a tool that honours it",
    ),
    # rows that cannot be used
    "invalid_json": ("not valid JSON", "fix the line (often a missing comma or quote) or delete it"),
    "invalid_text": (
        "not UTF-8 text",
        "save the file as UTF-8 (in Excel: Save As > 'CSV UTF-8'; in an editor: Save with Encoding > UTF-8)",
    ),
    "not_an_object": ("not an object", 'each row must be one JSON object, e.g. {"messages": [...]}'),
    "missing_field": (
        "required field missing",
        "add the field, or map your columns if they have other names",
    ),
    "empty_field": ("required field empty", "write the missing text or delete the row"),
    "non_text": ("content is not text", "replace it with plain text; only text can be trained on"),
    "multimodal": (
        "images, audio or video",
        "LoRA Studio fine-tunes text-only models; remove these rows or train them with a vision/audio tool",
    ),
    "unknown_role": ("unknown role", "use system, user, assistant or tool"),
    "role_order": ("roles out of order", "user and assistant must take turns; merge or reorder the messages"),
    "system_not_first": ("system message not first", "move it to the start, or merge it into the first one"),
    "no_reply": (
        "does not end with an assistant reply",
        "add the assistant's reply at the end, or delete the unanswered message",
    ),
    "nothing_to_learn": ("no reply to learn from", "give at least one assistant reply weight 1 (or remove weight)"),
    "bad_weight": ("weight not 0 or 1", "use weight 0 (do not train on this reply) or 1 (train on it)"),
    "bad_tools": ("tools not valid", "give tools as a JSON list of function definitions"),
    "bad_tool_call": (
        "tool call not valid",
        "give each call a function name and its arguments as a JSON object (or JSON text of one)",
    ),
    "bad_train_span": (
        "learned span not valid",
        "give each span as character offsets inside its message's content (train_detail: end_offset inclusive)",
    ),
    "extra_fields": ("more fields than the header", "quote values that contain the delimiter, or fix the header"),
    "template_error": (
        "chat template cannot render it",
        "the model's chat template rejects this conversation; fix the roles, or choose another model",
    ),
    # rows that are kept, with a warning
    "duplicate": (
        "exact duplicate",
        "turn on dedupe to drop copies; duplicates are over-learned and can leak into the eval split",
    ),
    "placeholder": (
        "unfilled template placeholder",
        "fill in the value where the data was generated; ignore this if the braces are meant literally (code)",
    ),
    "too_long": (
        "longer than max length",
        "raise the max length, shorten or split the example; the end of it will be cut",
    ),
}


@dataclass(frozen=True)
class RowProblem:
    """One problem with one row (or one file, when ``row`` is None)."""

    code: str
    message: str
    file: str = ""
    line: int | None = None
    row: int | None = None
    field: str | None = None
    excluded: bool = True
    unit: str = "line"  # what ``line`` counts: line, page, paragraph, or "<sheet> row" in a workbook
    rows: int = 1  # rows it covers: 1 for a row; for a whole file (``row`` None) the rows read from it

    @property
    def whole_file(self) -> bool:
        return self.line is None and self.row is None

    @property
    def covers(self) -> str:
        """For a whole file that was read, the rows it keeps out in words, as the summary counts them."""
        if not self.whole_file or not self.rows:
            return ""
        return "its 1 row excluded" if self.rows == 1 else f"all {self.rows:,} rows excluded"

    @property
    def hint(self) -> str:
        return ADVICE[self.code][1]

    def where(self) -> str:
        """'train.jsonl line 12, field messages' (a line, page or Excel row where the file has them, else a row);
        for a whole file, the rows it covers: 'train.jsonl (all 5 rows excluded)'."""
        parts = [self.file] if self.file else []
        if self.line is not None:
            parts.append(f"{self.unit} {self.line}")
        elif self.row is not None:
            parts.append(f"row {self.row}")
        elif self.covers:
            parts.append(f"({self.covers})")
        place = " ".join(parts)
        return f"{place}, field {self.field}" if self.field else place

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hint": self.hint}


@dataclass
class ProblemLog:
    """Counts every problem; keeps the first ``keep`` of each code with its location.

    A million-row file with one systematic fault would otherwise hold a million
    problems in memory; the counts still say how many rows each rule hit.
    ``counts`` counts rows (a whole-file problem counts the file's rows read; see
    ``DataReport``), ``entries`` counts the problems themselves.
    """

    keep: int = 1000
    counts: Counter[str] = field(default_factory=Counter)
    entries: Counter[str] = field(default_factory=Counter)
    kept: list[RowProblem] = field(default_factory=list)

    def add(self, problem: RowProblem) -> None:
        self.counts[problem.code] += problem.rows
        self.entries[problem.code] += 1
        if self.entries[problem.code] <= self.keep:
            self.kept.append(problem)

    def omitted(self, code: str) -> int:
        """How many problems of this code were counted but not kept."""
        return max(0, self.entries[code] - self.keep)

    def extend(self, other: ProblemLog) -> None:
        for problem in other.kept:
            self.add(problem)
        for code, entries in other.entries.items():
            kept = [p for p in other.kept if p.code == code]
            self.entries[code] += entries - len(kept)
            self.counts[code] += other.counts[code] - sum(p.rows for p in kept)

    def __len__(self) -> int:
        return sum(self.entries.values())
