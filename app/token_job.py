"""Measuring a dataset in a model's tokens, and rendering one example as that model sees it.

Both need the model's tokenizer and chat template, so both run ``lora-studio data …`` in a
child process (``CliJob``) and read its JSON: ``data check --model M --json`` for the token
statistics, and one long-lived ``data preview --serve --model M`` that answers each example
asked for, so a click costs milliseconds, not a fresh process. The GUI process never imports
transformers. Before starting, ``model_problem`` looks the model up in the store (no ML
imports), so a model that was never imported is explained with the command that imports it
instead of being downloaded behind the user's back.
"""

from __future__ import annotations

import copy
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.cli_job import CliJob, CliOutcome
from backend.data.preview_protocol import ExamplePreview, PreviewReady, UnknownPreviewVersion, parse_preview_line
from backend.data.problems import RowProblem
from backend.data.report import Advice, DataReport, TokenStats
from backend.data.scan import ImportOptions
from backend.models.errors import ModelError, ModelNotFoundError
from backend.models.hub_import import is_hub_id
from backend.models.store import DEFAULT_ALIAS, DEFAULT_NAME, DEFAULT_SLUG, get_model, list_models
from widgets.example_preview import RenderedExample
from widgets.token_histogram import TokenLengths
from widgets.token_panel import TokenSummary

TOKEN_CODES = ("too_long", "template_error")
"""The problems only a tokenizer finds; the rest come from the check in the GUI process."""


@dataclass(frozen=True)
class Measuring:
    """What to measure: a dataset read with ``options``, with ``model`` at ``max_length``."""

    path: Path
    options: ImportOptions
    model: str
    max_length: int

    def reading_args(self) -> list[str]:
        """How the child process reads the dataset as the page did: format, column mapping, dedupe, sheet."""
        args = []
        if self.options.columns:
            for role, column in self.options.columns.items():
                args += ["--map", f"{role}={column}"]
        elif self.options.format not in ("auto", "columns"):
            args += ["--format", self.options.format]
        if self.options.dedupe:
            args.append("--dedupe")
        if self.options.sheet is not None:
            args += ["--sheet", self.options.sheet]
        return args

    def model_args(self) -> list[str]:
        return ["--model", self.model, "--max-length", str(self.max_length), "--json"]


# -- models --------------------------------------------------------------------------------------


def model_choices() -> list[tuple[str, str]]:
    """The models in the store as ``(name, reference)``; the default model first, imported or not."""
    records = list_models()
    choices = [(record.name, record.slug) for record in records]
    if not any(record.slug == DEFAULT_SLUG for record in records):
        choices.insert(0, (f"{DEFAULT_NAME} (not imported yet)", DEFAULT_ALIAS))
    else:
        choices.sort(key=lambda choice: choice[1] != DEFAULT_SLUG)
    return choices


def canonical_model(ref: str) -> str:
    """``default`` is the default model's store name once it is imported."""
    if ref == DEFAULT_ALIAS and any(record.slug == DEFAULT_SLUG for record in list_models()):
        return DEFAULT_SLUG
    return ref


def import_command(ref: str) -> str:
    """The terminal command that imports ``ref``: the default model or a Hub id; "" for anything else
    (a folder the store can't read is no model, and a name it doesn't know can't be fetched)."""
    if ref == DEFAULT_ALIAS or (is_hub_id(ref) and not Path(ref).expanduser().exists()):
        return f"lora-studio models import {shlex.quote(ref)}"
    return ""


def model_problem(ref: str) -> tuple[str, str] | None:
    """Why ``ref`` can't measure anything yet, and the command that fixes it; None when it can.

    Reads the store's records only (no ML imports, nothing downloaded); whether the tokenizer
    really loads is for the child process to say.
    """
    try:
        get_model(ref)
    except ModelNotFoundError as exc:
        command = import_command(ref)
        return (f"{exc} To import it from a terminal:" if command else str(exc)), command
    except ModelError as exc:
        return str(exc), ""
    return None


# -- reading the JSON ------------------------------------------------------------------------------


def token_summary(stats: dict[str, Any]) -> TokenSummary | None:
    """The panel's summary from a report's ``tokens``; None when no example could be measured."""
    edges, counts = stats.get("histogram_edges") or [], stats.get("histogram_counts") or []
    percentiles = stats.get("percentiles") or {}
    if not counts or len(edges) != len(counts) + 1:
        return None
    lengths = TokenLengths(
        edges=[float(e) for e in edges],
        counts=[int(c) for c in counts],
        p50=float(percentiles.get("p50", 0)),
        p90=float(percentiles.get("p90", 0)),
        p99=float(percentiles.get("p99", 0)),
    )
    return TokenSummary(
        lengths=lengths,
        max_length=int(stats["max_length"]),
        examples=int(stats["examples"]),
        total=int(stats["total"]),
        longest=int(stats["longest"]),
        truncated=int(stats["truncated"]),
        cut_tokens=int(stats["cut_tokens"]),
        tokens_per_epoch=int(stats["tokens_per_epoch"]),
        loss_share=stats.get("loss_share"),
        loss_sample=int(stats.get("loss_sample", 0)),
        lost_reply=int(stats.get("lost_reply", 0)),
        failed=int(stats.get("failed", 0)),
    )


