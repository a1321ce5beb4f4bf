"""The evaluate job: the base model against its adapter (and optionally a second one), in one report.

1. The adapter's record names its base (or the spec does); a base whose fingerprint
   differs from the one the adapter was trained on is refused.
2. The base is loaded once (``side_by_side.load_comparison``) with every adapter
   attached; the base's numbers come from the same weights with the adapters off.
3. Loss and perplexity on the held-out examples (``heldout.py``): the mean loss over
   reply tokens, weighted by tokens across the set, per model and per example.
4. Answers to the prompts (the held-out data's, or the user's) from every model with
   the same decoding settings.
5. ``report.json``, ``report.md`` and ``report.html`` in the job folder, and a summary
   in each adapter's record (``record.py``), both assembled in ``assemble.py``.
   docs/evaluation.md has the details.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.events import Artifact, EventSink, Metric, Progress, Warn
from backend.core.layout import JobLayout
from backend.core.progress import time_left
from backend.core.spec import JobSpec, SpecError
from backend.core.stop import StopRequest
from backend.core.task_specs import EvaluateSpec
from backend.evaluation.assemble import ADAPTER, COMPARE, EvaluatedAdapter, PromptItem, build_report, update_records
from backend.evaluation.errors import EvaluationError
from backend.evaluation.heldout import HeldOut, TokenizedExample, batch_losses, held_out, tokenize_held_out
from backend.evaluation.refusal import RefusalPrompt, is_refusal, refusal_prompts, refusal_rates
from backend.evaluation.report import perplexity, write_report
from backend.evaluation.side_by_side import BASE, Comparison, Decoding, Precision, load_comparison
from backend.evaluation.suites import Suite, check_suite, read_suite
from backend.export.adapter import ADAPTER_CONFIG, AdapterInfo, read_adapter
from backend.models.errors import ModelError

_PROMPT_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")
_QUANT_NAMES = {"nf4": "4-bit NF4", "fp4": "4-bit FP4", "int8": "8-bit"}
_FIT_MARGIN = 1.25  # 16-bit weights plus activations and the CUDA context must fit in free GPU memory


@dataclass(frozen=True)
class EvaluationOutcome:
    metrics: dict[str, float]
    report_path: Path  # report.json; report.md and report.html lie next to it


class _Steps:
    """Progress events: one step per batch of held-out examples, then one per batch of prompts."""

    def __init__(self, sink: EventSink, stop: StopRequest, total: int) -> None:
        self.sink, self.stop, self.total, self.step = sink, stop, max(total, 1), 0
        self.started = time.monotonic()

    def check(self) -> None:
        self.stop.raise_if_set()

    def advance(self, stage: str) -> None:
        self.step += 1
        elapsed = time.monotonic() - self.started
        eta = time_left(self.total - self.step, self.step, elapsed)
        self.sink.emit(Progress(step=self.step, total_steps=self.total, elapsed_s=elapsed, eta_s=eta, stage=stage))


def run_evaluation(spec: EvaluateSpec, layout: JobLayout, sink: EventSink, stop: StopRequest) -> EvaluationOutcome:
    """Run the evaluation ``spec`` describes; the report goes into ``layout.root``."""
    started = time.monotonic()
    warnings: list[str] = []

    def warn(code: str, message: str) -> None:
        warnings.append(message)
        sink.emit(Warn(code=code, message=message))

    adapters = _adapters(spec)
    main = adapters[0]
    base_path, base_label = _base_path(spec, main, sink)
    base_fingerprint = _check_base(base_path, adapters, warn)
    train_spec = _training_spec(main)
    held = held_out(spec, train_spec, (main.record.get("dataset") or {}).get("content_hash"), main.label)
    for message in held.warnings:
        warn("evaluation_data", message)
    prompts, prompts_source = _prompts(spec, held)
    if not held.examples and not prompts:
        raise EvaluationError(
            "There is nothing to evaluate: no held-out examples and no prompts.",
            hint="Name a held-out dataset (data) or prompts to answer.",
            error_type="data",
        )
    sink.log(f"held-out data: {len(held.examples)} examples from {held.source}; {len(prompts)} prompts")
    stop.raise_if_set()

    model_kwargs, precision = _loading(train_spec, base_path)
    if precision is not None and precision.note:
        warn("quantized_evaluation", f"the base is loaded as {precision.describe()}")
    sink.log(f"loading {base_path.name} with {', '.join(a.label for a in adapters)}")
    comparison = load_comparison(
        base_path,
        {a.key: a.info.path for a in adapters},
        tokenizer_path=_tokenizer_folder(main.info.path, base_path),
        model_kwargs=model_kwargs,
        precision=precision,
    )
    sink.log(f"loaded: {comparison.precision.describe()}")
    items, notes = tokenize_held_out(comparison.tokenizer, held)
    for note in notes:
        warn("evaluation_data", note)

    keys = [BASE, *(a.key for a in adapters)]
    batch = spec.batch_size
    checks = refusal_prompts() if spec.refusal_check else []
    suites = [read_suite(Path(path)) for path in spec.suites]
    batches = [len(items), len(prompts), len(checks), *(len(suite.prompts) for suite in suites)]
    steps = _Steps(sink, stop, sum(math.ceil(count / batch) for count in batches))
    sums = _losses(comparison, items, keys, batch, steps)
    losses = _aggregate(sums, items)
    if losses:
        sink.emit(Metric(step=steps.step, split="eval", values=_flat_losses(losses)))
    accuracy = _preference_accuracy(comparison, held, keys, steps)
    if accuracy:
        sink.emit(Metric(step=steps.step, split="eval", values=accuracy))

    decoding = Decoding(max_new_tokens=spec.max_new_tokens, temperature=spec.temperature, seed=spec.seed)
    outputs = _generations(comparison, prompts, keys, decoding, batch, steps)
    refusal, refusal_answers = _refusal_check(comparison, checks, keys, decoding, batch, steps) if checks else ({}, [])
    suite_runs = {suite.name: _suite_run(comparison, suite, keys, decoding, batch, steps) for suite in suites}

    report = build_report(
        spec=spec,
        layout=layout,
        adapters=adapters,
        base=(base_path, base_label, base_fingerprint),
        comparison=comparison,
        held=held,
        items=items,
        sums=sums,
        losses=losses,
        prompts=(prompts, prompts_source, outputs),
        decoding=decoding,
        warnings=warnings,
        duration=time.monotonic() - started,
        refusal=(refusal, refusal_answers),
        suites=suite_runs,
    )
    files = write_report(layout.root, report)
    for path in (files.json, files.markdown, files.html):
        sink.emit(Artifact(kind="report", path=str(path)))
    update_records(report, adapters, files.json, warn)
    rates = {f"{key}_{name}": value for key, measured in refusal.items() for name, value in measured.items()}
    rates |= {
        f"{key}_tool_{name}": value for key, measured in report.tool_calls.items() for name, value in measured.items()
    }
    metrics = _metrics(losses, len(items), len(prompts)) | accuracy | rates
    return EvaluationOutcome(metrics=metrics, report_path=files.json)


# -- what is evaluated --------------------------------------------------------------------------


def _adapters(spec: EvaluateSpec) -> list[EvaluatedAdapter]:
    main = _read_adapter(spec.adapter)
    if not spec.compare_adapter:
        return [EvaluatedAdapter(ADAPTER, main, _label(main))]
    other = _read_adapter(spec.compare_adapter)
    if other.path == main.path:
        raise EvaluationError(
            f"compare_adapter is the adapter itself ({main.path}).",
            hint="Name a different adapter for the A/B comparison, or leave compare_adapter empty.",
        )
    a, b = _label(main), _label(other)
    if a == b:
        a, b = f"{a} (A)", f"{b} (B)"
    return [EvaluatedAdapter(ADAPTER, main, a), EvaluatedAdapter(COMPARE, other, b)]


def _read_adapter(folder: str) -> AdapterInfo:
    """The adapter folder, or the adapter/ folder of the training job folder given."""
    path = Path(folder).expanduser()
    if not (path / ADAPTER_CONFIG).is_file() and (path / "adapter" / ADAPTER_CONFIG).is_file():
        path = path / "adapter"
    return read_adapter(path)


def _label(info: AdapterInfo) -> str:
    name = (info.record or {}).get("name")
    if isinstance(name, str) and name:
        return name
    return info.path.parent.name if info.path.name == "adapter" else info.path.name


def _base_path(spec: EvaluateSpec, main: EvaluatedAdapter, sink: EventSink) -> tuple[Path, str]:
    """The base folder and the name it goes by: the spec's, else the one the adapter's record names."""
    from backend.core.progress import each_stage_once
    from backend.models.store import resolve_model_path

    recorded = main.info.recorded_base
    named = [spec.base_model] if spec.base_model else [recorded.get("ref"), recorded.get("path")]
    candidates = [c for c in named if c]
    if not candidates:
        raise EvaluationError(
            f"{main.info.path} does not say which base model it was trained on.",
            hint="Name the base model (base_model) it was trained on.",
        )
    problems = []
    for candidate in candidates:
        try:
            path = resolve_model_path(candidate, progress=each_stage_once(lambda s: sink.log(f"base model: {s}")))
        except ModelError as exc:
            problems.append(str(exc))
            continue
        return path, str(candidates[0])
    raise EvaluationError(
        f"The base model cannot be found: {' '.join(problems)}",
        hint="Import the base model the adapter was trained on, or name its folder (base_model).",
    )


def _check_base(base_path: Path, adapters: list[EvaluatedAdapter], warn: Any) -> str:
    """The base's fingerprint; refuse it when an adapter was trained on other weights."""
    from backend.models.fingerprint import fingerprint

    actual = fingerprint(base_path)
    for adapter in adapters:
        expected = adapter.info.recorded_base.get("fingerprint")
        if expected is None:
            warn(
                "unchecked_base",
                f"{adapter.label} has no LoRA Studio record of its base, so it cannot be checked against "
                f"{base_path.name}; make sure it was trained on exactly this base",
            )
        elif expected != actual:
            trained_on = adapter.info.recorded_base.get("ref") or adapter.info.recorded_base.get("path")
            raise EvaluationError(
                f"{adapter.label} was trained on {trained_on or 'another base'} (fingerprint {expected[:12]}), but "
                f"the base given, {base_path}, has fingerprint {actual[:12]}: different weights or config. "
                "Its losses and answers on this base would say nothing about the adapter.",
                hint="Evaluate on the exact base the adapter was trained on (leave base_model empty to use the "
                "recorded one), or train the adapter again on this base.",
            )
    return actual


