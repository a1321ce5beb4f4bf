"""Preference training: DPO, ORPO, SimPO and KTO with QLoRA/LoRA, on the same worker and in the same job as SFT.

trl's own trainers run the loop: DPOTrainer and KTOTrainer, ORPOTrainer and CPOTrainer (SimPO is CPO with the
``simpo`` loss) from ``trl.experimental``. Their training arguments are the SFT job's own (``sft._sft_config``),
copied field by field, so batch, schedule, precision, seeds, logging and checkpoints cannot drift from an SFT
job's; only the method's settings (``preference:`` in the spec) are added. The same callback turns the loop
into events (with the methods' rewards, margins and accuracies as metrics) and marks each checkpoint, and
the same resume guards (``training.resume``) keep a resumed run's weights in the dtypes and layout they
trained in, so cancel, resume and the queue treat these jobs exactly like SFT.

The reference model of DPO and KTO is never a second copy of the base: with a fresh adapter trl computes it
with the adapter disabled (the base as it is), and when the job continues an adapter (``continue_from``) trl
keeps a frozen copy of that adapter's weights (adapter-sized) beside the one being trained. ORPO and SimPO
have no reference model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from backend.core.events import EventSink, Warn
from backend.core.layout import ADAPTER_RECORD, JobLayout
from backend.core.result import JobResult
from backend.core.spec import JobSpec
from backend.core.stop import StopRequest
from backend.data.preference_rows import Record, counts, flatten, load_preference_split
from backend.data.problems import DataError
from backend.models.fingerprint import fingerprint
from backend.models.runtime import Runtime
from backend.training.progress import EventCallback
from backend.training.resume import keep_4bit_layout, keeping_dtypes_on_resume
from backend.training.sft import (
    Prepared,
    _lora_config,
    _resume_checkpoint,
    _sft_config,
    _steps_hint,
    base_model_path,
    train_and_save,
)
from backend.training.targets import resolve_targets

_REFERENCE_ADAPTER = "ref"  # the name trl gives the frozen copy of a continued adapter


def run_preference(
    spec: JobSpec, layout: JobLayout, sink: EventSink, stop: StopRequest, resume: bool, runtime: Runtime
) -> JobResult:
    """Train the adapter with the spec's preference objective; returns how it ended."""
    resume_from = _resume_checkpoint(layout, sink) if resume else None  # before loading: a refusal comes at once
    model_path = base_model_path(spec, sink)
    if spec.continue_from:
        _check_continued(Path(spec.continue_from), model_path)
    train, held, content_hash = load_preference_data(spec, sink)
    stop.raise_if_set()

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    sink.log(f"loading {model_path.name} ({runtime.describe()})")
    model = AutoModelForCausalLM.from_pretrained(model_path, **runtime.model_kwargs())
    keep_4bit_layout(model)
    peft_config = None
    if spec.continue_from:
        from peft import PeftModel

        sink.log(f"continuing the adapter {spec.continue_from}")
        model = PeftModel.from_pretrained(model, spec.continue_from, is_trainable=True)
        targets: list[str] = sorted(model.peft_config["default"].target_modules or [])
    else:
        targets = resolve_targets(model, spec.lora.target_modules)
        sink.log(f"LoRA targets: {', '.join(targets)}")
        peft_config = _lora_config(spec, targets)
    stop.raise_if_set()

    train_rows = flatten(train)
    if spec.training.objective == "kto":  # KTO reads its batches in order (each answer's KL partner is its neighbour)
        import random

        random.Random(spec.training.seed).shuffle(train_rows)  # noqa: S311 - a reproducible order, not a secret
    train_ds = Dataset.from_list(train_rows)
    eval_ds = Dataset.from_list(flatten(held)) if held else None
    prepared = Prepared(model_path, tokenizer, model, targets, train_ds, eval_ds, content_hash)

    callback = EventCallback(sink, stop)
    trainer = _trainer(spec, layout, runtime, prepared, peft_config, [callback])

    def drop_reference() -> None:
        if _REFERENCE_ADAPTER in getattr(trainer.model, "peft_config", {}):
            trainer.model.delete_adapter(_REFERENCE_ADAPTER)  # the frozen copy is no part of the result

    return train_and_save(
        trainer, callback, spec, layout, prepared, runtime, sink, resume, resume_from, before_save=drop_reference
    )


