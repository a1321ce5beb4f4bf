"""The render job reads the preview server's lines through the declared model, and refuses another version."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.token_job import RenderJob
from backend.data.preview_protocol import PREVIEW_VERSION, ExamplePreview, PreviewError, PreviewReady, preview_json

SHOWN = ExamplePreview(
    example=2,
    file="d.jsonl",
    line=2,
    where="d.jsonl line 2",
    text="<|user|>Hi<|assistant|>Hello.",
    loss_spans=[(23, 29)],
    tokens=7,
    loss_tokens=2,
    cut_at=5,
)


def _job(asked: list[int], tmp_path: Path) -> tuple[RenderJob, list[tuple[int, object]], list[tuple[int, str]]]:
    """A render job waiting for ``asked`` (rows from 0), as if it had sent them to its child."""
    job = RenderJob(tmp_path)
    job._asked = list(asked)
    rendered: list[tuple[int, object]] = []
    failed: list[tuple[int, str]] = []
    job.rendered.connect(lambda row, shown: rendered.append((row, shown)))
    job.failed.connect(lambda row, why: failed.append((row, why)))
    return job, rendered, failed


def test_answers_become_rendered_examples_and_errors(qtbot: QtBot, tmp_path: Path) -> None:
    job, rendered, failed = _job([1, 4], tmp_path)
    job._answered(preview_json(PreviewReady(examples=6)))
    job._answered("loading the tokenizer…")  # not JSON: not for the job
    job._answered(preview_json(SHOWN))
    job._answered(preview_json(PreviewError(example=5, error="there are 6 usable examples")))
    [(row, shown)] = rendered
    assert row == 1 and shown.text == SHOWN.text and shown.loss_spans == [(23, 29)]
    assert (shown.token_count, shown.loss_token_count, shown.cut_at) == (7, 2, 5)
    assert failed == [(4, "There are 6 usable examples")] and job._asked == []


def test_a_preview_from_another_version_fails_every_row_asked_for_and_says_why(qtbot: QtBot, tmp_path: Path) -> None:
    job, rendered, failed = _job([0, 3], tmp_path)
    line = preview_json(SHOWN).replace(f'"v": {PREVIEW_VERSION}', f'"v": {PREVIEW_VERSION + 1}')
    job._answered(line)
    assert rendered == [] and [row for row, _ in failed] == [0, 3]
    assert f"came in format {PREVIEW_VERSION + 1}, but this LoRA Studio reads format {PREVIEW_VERSION}" in failed[0][1]
