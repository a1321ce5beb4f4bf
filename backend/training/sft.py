"""The training job: QLoRA/LoRA supervised fine-tuning of a causal LM on chat data.

transformers loads (and bitsandbytes quantizes) the base, peft adds the adapter,
trl's SFTTrainer runs the loop. Conversations are tokenized here with the
model's chat template and labels masked to the assistant's replies, so the loss
is right for any template (see chat_tokens.py).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.events import Artifact, EventSink, Warn
from backend.core.folders import replace_folder
from backend.core.layout import ADAPTER_RECORD, JobLayout
from backend.core.progress import each_stage_once
from backend.core.result import JobResult
from backend.core.spec import JobSpec
from backend.core.stop import StopRequest
from backend.data.chat_tokens import IGNORE, RowRefused, TemplateError
from backend.data.examples import Example
from backend.data.load import MAX_LISTED_PROBLEMS, load_training_data
from backend.data.problems import DataError
from backend.data.tokens import tokenize_example
from backend.models.fingerprint import fingerprint
from backend.models.runtime import Runtime
from backend.models.store import resolve_model_path
from backend.training.checkpoints import NoValidCheckpoint, Skipped, pick_checkpoint
from backend.training.progress import EventCallback
from backend.training.resume import keep_4bit_layout, keeping_dtypes_on_resume
from backend.training.targets import resolve_targets

_OPTIMIZERS = {"adamw_8bit": "adamw_bnb_8bit"}


@dataclass(frozen=True)
class Prepared:
    """What a trainer is built from: made the same way for a training run and for a measurement."""

    model_path: Path
    tokenizer: Any
    model: Any
    targets: list[str]
    train_ds: Any
    eval_ds: Any | None
    content_hash: str


def _tokenize(tokenizer: Any, examples: list[Example], spec: JobSpec, split: str, sink: EventSink) -> Any:
    import jinja2
    from datasets import Dataset

    max_len = spec.training.max_seq_length
    ids, labels = [], []
    truncated = cut_tokens = lost = refused = 0
    for example in examples:
        try:
            tokens = tokenize_example(tokenizer, example, spec.data.loss_on)
        except RowRefused as exc:  # what the row says is learned cannot be honoured with this template
            refused += 1
            if refused <= MAX_LISTED_PROBLEMS:
                sink.emit(Warn(code="row_rejected", message=f"{example.where()}: {exc}"))
            continue
        except TemplateError as exc:
            raise DataError(str(exc)) from None
        except jinja2.TemplateError as exc:  # the template refuses this conversation (e.g. a role it lacks)
            refused += 1
            if refused <= MAX_LISTED_PROBLEMS:
                sink.emit(Warn(code="row_rejected", message=f"{example.where()}: the chat template says: {exc}"))
            continue
        if len(tokens.input_ids) > max_len:
            truncated += 1
            cut_tokens += len(tokens.input_ids) - max_len
            if all(label == IGNORE for label in tokens.labels[:max_len]):
                lost += 1
        ids.append(tokens.input_ids)
        labels.append(tokens.labels)
    if truncated and not spec.training.packing:
        sink.emit(
            Warn(
                code="truncated",
                message=f"{truncated} of {len(examples)} {split} examples are longer than "
                f"max_seq_length={max_len}; {cut_tokens} tokens will be cut"
                + (f", and {lost} examples lose their whole reply and are skipped" if lost else "")
                + ". Raise training.max_seq_length to keep them.",
            )
        )
    if refused:
        sink.emit(
            Warn(
                code="rows_rejected",
                message=f"{refused} {split} examples skipped: the model's chat template cannot render them",
            )
        )
    if split == "train" and lost + refused == len(examples):
        raise DataError(
            f"no training example survives: {refused} cannot be rendered by the chat template and {lost} lose "
            f"their whole reply at max_seq_length={max_len}"
        )
    return Dataset.from_dict({"input_ids": ids, "labels": labels})


def _sft_config(
    spec: JobSpec, layout: JobLayout, runtime: Runtime, steps_hint: int, has_eval: bool, save_checkpoints: bool
) -> Any:
    from trl import SFTConfig

    t, s = spec.training, spec.schedule
    eval_every = s.eval_every_steps or max(1, steps_hint // 10)
    return SFTConfig(
        # The trainer creates its output folder even when it saves nothing: no empty checkpoints/ then.
        output_dir=str(layout.checkpoints if save_checkpoints else layout.root),
        per_device_train_batch_size=t.micro_batch_size,
        per_device_eval_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        max_length=t.max_seq_length,
        packing=t.packing,
        activation_checkpointing=t.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if t.gradient_checkpointing else None,
        optim=_OPTIMIZERS.get(t.optimizer, t.optimizer),
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        bf16=runtime.mixed_precision == "bf16",
        fp16=runtime.mixed_precision == "fp16",
        seed=t.seed,
        data_seed=t.seed,
        logging_steps=s.log_every_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_every if has_eval else None,
        save_strategy="steps" if save_checkpoints else "no",
        save_steps=s.save_every_steps,
        save_total_limit=s.keep_checkpoints,
        include_num_input_tokens_seen="non_padding",
        report_to=[],
        disable_tqdm=True,
        use_cpu=runtime.device == "cpu",
        dataloader_pin_memory=runtime.device == "cuda",
        **runtime.trainer_overrides,
    )


def _lora_config(spec: JobSpec, targets: list[str]) -> Any:
    from peft import LoraConfig

    lora = spec.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.effective_alpha,  # type: ignore[arg-type]  # peft annotates int; any number scales alpha/r
        lora_dropout=lora.dropout,
        target_modules=targets,
        use_rslora=lora.use_rslora,
        use_dora=lora.use_dora,
        modules_to_save=lora.modules_to_save or None,
        bias="none",
        task_type="CAUSAL_LM",
    )


def _steps_hint(spec: JobSpec, n_train: int) -> int:
    t = spec.training
    if t.max_steps:
        return t.max_steps
    per_epoch = math.ceil(math.ceil(n_train / t.micro_batch_size) / t.gradient_accumulation_steps)
    return max(1, math.ceil(per_epoch * t.epochs))


def base_model_path(spec: JobSpec, sink: EventSink) -> Path:
    """The base model's folder; ``default`` or a hub id not in the store yet is imported first."""
    return resolve_model_path(spec.base_model, progress=each_stage_once(lambda s: sink.log(f"base model: {s}")))


