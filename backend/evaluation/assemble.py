"""The evaluation's report and the adapters' records, from what the evaluate job measured.

``build_report`` assembles ``report.json``'s ``EvaluationReport`` (format 1, declared in
``report_schema.py``): the models, the held-out data, the loss and perplexity of each model and
the changes against the base, every example's losses with the ten that got most worse and most
better, and the answers to the prompts with their word diff against the base's.
``update_records`` puts a summary of it into each adapter's record (``record.py``).
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backend.core.layout import JobLayout
from backend.core.task_specs import EvaluateSpec
from backend.evaluation.heldout import HeldOut, TokenizedExample
from backend.evaluation.loss_note import loss_differences
from backend.evaluation.record import record_evaluation
from backend.evaluation.report import prompt_text, word_diff
from backend.evaluation.report_schema import EvaluationReport
from backend.evaluation.side_by_side import BASE, Comparison, Decoding
from backend.evaluation.task_metrics import mean_scores, score
from backend.evaluation.tool_calls import check_calls, tool_call_rates
from backend.export.adapter import AdapterInfo

ADAPTER, COMPARE = "adapter", "compare"
_LISTED_EXAMPLES = 10


@dataclass(frozen=True)
class PromptItem:
    messages: list[dict[str, Any]]
    reference: str | None = None
    where: str | None = None
    tools: list[dict[str, Any]] | None = None  # the example's tool definitions, shown to the model
    reference_calls: list[dict[str, Any]] | None = None  # the calls the reference reply makes


@dataclass(frozen=True)
class EvaluatedAdapter:
    """An adapter being evaluated: its key in the report (``adapter`` or ``compare``), what was read, its label."""

    key: str
    info: AdapterInfo
    label: str

    @property
    def record(self) -> dict[str, Any]:
        return self.info.record or {}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def build_report(
    *,
    spec: EvaluateSpec,
    layout: JobLayout,
    adapters: list[EvaluatedAdapter],
    base: tuple[Path, str, str],
    comparison: Comparison,
    held: HeldOut,
    items: list[TokenizedExample],
    sums: dict[str, list[float]],
    losses: dict[str, dict[str, float]],
    prompts: tuple[list[PromptItem], str, list[dict[str, str]]],
    decoding: Decoding,
    warnings: list[str],
    duration: float,
    refusal: tuple[dict[str, dict[str, float]], list[dict[str, Any]]] = ({}, []),
    suites: dict[str, dict[str, Any]] | None = None,
) -> EvaluationReport:
    from backend.models.runtime import library_versions

    base_path, base_label, base_fingerprint = base
    prompt_items, prompts_source, outputs = prompts
    refusal_rates, refusal_answers = refusal
    keys = [BASE, *(a.key for a in adapters)]
    per_example = [
        {
            "index": item.index,
            "where": item.example.where(),
            "prompt": _example_prompt(item),
            "tokens": item.loss_tokens,
            "truncated": item.truncated,
            "losses": {key: sums[key][row] / item.loss_tokens for key in keys},
        }
        for row, item in enumerate(items)
    ]
    deltas = {}
    for adapter in adapters:
        if losses:
            loss, base_loss = losses[adapter.key]["loss"], losses[BASE]["loss"]
            deltas[adapter.key] = {
                "loss": loss - base_loss,
                "perplexity": _finite(losses[adapter.key]["perplexity"] - losses[BASE]["perplexity"]),
                "perplexity_relative": _finite(math.exp(loss - base_loss) - 1) if loss - base_loss < 700 else None,
            }
    if losses and COMPARE in losses:
        deltas["compare_vs_adapter"] = {"loss": losses[COMPARE]["loss"] - losses[ADAPTER]["loss"]}
    scores = [
        {key: score(answers[key], item.reference) for key in keys} if item.reference else {}
        for item, answers in zip(prompt_items, outputs, strict=True)
    ]
    scored = [per_model for per_model in scores if per_model]
    task = {key: mean_scores([s[key] for s in scored]) for key in keys} if scored else {}
    generations = [
        {
            "index": i,
            "prompt": item.messages,
            "reference": item.reference,
            "where": item.where,
            "outputs": answers,
            "diff": {key: [list(op) for op in word_diff(answers[BASE], answers[key])] for key in keys[1:]},
            "scores": scores[i],
        }
        for i, (item, answers) in enumerate(zip(prompt_items, outputs, strict=True))
    ]
    return EvaluationReport.model_validate(
        {
            "name": spec.name,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "job": str(layout.root),
            "spec": spec.to_dict(),
            "versions": library_versions(),
            "precision": comparison.precision.describe(),
            "device": comparison.precision.device,
            "base": {"label": base_label, "path": str(base_path), "fingerprint": base_fingerprint},
            "models": [
                {"key": BASE, "label": "base", "path": str(base_path)},
                *(
                    {
                        "key": a.key,
                        "label": a.label,
                        "path": str(a.info.path),
                        "trained_steps": a.record.get("steps"),
                        "training_metrics": a.record.get("metrics"),
                    }
                    for a in adapters
                ),
            ],
            "data": {
                "source": held.source,
                "content_hash": held.content_hash,
                "available": held.available,
                "examples": len(items),
                "skipped": len(held.examples) - len(items),
                "tokens": sum(item.loss_tokens for item in items),
                "max_length": held.max_length,
                "loss_on": held.loss_on,
            },
            "losses": {key: {"loss": m["loss"], "perplexity": _finite(m["perplexity"])} for key, m in losses.items()},
            "training_loss": {
                "value": (adapters[0].record.get("metrics") or {}).get("eval_loss"),
                "differences": loss_differences(
                    training_spec=adapters[0].record.get("spec"),
                    named_data=spec.data is not None,
                    source=held.source,
                    examples=len(held.examples),
                    available=held.available,
                    tokens=sum(item.loss_tokens for item in items),
                    precision=comparison.precision.describe(),
                ),
            },
            "deltas": deltas,
            "examples": per_example,
            "worse": {a.key: _ranked(per_example, a.key, worse=True) for a in adapters},
            "better": {a.key: _ranked(per_example, a.key, worse=False) for a in adapters},
            "prompts_source": prompts_source,
            "decoding": decoding.settings(),
            "generations": generations,
            "task": task,
            "refusal": refusal_rates,
            "refusal_answers": refusal_answers,
            **_tool_call_check(prompt_items, outputs, keys),
            "suites": suites or {},
            "warnings": warnings,
            "duration_s": round(duration, 3),
        }
    )


def _tool_call_check(prompt_items: list[PromptItem], outputs: list[dict[str, str]], keys: list[str]) -> dict[str, Any]:
    """The report's ``tool_calls`` rates and ``tool_call_answers`` over the prompts that carry tools."""
    with_tools = [(i, item) for i, item in enumerate(prompt_items) if item.tools]
    if not with_tools:
        return {}
    checked = {key: [check_calls(outputs[i][key], item.tools or []) for i, item in with_tools] for key in keys}
    expected = [bool(item.reference_calls) for _, item in with_tools]
    return {
        "tool_calls": {key: tool_call_rates(expected, checked[key]) for key in keys},
        "tool_call_answers": [
            {
                "index": i,
                "where": item.where,
                "expected": bool(item.reference_calls),
                "reference_calls": item.reference_calls or [],
                "calls": {key: [asdict(call) for call in checked[key][row]] for key in keys},
            }
            for row, (i, item) in enumerate(with_tools)
        ],
    }