def _training_spec(adapter: EvaluatedAdapter) -> JobSpec | None:
    """The training job's spec from the adapter's record; None for an adapter trained elsewhere."""
    data = adapter.record.get("spec")
    if not isinstance(data, dict):
        return None
    try:
        return JobSpec.from_dict(data)
    except SpecError:
        return None


def _tokenizer_folder(adapter: Path, base: Path) -> Path:
    """Training saves the tokenizer it used next to the adapter; an adapter trained elsewhere may not."""
    return adapter if (adapter / "tokenizer_config.json").is_file() else base


def _prompts(spec: EvaluateSpec, held: HeldOut) -> tuple[list[PromptItem], str]:
    """The prompts every model answers, and where they came from."""
    if isinstance(spec.prompts, str):
        path = Path(spec.prompts).expanduser()
        if not path.is_file():
            raise EvaluationError(
                f"The prompt file {path} does not exist.",
                hint="prompts takes a list of prompts, or a text file with one prompt per line.",
                error_type="data",
            )
        lines = path.read_text(encoding="utf-8").splitlines()
        texts, source = [line for line in lines if line.strip()], f"{path} (one prompt per line)"
    elif spec.prompts:
        texts, source = [p for p in spec.prompts if p.strip()], "the prompts listed in the spec"
    else:
        items = [item for item in map(_from_example, held.examples) if item is not None]
        cut = f"; the first {spec.max_prompts} of {len(items)}" if len(items) > spec.max_prompts else ""
        return items[: spec.max_prompts], f"the held-out data's prompts{cut}"
    items = [PromptItem([{"role": "user", "content": text}], where=f"prompt {i + 1}") for i, text in enumerate(texts)]
    if len(items) > spec.max_prompts:
        source += f"; the first {spec.max_prompts} of {len(items)}"
    return items[: spec.max_prompts], source