def prepare(spec: JobSpec, model_path: Path, sink: EventSink, stop: StopRequest, runtime: Runtime) -> Prepared:
    """Read and tokenize the data, load the base and find the LoRA targets; raises Cancelled when asked to stop."""
    train_convs, eval_convs, content_hash = load_training_data(spec.data, sink)
    sink.log(f"dataset: {len(train_convs)} training and {len(eval_convs)} held-out conversations")
    stop.raise_if_set()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_ds = _tokenize(tokenizer, train_convs, spec, "train", sink)
    eval_ds = _tokenize(tokenizer, eval_convs, spec, "eval", sink) if eval_convs else None
    stop.raise_if_set()

    sink.log(f"loading {model_path.name} ({runtime.describe()})")
    model = AutoModelForCausalLM.from_pretrained(model_path, **runtime.model_kwargs())
    keep_4bit_layout(model)
    targets = resolve_targets(model, spec.lora.target_modules)
    sink.log(f"LoRA targets: {', '.join(targets)}")
    stop.raise_if_set()
    return Prepared(model_path, tokenizer, model, targets, train_ds, eval_ds, content_hash)


def build_trainer(
    spec: JobSpec,
    layout: JobLayout,
    runtime: Runtime,
    prepared: Prepared,
    callbacks: list[Any],
    *,
    data_collator: Any = None,
    save_checkpoints: bool = True,
) -> Any:
    """trl's SFTTrainer for ``prepared``; ``data_collator`` replaces trl's (None keeps it)."""
    from trl import SFTTrainer

    has_eval = prepared.eval_ds is not None
    steps_hint = _steps_hint(spec, len(prepared.train_ds))
    return keeping_dtypes_on_resume(SFTTrainer)(
        model=prepared.model,
        args=_sft_config(spec, layout, runtime, steps_hint, has_eval, save_checkpoints),
        train_dataset=prepared.train_ds,
        eval_dataset=prepared.eval_ds,
        processing_class=prepared.tokenizer,
        peft_config=_lora_config(spec, prepared.targets),
        callbacks=callbacks,
        data_collator=data_collator,
    )


