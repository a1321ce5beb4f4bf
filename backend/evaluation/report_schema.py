"""The evaluation's ``report.json``, declared once: the job writes it through these models and every reader
(the Markdown and HTML renderers, the Evaluate page, the adapter's record) reads it back typed.

``format`` (``REPORT_FORMAT``) changes when a field changes meaning or disappears; readers ignore fields
they do not know and refuse a format they do not, saying so. Model keys are ``base``, ``adapter`` and, in
an A/B job, ``compare``. pydantic only: the GUI imports this without the ML stack. See docs/evaluation.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

REPORT_FORMAT = 1
REPORT_JSON = "report.json"

DiffKind = Literal["equal", "delete", "insert"]


class UnknownReportFormat(ValueError):
    """A report written by a LoRA Studio whose report format this one does not know."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ReportBase(_Part):
    label: str
    path: str
    fingerprint: str | None = None


class ReportColumn(_Part):
    """One model compared: the base, the adapter, or the second adapter of an A/B job."""

    key: str
    label: str
    path: str = ""
    trained_steps: int | None = Field(None, description="Adapters only, from their record.")
    training_metrics: dict[str, Any] | None = Field(None, description="Adapters only, from their record.")


class HeldOutData(_Part):
    source: str = Field(description="Where the held-out examples came from, in words.")
    content_hash: str | None = None
    available: int = 0
    examples: int = Field(0, description="Examples measured.")
    skipped: int = 0
    tokens: int = Field(0, description="Label tokens measured.")
    max_length: int | None = None
    loss_on: str | None = None


class TrainingLoss(_Part):
    """The adapter's in-training held-out loss beside the evaluation's, and why they differ (``loss_note``)."""

    value: float | None = Field(None, description="The trainer's eval_loss from the adapter's record.")
    differences: list[str] = Field(default_factory=list, description="Each condition the two do not share.")


class Loss(_Part):
    loss: float
    perplexity: float | None = Field(description="exp(loss); null where it overflows.")


class Delta(_Part):
    """An adapter against the base; ``compare_vs_adapter`` holds the second adapter against the first."""

    loss: float
    perplexity: float | None = None
    perplexity_relative: float | None = Field(None, description="Perplexity ratio minus 1.")


class ExampleLosses(_Part):
    index: int
    where: str
    prompt: str = Field(description="Shortened, for a table.")
    tokens: int
    truncated: bool
    losses: dict[str, float] = Field(description="Per model key.")


class RankedExample(_Part):
    """A held-out example whose loss rose (or fell) most against the base."""

    index: int
    where: str
    prompt: str
    tokens: int
    base: float
    loss: float
    delta: float


class Generation(_Part):
    """One prompt and every model's answer, with word diffs from the base's answer to each adapter's."""

    index: int
    prompt: list[dict[str, Any]] = Field(description="The conversation asked, as messages.")
    reference: str | None = Field(None, description="The held-out reply; null for the user's own prompts.")
    where: str | None = None
    outputs: dict[str, str] = Field(description="Per model key.")
    diff: dict[str, list[tuple[DiffKind, str]]] = Field(default_factory=dict, description="Per adapter key.")
    scores: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per model key: the task metrics against the reference (task_metrics.py)."
    )

    def changed(self, key: str) -> bool:
        return self.outputs[key] != self.outputs["base"]


class RefusalAnswer(_Part):
    prompt: str
    should_refuse: bool
    outputs: dict[str, str] = Field(description="Per model key.")
    refused: dict[str, bool] = Field(description="Per model key: the answer's opening refuses.")


class SuiteRun(_Part):
    """One regression suite's prompts, every model's answers, and per model which passed and why not."""

    prompts: list[str]
    outputs: list[dict[str, str]] = Field(description="Per prompt, per model key.")
    results: dict[str, dict[str, Any]] = Field(description="Per model key: passed (per prompt), pass_rate, why.")