def _from_example(example: Any) -> PromptItem | None:
    """The conversation up to its last reply, and that reply as the reference; None for plain text.

    An example with tools keeps them, its turns' calls and results, and the calls its reply makes.
    """
    messages = example.messages
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or not any(m["role"] == "user" for m in messages[:last]):
        return None
    prompt = [{k: m[k] for k in _PROMPT_KEYS if k in m} for m in messages[:last]]
    tools = json.loads(example.tools) if example.tools else None
    calls = messages[last].get("tool_calls")
    return PromptItem(prompt, messages[last]["content"], example.where(), tools or None, calls or None)


def _loading(train_spec: JobSpec | None, base_path: Path) -> tuple[dict[str, Any] | None, Precision | None]:
    """16-bit (or float32 on a CPU without bf16) unless on a GPU the unquantized base does not fit.

    Then the quantization the adapter was trained with, which the report states.
    """
    import torch

    mode = train_spec.quantization.mode if train_spec else "none"
    if not torch.cuda.is_available() or train_spec is None or mode == "none":
        return None, None
    from backend.models.errors import ModelImportError
    from backend.models.hf_folder import inspect_folder
    from backend.models.runtime import Runtime

    try:
        parameters = inspect_folder(base_path).parameter_count
    except ModelImportError:
        parameters = None
    free, _ = torch.cuda.mem_get_info()
    if parameters is not None and parameters * 2 * _FIT_MARGIN < free:
        return None, None
    runtime = Runtime.detect(train_spec)
    precision = Precision(
        _QUANT_NAMES[mode], runtime.compute_dtype, "cuda", "as the adapter was trained: 16-bit weights do not fit"
    )
    return runtime.model_kwargs(), precision


