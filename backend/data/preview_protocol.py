"""The token preview's JSON: what ``data preview --json`` prints and ``data preview --serve`` answers.

Declared once here, so the CLI writes and the GUI's ``RenderJob`` reads the same typed lines
instead of dict keys. Every line carries ``v`` (``PREVIEW_VERSION``), which changes when a field
changes meaning or disappears; readers ignore fields they do not know and refuse a version they
do not, saying so. pydantic only: the GUI imports this without the ML stack. See docs/data-formats.md.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PREVIEW_VERSION = 1


class UnknownPreviewVersion(ValueError):
    """A line from a preview protocol this LoRA Studio does not know (another installation's CLI)."""


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int = PREVIEW_VERSION


class PreviewReady(_Line):
    """The server's first line: the dataset is read and the tokenizer loaded."""

    ready: bool = True
    examples: int = Field(description="Usable examples, numbered from 1.")


class ExamplePreview(_Line):
    """One example as the model sees it: the chat template's text and the characters that carry loss."""

    example: int = Field(description="Which usable example, from 1.")
    file: str
    line: int | None = None
    unit: str = "line"
    row: int | None = None
    where: str = Field(description="The example's place in words, e.g. 'd.jsonl line 2'.")
    text: str
    loss_spans: list[tuple[int, int]] = Field(description="[start, end) character offsets into text.")
    tokens: int
    loss_tokens: int
    cut_at: int | None = Field(None, description="Character offset where max_length cuts the text; null if it fits.")
    notices: list[str] = Field(
        default_factory=list,
        description="What the text holds that the data does not, in words: e.g. the chat template's own system prompt.",
    )


class PreviewError(_Line):
    """Why one request got no preview; the server goes on answering."""

    example: int | None = Field(description="The example asked for; null when the request was not a number.")
    error: str


PreviewLine = PreviewReady | ExamplePreview | PreviewError


def preview_json(line: PreviewLine) -> str:
    """One line as the CLI prints it: compact, non-ASCII text kept as it is."""
    return json.dumps(line.model_dump(mode="json"), ensure_ascii=False)


def parse_preview_line(text: str | bytes) -> PreviewLine:
    """The typed line; ``UnknownPreviewVersion`` for another version, ValueError for anything else."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("not a preview line: not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a preview line: not a JSON object")
    version = data.get("v")
    if version != PREVIEW_VERSION:
        raise UnknownPreviewVersion(
            f"the preview came in format {version!r}, but this LoRA Studio reads format {PREVIEW_VERSION}: "
            "the command line it ran belongs to another version; reinstall so the two match"
        )
    kind: type[PreviewLine] = PreviewReady if "ready" in data else PreviewError if "error" in data else ExamplePreview
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"not a preview line: {exc.errors(include_url=False)[0]['msg']}") from None