def with_tokens(base: DataReport, measured: dict[str, Any]) -> DataReport:
    """``base`` (the check made in the GUI process) with the token statistics, problems and advice measured."""
    report = copy.deepcopy(base)
    stats = measured.get("tokens")
    report.tokens = TokenStats(**stats) if stats else None
    for problem in measured.get("problems", []):
        if problem.get("code") in TOKEN_CODES:
            report.problems.add(RowProblem(**{k: v for k, v in problem.items() if k != "hint"}))
    counts = measured.get("problem_counts", {})
    for code in TOKEN_CODES:
        if code in counts:
            report.problems.counts[code] = counts[code]
    report.advice = [Advice(a["code"], a["message"]) for a in measured.get("advice", [])]
    return report


def rendered_example(shown: ExamplePreview) -> RenderedExample:
    return RenderedExample(
        text=shown.text,
        loss_spans=list(shown.loss_spans),
        token_count=shown.tokens,
        loss_token_count=shown.loss_tokens,
        cut_at=shown.cut_at,
    )


def _json_of(outcome: CliOutcome) -> dict[str, Any] | None:
    try:
        value = json.loads(outcome.stdout)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- jobs ------------------------------------------------------------------------------------------


class TokenJob(QObject):
    """``data check --model --json`` in a child process: ``measured(TokenSummary | None, dict)`` or ``failed(str)``."""

    measured = Signal(object, object)  # TokenSummary or None (nothing measurable), the whole report as a dict
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, home: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cli = CliJob(self, environment={"LORA_STUDIO_HOME": str(home)})
        self._cli.finished.connect(self._finished)
        self.request: Measuring | None = None

    def start(self, request: Measuring) -> None:
        self.request = request
        self._cli.start(["data", "check", str(request.path), *request.reading_args(), *request.model_args()])

    def is_running(self) -> bool:
        return self._cli.is_running()

    def cancel(self) -> None:
        self._cli.cancel()

    def shutdown(self) -> None:
        self._cli.shutdown()

    def _finished(self, outcome: CliOutcome) -> None:
        if outcome.cancelled:
            self.cancelled.emit()
            return
        report = _json_of(outcome)
        # ``check`` exits 1 when nothing is usable and still prints the report.
        if report is None or "tokens" not in report:
            self.failed.emit(outcome.error_text("Counting tokens"))
            return
        self.measured.emit(token_summary(report["tokens"] or {}), report)


class RenderJob(QObject):
    """Examples rendered by one ``data preview --serve`` child: ``rendered(row, RenderedExample)`` or ``failed``.

    The child reads the dataset and loads the tokenizer once, then answers each row asked for
    in milliseconds. It serves one ``Measuring`` (dataset, reading options, model, max length):
    asking with another, or after it died, starts a fresh one.
    """

    rendered = Signal(int, object)
    noticed = Signal(int, str)  # before ``rendered``: what its text holds that the data does not ("" for nothing)
    failed = Signal(int, str)

    def __init__(self, home: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cli = CliJob(self, environment={"LORA_STUDIO_HOME": str(home)}, lines=True)
        self._cli.lineRead.connect(self._answered)
        self._cli.finished.connect(self._finished)
        self._serving: Measuring | None = None
        self._asked: list[int] = []  # rows sent and not answered yet, in order

    def start(self, request: Measuring, row: int) -> None:
        """Render usable example ``row`` (from 0) of the dataset, by the child serving ``request``."""
        fresh = request != self._serving or not self._cli.is_running()
        if fresh:
            self._asked.clear()
            self._serving = request
        elif row in self._asked:
            return
        self._asked.append(row)  # before starting: a child that can't start fails it at once
        if fresh:
            where = [str(request.path), "--serve"]
            self._cli.start(["data", "preview", *where, *request.reading_args(), *request.model_args()])
        self._cli.send(f"{row + 1}\n")

    def is_running(self) -> bool:
        return self._cli.is_running()

    def shutdown(self) -> None:
        """Stop the child; the next request starts a fresh one."""
        self._cli.shutdown()
        self._serving = None
        self._asked.clear()

    def _answered(self, line: str) -> None:
        try:
            shown = parse_preview_line(line)
        except UnknownPreviewVersion as exc:  # every row asked for would fail the same way
            asked, self._asked = self._asked, []
            for row in asked:
                self.failed.emit(row, f"Rendering the example: {exc}")
            return
        except ValueError:
            return  # only preview answers are for us
        if isinstance(shown, PreviewReady) or shown.example is None:
            return  # the "ready" line, or the answer to a request that named no example
        row = shown.example - 1
        if row in self._asked:
            self._asked.remove(row)
        if isinstance(shown, ExamplePreview):
            self.noticed.emit(row, "\n".join(shown.notices))
            self.rendered.emit(row, rendered_example(shown))
        else:
            said = shown.error or "the rendering gave no text"
            self.failed.emit(row, said[:1].upper() + said[1:])

    def _finished(self, outcome: CliOutcome) -> None:
        """The child ended on its own (a dataset or model it can't read, a crash): every row asked for failed."""
        asked, self._asked = self._asked, []
        self._serving = None
        for row in asked:
            self.failed.emit(row, outcome.error_text("Rendering the example"))