# -- measuring ----------------------------------------------------------------------------------


def _losses(
    comparison: Comparison, items: list[TokenizedExample], keys: list[str], batch: int, steps: _Steps
) -> dict[str, list[float]]:
    """Summed reply-token loss of every example under every model, a batch at a time."""
    pad = comparison.tokenizer.pad_token_id
    sums: dict[str, list[float]] = {key: [] for key in keys}
    for start in range(0, len(items), batch):
        steps.check()
        chunk = items[start : start + batch]
        for key in keys:
            with comparison.using(key) as model:
                sums[key] += batch_losses(model, chunk, pad)
        steps.advance("held-out loss")
    return sums


def _preference_accuracy(comparison: Comparison, held: HeldOut, keys: list[str], steps: _Steps) -> dict[str, float]:
    """A preference adapter's held-out pairs: how often each model finds the chosen answer likelier."""
    if not held.pairs:
        return {}
    from backend.evaluation.preference import preference_accuracy

    values = {}
    for key in keys:
        steps.check()
        with comparison.using(key) as model:
            values[f"{key}_preference_accuracy"] = preference_accuracy(model, comparison.tokenizer, held.pairs)
    return values


def _aggregate(sums: dict[str, list[float]], items: list[TokenizedExample]) -> dict[str, dict[str, float]]:
    """Loss (mean over every reply token of the set) and perplexity, per model; empty without examples."""
    tokens = sum(item.loss_tokens for item in items)
    if not tokens:
        return {}
    out = {}
    for key, values in sums.items():
        loss = math.fsum(values) / tokens
        out[key] = {"loss": loss, "perplexity": perplexity(loss)}
    return out


def _flat_losses(losses: dict[str, dict[str, float]]) -> dict[str, float]:
    """Losses, perplexities and changes against the base as flat metrics (an infinite perplexity left out)."""
    values = {}
    for key, measured in losses.items():
        values[f"{key}_loss"] = measured["loss"]
        values[f"{key}_perplexity"] = measured["perplexity"]
        if key != BASE:
            values[f"{key}_loss_delta"] = measured["loss"] - losses[BASE]["loss"]
    return {name: value for name, value in values.items() if math.isfinite(value)}


def _metrics(losses: dict[str, dict[str, float]], examples: int, prompts: int) -> dict[str, float]:
    metrics = _flat_losses(losses)
    metrics.update(eval_examples=float(examples), prompts=float(prompts))
    return metrics


def _generations(
    comparison: Comparison,
    prompts: list[PromptItem],
    keys: list[str],
    decoding: Decoding,
    batch: int,
    steps: _Steps,
) -> list[dict[str, str]]:
    """Every model's answer to every prompt, in prompt order."""
    outputs: list[dict[str, str]] = []
    for start in range(0, len(prompts), batch):
        steps.check()
        chunk = [p.messages for p in prompts[start : start + batch]]
        tools = [p.tools for p in prompts[start : start + batch]]
        answers = {key: comparison.generate(chunk, decoding, key, first_index=start, tools=tools) for key in keys}
        outputs += [{key: answers[key][i] for key in keys} for i in range(len(chunk))]
        steps.advance("answers")
    return outputs


def _refusal_check(
    comparison: Comparison,
    checks: list[RefusalPrompt],
    keys: list[str],
    decoding: Decoding,
    batch: int,
    steps: _Steps,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Every model's refusal rates on the refusal-check prompts (``refusal.py``), and the answers."""
    items = [PromptItem([{"role": "user", "content": check.prompt}]) for check in checks]
    answers = _generations(comparison, items, keys, decoding, batch, steps)
    rates = {key: refusal_rates(checks, [a[key] for a in answers]) for key in keys}
    listed = [
        {
            "prompt": c.prompt,
            "should_refuse": c.should_refuse,
            "outputs": a,
            "refused": {k: is_refusal(t) for k, t in a.items()},
        }
        for c, a in zip(checks, answers, strict=True)
    ]
    return rates, listed


def _suite_run(
    comparison: Comparison, suite: Suite, keys: list[str], decoding: Decoding, batch: int, steps: _Steps
) -> dict[str, Any]:
    """Every model's answers to a regression suite, and which passed (``suites.py``)."""
    items = [PromptItem([{"role": "user", "content": item.prompt}]) for item in suite.prompts]
    answers = _generations(comparison, items, keys, decoding, batch, steps)
    return {
        "prompts": [item.prompt for item in suite.prompts],
        "outputs": answers,
        "results": check_suite(suite, answers, BASE),
    }