def _example_prompt(item: TokenizedExample) -> str:
    example = item.example
    if example.text is not None:
        return example.text[:100] + ("…" if len(example.text) > 100 else "")
    return prompt_text(example.messages, 100)


def _ranked(per_example: list[dict[str, Any]], key: str, *, worse: bool) -> list[dict[str, Any]]:
    """The examples whose loss rose (or fell) most against the base, at most ten."""
    rows = [
        {
            "index": e["index"],
            "where": e["where"],
            "prompt": e["prompt"],
            "tokens": e["tokens"],
            "base": e["losses"][BASE],
            "loss": e["losses"][key],
            "delta": e["losses"][key] - e["losses"][BASE],
        }
        for e in per_example
    ]
    rows = [r for r in rows if (r["delta"] > 0 if worse else r["delta"] < 0)]
    rows.sort(key=lambda r: r["delta"], reverse=worse)
    return rows[:_LISTED_EXAMPLES]


def update_records(report: EvaluationReport, adapters: list[EvaluatedAdapter], report_json: Path, warn: Any) -> None:
    """A summary of this evaluation in each adapter's record; a warning where that cannot be written."""
    losses = report.losses
    for adapter in adapters:
        if adapter.info.record is None:
            warn(
                "no_adapter_record",
                f"{adapter.label} has no LoRA Studio record ({adapter.info.path}); its results are in this "
                "job's report only",
            )
            continue
        others = [a for a in adapters if a is not adapter]
        own, base = losses.get(adapter.key), losses.get(BASE)
        summary = {
            "created_at": report.created_at,
            "job_id": Path(report.job).name,
            "job": report.job,
            "report": str(report_json),
            "name": report.name,
            "base": {"label": report.base.label, "fingerprint": report.base.fingerprint},
            "data": report.data.model_dump(include={"source", "content_hash", "examples", "tokens"}),
            "loss": own.loss if own else None,
            "perplexity": own.perplexity if own else None,
            "base_loss": base.loss if base else None,
            "base_perplexity": base.perplexity if base else None,
            "loss_delta": own.loss - base.loss if own and base else None,
            "compared_with": [
                {
                    "label": other.label,
                    "path": str(other.info.path),
                    "loss": measured.loss if (measured := losses.get(other.key)) else None,
                    "perplexity": measured.perplexity if measured else None,
                }
                for other in others
            ],
            "prompts": len(report.generations),
            "answers_changed": sum(g.changed(adapter.key) for g in report.generations),
            "task": report.task.get(adapter.key),
            "base_task": report.task.get(BASE),
            "task_score": (report.task.get(adapter.key) or {}).get("primary"),
            "base_task_score": (report.task.get(BASE) or {}).get("primary"),
            "refusal_rate": (report.refusal.get(adapter.key) or {}).get("refusal_rate"),
            "base_refusal_rate": (report.refusal.get(BASE) or {}).get("refusal_rate"),
            "over_refusal_rate": (report.refusal.get(adapter.key) or {}).get("over_refusal_rate"),
            "tool_calls": report.tool_calls.get(adapter.key),
            "base_tool_calls": report.tool_calls.get(BASE),
            "suites": {
                name: {
                    "pass_rate": run.results[adapter.key]["pass_rate"],
                    "base_pass_rate": run.results[BASE]["pass_rate"],
                    "passed": run.results[adapter.key]["passed"],
                    "prompts": run.prompts,
                }
                for name, run in report.suites.items()
            },
            "decoding": report.decoding,
            "precision": report.precision,
        }
        try:
            record_evaluation(adapter.info.path, summary)
        except (OSError, ValueError) as exc:
            warn("record_not_updated", f"could not add the results to {adapter.label}'s record: {exc}")
        _record_in_registry(adapter, summary, warn)


def _record_in_registry(adapter: EvaluatedAdapter, summary: dict[str, Any], warn: Any) -> None:
    """The registry versions registered from this folder get the summary too (their gates read it)."""
    from backend.registry.registry import Registry

    try:
        versions = Registry().registered_from(adapter.info.path)
    except (OSError, sqlite3.Error) as exc:
        warn("record_not_updated", f"could not look up {adapter.label} in the adapter registry: {exc}")
        return
    for version in versions:
        if Path(version.folder).resolve() == adapter.info.path.resolve():
            continue  # the version itself was evaluated: its record already has the summary
        try:
            record_evaluation(Path(version.folder), summary)
        except (OSError, ValueError) as exc:
            warn("record_not_updated", f"could not add the results to {version.label} in the registry: {exc}")
