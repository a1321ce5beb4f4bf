"""The token preview's JSON lines: declared once, read back typed, another version refused by name."""

from __future__ import annotations

import json

import pytest

from backend.data.preview_protocol import (
    PREVIEW_VERSION,
    ExamplePreview,
    PreviewError,
    PreviewReady,
    UnknownPreviewVersion,
    parse_preview_line,
    preview_json,
)

SAMPLES = [
    PreviewReady(examples=6),
    ExamplePreview(
        example=2,
        file="d.jsonl",
        line=2,
        row=1,
        where="d.jsonl line 2",
        text="<|user|>Grüße?<|assistant|>Hallo.",
        loss_spans=[(22, 28)],
        tokens=9,
        loss_tokens=3,
        cut_at=None,
    ),
    PreviewError(example=None, error="expected an example number, got 'two'"),
    PreviewError(example=99, error="there are 6 usable examples; choose 1 to 6"),
]


@pytest.mark.parametrize("line", SAMPLES, ids=lambda line: type(line).__name__)
def test_every_line_round_trips(line) -> None:
    text = preview_json(line)
    assert "\n" not in text and json.loads(text)["v"] == PREVIEW_VERSION
    assert parse_preview_line(text) == line


def test_text_stays_readable_and_fields_added_later_are_ignored() -> None:
    shown = SAMPLES[1]
    assert "Grüße" in preview_json(shown)
    later = json.loads(preview_json(shown)) | {"colour": "blue"}
    assert parse_preview_line(json.dumps(later)) == shown


def test_another_version_is_refused_with_a_clear_message() -> None:
    for version in (PREVIEW_VERSION + 1, None):
        line = json.loads(preview_json(SAMPLES[1])) | {"v": version}
        with pytest.raises(UnknownPreviewVersion, match=rf"reads format {PREVIEW_VERSION}.*another version"):
            parse_preview_line(json.dumps(line))


def test_anything_else_is_not_a_preview_line() -> None:
    for text in ("loading tokenizer…", "[]", '{"v": 1, "example": "two", "text": 3}'):
        with pytest.raises(ValueError, match="not a preview line") as caught:
            parse_preview_line(text)
        assert not isinstance(caught.value, UnknownPreviewVersion)