def run_sft(
    spec: JobSpec, layout: JobLayout, sink: EventSink, stop: StopRequest, resume: bool, runtime: Runtime
) -> JobResult:
    """Train the adapter the spec describes; returns how it ended."""
    resume_from = _resume_checkpoint(layout, sink) if resume else None  # before loading: a refusal comes at once
    prepared = prepare(spec, base_model_path(spec, sink), sink, stop, runtime)
    callback = EventCallback(sink, stop)
    trainer = build_trainer(spec, layout, runtime, prepared, [callback])
    return train_and_save(trainer, callback, spec, layout, prepared, runtime, sink, resume, resume_from)


def train_and_save(
    trainer: Any,
    callback: EventCallback,
    spec: JobSpec,
    layout: JobLayout,
    prepared: Prepared,
    runtime: Runtime,
    sink: EventSink,
    resume: bool,
    resume_from: Path | None,
    before_save: Callable[[], None] = lambda: None,
) -> JobResult:
    """Run the loop (from ``resume_from`` when given), evaluate at the end, save the adapter: any trl trainer."""
    if resume and resume_from is None:
        sink.emit(Warn(code="no_checkpoint", message="no complete checkpoint to resume from; starting over"))
    if resume_from is not None:
        sink.log(f"resuming from {resume_from.name}")
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)

    step = trainer.state.global_step
    if callback.stopped_early:
        return JobResult(status="cancelled", step=step, metrics=callback.last_train)

    metrics = {f"train_{k}": v for k, v in callback.last_train.items()}
    if prepared.eval_ds is not None:
        if callback.last_eval_step != step:
            trainer.evaluate()
        metrics.update(callback.last_eval)
    before_save()
    adapter = _save_adapter(trainer, spec, layout, prepared, metrics, runtime)
    sink.emit(Artifact(kind="adapter", path=str(adapter), step=step))
    return JobResult(status="succeeded", step=step, metrics=metrics, adapter_path=adapter)


def _resume_checkpoint(layout: JobLayout, sink: EventSink) -> Path | None:
    """The newest valid checkpoint; each damaged newer one is set aside with a warning (NoValidCheckpoint: none)."""
    try:
        picked = pick_checkpoint(layout.checkpoints)
    except NoValidCheckpoint as exc:
        _warn_skipped(exc.skipped, sink)
        raise
    _warn_skipped(picked.skipped, sink)
    return picked.path


def _warn_skipped(skipped: list[Skipped], sink: EventSink) -> None:
    for item in skipped:
        sink.emit(
            Warn(
                code="damaged_checkpoint",
                message=f"skipped the damaged checkpoint {item.path}: {item.reason}; it is kept as {item.kept_at}",
            )
        )


def _save_adapter(
    trainer: Any, spec: JobSpec, layout: JobLayout, prepared: Prepared, metrics: dict[str, float], runtime: Runtime
) -> Path:
    """Write the PEFT adapter and its record to a temporary folder, then rename it into place."""
    final = Path(spec.output_dir) if spec.output_dir else layout.adapter
    tmp = final.with_name(f".{final.name}.partial-{uuid.uuid4().hex[:8]}")
    trainer.model.save_pretrained(tmp)
    prepared.tokenizer.save_pretrained(tmp)
    record = {
        "format": 1,
        "name": spec.name,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base_model": {
            "ref": spec.base_model,
            "path": str(prepared.model_path),
            "fingerprint": fingerprint(prepared.model_path),
        },
        "dataset": {"path": spec.data.path, "eval_path": spec.data.eval_path, "content_hash": prepared.content_hash},
        "spec": spec.to_dict(),
        "metrics": metrics,
        "steps": trainer.state.global_step,
        "versions": runtime.versions,
    }
    (tmp / ADAPTER_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    replace_folder(tmp, final)
    return final
