"""The README.md written next to a merged model: what it is, where it came from, how it did.

Hub-style YAML front matter lets the Hub and LM Studio show the base model and tags;
the body is for people. Everything comes from the adapter's LoRA Studio record, so a
card never claims more than the training job recorded.
"""

from __future__ import annotations

import json
from typing import Any

from backend.export.adapter import AdapterInfo
from backend.export.logits import LogitCheck

_HYPERPARAMETERS = (
    ("training", ("learning_rate", "epochs", "max_steps", "micro_batch_size", "gradient_accumulation_steps",
                  "max_seq_length", "lr_scheduler", "warmup_ratio", "optimizer", "weight_decay", "seed")),
    ("lora", ("r", "alpha", "dropout", "target_modules", "use_rslora", "use_dora")),
    ("quantization", ("mode",)),
)  # fmt: skip


def model_card(name: str, adapter: AdapterInfo, base_name: str, dtype: str, checks: list[LogitCheck]) -> str:
    """Markdown with front matter for a merged model."""
    record = adapter.record or {}
    base = adapter.recorded_base
    lines = [
        "---",
        f"base_model: {json.dumps(base.get('ref') or base_name)}",
        "library_name: transformers",
        "tags: [lora-studio, lora, merged]",
        "---",
        "",
        f"# {name}",
        "",
        f"{base_name} with the LoRA adapter `{adapter.path.name}` merged into its weights "
        f"(stored as {dtype}) by LoRA Studio.",
        "",
        "## Base model",
        "",
        f"- Model: {base.get('ref') or base_name}",
        f"- Fingerprint (sha256 of config and weights): `{base.get('fingerprint', 'not recorded')}`",
        "",
    ]
    dataset = record.get("dataset") or {}
    if dataset:
        lines += [
            "## Training data",
            "",
            f"- File: `{dataset.get('path')}`"
            + (f", held-out: `{dataset['eval_path']}`" if dataset.get("eval_path") else ""),
            f"- Content hash (sha256): `{dataset.get('content_hash')}`",
            "",
        ]
    lines += _hyperparameters(record, adapter.config)
    lines += _results(record)
    if checks:
        lines += ["## Verification", ""] + [f"- {check.describe()}" for check in checks] + [""]
    versions = record.get("versions") or {}
    if versions:
        lines += ["## Software", "", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), ""]
    return "\n".join(lines)


def _hyperparameters(record: dict[str, Any], config: dict[str, Any]) -> list[str]:
    spec = record.get("spec") or {}
    rows = [
        (f"{section}.{key}", spec[section][key])
        for section, keys in _HYPERPARAMETERS
        for key in keys
        if key in (spec.get(section) or {})
    ]
    if not rows:  # an adapter trained elsewhere: what its PEFT config says
        rows = [(key, config[key]) for key in ("r", "lora_alpha", "lora_dropout", "target_modules") if key in config]
    if record.get("steps") is not None:
        rows.append(("optimizer steps", record["steps"]))
    return (
        ["## Hyperparameters", "", "| setting | value |", "|---|---|"]
        + [f"| {key} | {_value(value)} |" for key, value in rows]
        + [""]
    )


def _results(record: dict[str, Any]) -> list[str]:
    """Training metrics, and the evaluation report when the adapter's record holds one."""
    lines: list[str] = []
    metrics = record.get("metrics") or {}
    if metrics:
        lines += ["## Training metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {_value(value)} |" for key, value in sorted(metrics.items())] + [""]
    evaluation = record.get("evaluation")
    if isinstance(evaluation, dict) and evaluation:
        lines += _evaluation(evaluation, len(record.get("evaluations") or []))
    return lines


def _evaluation(evaluation: dict[str, Any], runs: int) -> list[str]:
    """The latest evaluation job's results (backend/evaluation, docs/evaluation.md): base against adapter."""
    if "loss" not in evaluation and "base_loss" not in evaluation:  # not written by LoRA Studio's evaluate job
        return ["## Evaluation", "", "```json", json.dumps(evaluation, indent=2, default=str)[:20_000], "```", ""]
    data = evaluation.get("data") or {}
    lines = [
        "## Evaluation",
        "",
        f"Held-out data: {data.get('source', 'not recorded')} ({data.get('examples', '?')} examples, "
        f"{data.get('tokens', '?')} reply tokens); loss is the mean over the reply tokens, perplexity its exp.",
        "",
    ]
    if evaluation.get("loss") is not None:
        rows = [("base model", evaluation.get("base_loss"), evaluation.get("base_perplexity"))]
        rows.append(("this model", evaluation.get("loss"), evaluation.get("perplexity")))
        rows += [
            (f"compared with {other.get('label')}", other.get("loss"), other.get("perplexity"))
            for other in evaluation.get("compared_with") or []
        ]
        lines += ["| model | held-out loss | perplexity |", "|---|---:|---:|"]
        lines += [f"| {name} | {_number(loss)} | {_number(ppl)} |" for name, loss, ppl in rows]
        lines.append("")
    if evaluation.get("prompts"):
        lines.append(
            f"Answers to {evaluation['prompts']} prompts ({evaluation.get('answers_changed', '?')} differ from the "
            f"base's) are in the evaluation report `{evaluation.get('report')}`."
        )
        lines.append("")
    lines.append(
        f"Evaluated {evaluation.get('created_at', '')} ({evaluation.get('precision', '')})"
        + (f"; {runs} evaluations are kept in the adapter's record." if runs > 1 else ".")
    )
    return [*lines, ""]


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "–"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