def _check_continued(adapter: Path, model_path: Path) -> None:
    """The adapter to continue must be one, and trained on this base (when its record says which)."""
    if not (adapter / "adapter_config.json").is_file():
        raise DataError(
            f"continue_from: {adapter} is not an adapter folder (it has no adapter_config.json); give the adapter "
            "folder of a finished job"
        )
    record = adapter / ADAPTER_RECORD
    if record.is_file():
        trained_on = json.loads(record.read_text(encoding="utf-8")).get("base_model", {}).get("fingerprint")
        if trained_on and trained_on != fingerprint(model_path):
            raise DataError(
                f"continue_from: {adapter} was trained on another base model than {model_path.name}; set base_model "
                "to the model the adapter was trained on"
            )


def load_preference_data(spec: JobSpec, sink: EventSink) -> tuple[list[Record], list[Record], str]:
    """Train and held-out records, split as SFT data is, and their hash; every row left out becomes a warning."""
    objective = spec.training.objective
    train, held, content_hash = load_preference_split(spec.data, objective, sink)
    what = "answers" if objective == "kto" else "pairs"
    sink.log(f"dataset: {len(flatten(train))} training and {len(flatten(held))} held-out {what}")
    if objective == "kto":
        _balance(spec, train, sink)
    return train, held, content_hash


def _balance(spec: JobSpec, train: list[Record], sink: EventSink) -> None:
    """KTO's advice: desirable x weight should be within 1 to 4/3 of undesirable x weight."""
    desirable, undesirable = counts(train)
    sink.log(f"KTO answers: {desirable} desirable, {undesirable} undesirable")
    p = spec.preference
    if not desirable or not undesirable:
        which = "desirable" if not desirable else "undesirable"
        sink.emit(
            Warn(
                code="kto_one_sided",
                message=f"no training answer is labelled {which}; KTO learns from both kinds, add some",
            )
        )
        return
    ratio = (desirable * p.desirable_weight) / (undesirable * p.undesirable_weight)
    if not 1.0 <= ratio <= 4 / 3:
        suggested = round(undesirable * p.undesirable_weight / desirable, 2)
        sink.emit(
            Warn(
                code="kto_unbalanced",
                message=f"{desirable} desirable and {undesirable} undesirable answers with weights "
                f"{p.desirable_weight:g} and {p.undesirable_weight:g}: KTO works best when desirable x weight is 1 "
                f"to 4/3 times undesirable x weight; try preference.desirable_weight: {max(suggested, 0.01):g}",
            )
        )


def _trainer(
    spec: JobSpec, layout: JobLayout, runtime: Runtime, prepared: Prepared, peft_config: Any, callbacks: list[Any]
) -> Any:
    """trl's trainer for the objective, with SFT's training arguments and the method's own settings."""
    objective, p = spec.training.objective, spec.preference
    has_eval = prepared.eval_ds is not None
    base = _sft_config(spec, layout, runtime, _steps_hint(spec, len(prepared.train_ds)), has_eval, True)
    common: dict[str, Any] = {"beta": p.beta, "max_length": spec.training.max_seq_length}
    trainer_class: Any
    if objective == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = _config(DPOConfig, base, common | {"loss_type": [p.loss_type], "label_smoothing": p.label_smoothing})
        trainer_class = DPOTrainer
    elif objective == "kto":
        from trl import KTOConfig, KTOTrainer

        method: dict[str, Any] = {"loss_type": p.kto_loss_type, "desirable_weight": p.desirable_weight}
        method |= {"undesirable_weight": p.undesirable_weight, "train_sampling_strategy": "sequential"}
        args = _config(KTOConfig, base, common | method)
        trainer_class = KTOTrainer
    elif objective == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        args = _config(ORPOConfig, base, common)
        trainer_class = ORPOTrainer
    else:  # simpo: CPO's SimPO loss without CPO's extra likelihood term, as in the SimPO paper
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        method = {"loss_type": "simpo", "cpo_alpha": 0.0, "simpo_gamma": p.simpo_gamma}
        args = _config(CPOConfig, base, common | method)
        trainer_class = CPOTrainer
    return keeping_dtypes_on_resume(trainer_class)(
        model=prepared.model,
        args=args,
        train_dataset=prepared.train_ds,
        eval_dataset=prepared.eval_ds,
        processing_class=prepared.tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def _config(config_class: Any, base: Any, method: dict[str, Any]) -> Any:
    """``config_class`` with every transformers training argument of ``base`` (SFT's), plus the method's own."""
    from transformers import TrainingArguments

    shared = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    return config_class(**(shared | method))