class ToolCall(_Part):
    """A call found in an answer (``tool_calls.py``): parsed, naming a defined function, with valid arguments."""

    text: str
    parsed: bool
    name: str | None = None
    arguments: Any = None
    valid_name: bool = False
    valid_arguments: bool = False
    problem: str | None = Field(None, description="Why the call fails the check, in words.")


class ToolCallAnswer(_Part):
    """One prompt with tools: whether its reference calls a function, and the calls in every model's answer."""

    index: int = Field(description="The generation's index.")
    where: str | None = None
    expected: bool = Field(description="The reference answer makes a call.")
    reference_calls: list[dict[str, Any]] = Field(default_factory=list)
    calls: dict[str, list[ToolCall]] = Field(description="Per model key.")


class EvaluationReport(_Part):
    format: int = REPORT_FORMAT
    kind: Literal["evaluation"] = "evaluation"
    name: str
    created_at: str = Field(description="UTC, ISO 8601.")
    job: str = Field(description="The job folder.")
    spec: dict[str, Any] = Field(default_factory=dict, description="The evaluate spec as run.")
    versions: dict[str, str] = Field(default_factory=dict)
    precision: str = Field(description="How the base was loaded, in words.")
    device: str
    base: ReportBase
    models: list[ReportColumn] = Field(description="The columns in order, the base first.")
    data: HeldOutData
    losses: dict[str, Loss] = Field(default_factory=dict, description="Per model key; empty without held-out data.")
    training_loss: TrainingLoss | None = Field(
        None, description="The adapter's in-training held-out loss and how it was measured otherwise (newer reports)."
    )
    deltas: dict[str, Delta] = Field(default_factory=dict)
    examples: list[ExampleLosses] = Field(default_factory=list)
    worse: dict[str, list[RankedExample]] = Field(default_factory=dict, description="Per adapter key, at most ten.")
    better: dict[str, list[RankedExample]] = Field(default_factory=dict, description="Per adapter key, at most ten.")
    prompts_source: str = ""
    decoding: dict[str, Any] = Field(default_factory=dict)
    generations: list[Generation] = Field(default_factory=list)
    task: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per model key: mean task metrics over the answers that have a reference."
    )
    refusal: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per model key: refusal_rate and over_refusal_rate (refusal.py)."
    )
    refusal_answers: list[RefusalAnswer] = Field(default_factory=list, description="The refusal check's answers.")
    tool_calls: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per model key, where held-out prompts carry tools: calls_expected, calls_made, parse_rate, "
        "valid_name_rate, valid_arguments_rate (tool_calls.py).",
    )
    tool_call_answers: list[ToolCallAnswer] = Field(
        default_factory=list, description="The tool-call check's answers, one per prompt with tools."
    )
    suites: dict[str, SuiteRun] = Field(default_factory=dict, description="Per suite name (suites.py).")
    warnings: list[str] = Field(default_factory=list)
    duration_s: float = 0.0

    def label(self, key: str) -> str:
        """The column's label for a model key; the key itself for a column the report does not hold."""
        return next((column.label for column in self.models if column.key == key), key)

    def to_json(self) -> str:
        """The file's text; a NaN or infinity is refused rather than written as invalid JSON."""
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def read_report(path: Path) -> EvaluationReport:
    """A report.json (or the job folder holding one).

    ValueError when it is not an evaluation report; ``UnknownReportFormat`` when it is one in a format
    this LoRA Studio does not read.
    """
    path = path / REPORT_JSON if path.is_dir() else path
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("kind") != "evaluation":
        raise ValueError(f"{path} is not a LoRA Studio evaluation report")
    if data.get("format") != REPORT_FORMAT:
        raise UnknownReportFormat(
            f"{path} is an evaluation report in format {data.get('format')!r}, but this LoRA Studio reads "
            f"format {REPORT_FORMAT}: open it with the version that wrote it, or run the evaluation again"
        )
    try:
        return EvaluationReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{path} is not a valid evaluation report: {where}: {first['msg']}") from None
