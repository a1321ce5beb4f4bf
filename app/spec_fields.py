"""The fields of the training form: which spec settings it shows, in which sections, and their words.

``FieldDef`` names one setting by its dotted spec path with its label and editor kind;
``MAIN_SECTIONS`` are always shown, ``ADVANCED_SECTIONS`` behind "Advanced". The help, defaults
and choices come from ``JobSpec`` itself (``spec_field``), numbers are written and read as a
person types them, and ``errors_by_field`` puts each validation problem under the field it names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel

from backend.core.spec import JobSpec

Kind = Literal["int", "optional_int", "float", "optional_float", "bool", "choice", "text", "targets", "names", "path"]

INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class FieldDef:
    path: str
    label: str
    kind: Kind
    empty: str = ""
    """What an empty optional field means, shown in the empty editor (e.g. "count epochs")."""
    choices: dict[str, str] | None = None
    """Shown text by value, for choices whose values are spec words; others show the value."""
    pick: Literal["file", "folder"] = "folder"


MAIN_SECTIONS: tuple[tuple[str, tuple[FieldDef, ...]], ...] = (
    (
        "Adapter",
        (
            FieldDef(
                "quantization.mode",
                "Base model format",
                "choice",
                choices={
                    "nf4": "4-bit NF4 (QLoRA)",
                    "fp4": "4-bit FP4",
                    "int8": "8-bit",
                    "none": "16-bit, no compression (plain LoRA)",
                },
            ),
            FieldDef("lora.r", "Rank (r)", "int"),
            FieldDef(
                "lora.target_modules",
                "Layers to adapt",
                "targets",
                choices={
                    "all_linear": "Every linear layer",
                    "attention_mlp": "Attention and MLP",
                    "attention": "Attention only",
                },
            ),
        ),
    ),
    (
        "Training",
        (
            FieldDef(
                "training.objective",
                "Objective",
                "choice",
                choices={
                    "sft": "Learn the answers (SFT)",
                    "dpo": "Prefer chosen answers (DPO)",
                    "orpo": "Learn and prefer chosen answers (ORPO)",
                    "simpo": "Prefer chosen answers, no reference (SimPO)",
                    "kto": "Desirable vs undesirable answers (KTO)",
                },
            ),
            FieldDef("training.epochs", "Epochs", "float"),
            FieldDef("training.max_steps", "Max steps", "optional_int", empty="none: count epochs"),
            FieldDef("training.learning_rate", "Learning rate", "float"),
            FieldDef("training.micro_batch_size", "Micro-batch size", "int"),
            FieldDef("training.gradient_accumulation_steps", "Gradient accumulation", "int"),
            FieldDef("training.max_seq_length", "Max length (tokens)", "int"),
            FieldDef("training.gradient_checkpointing", "Gradient checkpointing", "bool"),
            FieldDef(
                "training.optimizer",
                "Optimizer",
                "choice",
                choices={
                    "adamw_torch": "AdamW",
                    "adamw_8bit": "AdamW, 8-bit",
                    "paged_adamw_8bit": "AdamW, 8-bit, paged",
                    "paged_adamw_32bit": "AdamW, 32-bit, paged",
                    "adafactor": "Adafactor",
                    "sgd": "SGD",
                },
            ),
            FieldDef("name", "Job name", "text"),
        ),
    ),
)

ADVANCED_SECTIONS: tuple[tuple[str, tuple[FieldDef, ...]], ...] = (
    (
        "Adapter",
        (
            FieldDef("lora.alpha", "Alpha", "optional_float", empty="twice the rank"),
            FieldDef("lora.dropout", "Dropout", "float"),
            FieldDef("lora.use_rslora", "Rank-stabilised scaling (rsLoRA)", "bool"),
            FieldDef("lora.use_dora", "DoRA", "bool"),
            FieldDef("lora.modules_to_save", "Layers trained in full", "names", empty="none"),
            FieldDef("quantization.double_quant", "Double quantization", "bool"),
            FieldDef("quantization.compute_dtype", "Compute format", "choice"),
        ),
    ),
    (
        "Schedule",
        (
            FieldDef("training.lr_scheduler", "Learning-rate schedule", "choice"),
            FieldDef("training.warmup_ratio", "Warm-up share", "float"),
            FieldDef("training.packing", "Packing", "bool"),
            FieldDef("training.weight_decay", "Weight decay", "float"),
            FieldDef("training.max_grad_norm", "Gradient clipping", "float"),
            FieldDef("training.precision", "Training precision", "choice"),
            FieldDef("training.seed", "Seed", "int"),
        ),
    ),
    (
        "Held-out data",
        (
            FieldDef("data.eval_path", "Evaluation data", "path", empty="a share of the training data", pick="file"),
            FieldDef("data.eval_split", "Held-out share", "float"),
            FieldDef("data.split_seed", "Split seed", "int"),
            FieldDef(
                "data.loss_on",
                "Learn from",
                "choice",
                choices={"assistant": "The assistant's replies", "all": "Every token"},
            ),
            FieldDef("data.dedupe", "Drop exact duplicates", "bool"),
            FieldDef("data.chunk_chars", "Text piece length", "int"),
        ),
    ),
    (
        "Preference training",
        (
            FieldDef("preference.beta", "Beta", "float"),
            FieldDef("preference.loss_type", "DPO loss", "choice"),
            FieldDef("preference.label_smoothing", "Label smoothing (DPO)", "float"),
            FieldDef("preference.simpo_gamma", "Target margin (SimPO)", "float"),
            FieldDef("preference.kto_loss_type", "KTO loss", "choice"),
            FieldDef("preference.desirable_weight", "Desirable weight (KTO)", "float"),
            FieldDef("preference.undesirable_weight", "Undesirable weight (KTO)", "float"),
            FieldDef("continue_from", "Continue from adapter", "path", empty="a fresh adapter"),
        ),
    ),
    (
        "Checkpoints and output",
        (
            FieldDef("schedule.eval_every_steps", "Evaluate every (steps)", "optional_int", empty="about ten times"),
            FieldDef("schedule.save_every_steps", "Checkpoint every (steps)", "int"),
            FieldDef("schedule.keep_checkpoints", "Checkpoints kept", "int"),
            FieldDef("schedule.log_every_steps", "Log every (steps)", "int"),
            FieldDef("output_dir", "Adapter folder", "path", empty="the job's own folder"),
        ),
    ),
)

ALL_FIELDS: tuple[FieldDef, ...] = tuple(
    field for _, fields in (*MAIN_SECTIONS, *ADVANCED_SECTIONS) for field in fields
)


LABELS: dict[str, str] = {
    **{field.path: field.label for field in ALL_FIELDS},
    "base_model": "Base model",
    "data.path": "Dataset",
    "data.sheet": "Sheet",
}
"""The words the window shows for each spec setting: its messages name these, the command line the dotted keys."""

_KEYS = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(path) for path in sorted(LABELS, key=len, reverse=True)) + r")(?![\w])"
)


def in_words(message: str) -> str:
    """``message`` (a spec error, a check, advice) with each spec key the form shows replaced by its label:
    "training.learning_rate must be a number" becomes "Learning rate must be a number", and "raise
    data.eval_split" becomes "raise “Held-out share”"."""

    def label(match: re.Match[str]) -> str:
        words = LABELS[match.group(1)]
        return words if match.start() == 0 else f"“{words}”"

    return _KEYS.sub(label, message)


def spec_field(path: str) -> Any:
    """The pydantic ``FieldInfo`` of a dotted path in ``JobSpec``."""
    model: type[BaseModel] = JobSpec
    *sections, name = path.split(".")
    for section in sections:
        annotation = model.model_fields[section].annotation
        model = next(a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel))
    return model.model_fields[name]


def description(path: str) -> str:
    return spec_field(path).description or ""


def default_values() -> dict[str, Any]:
    """The spec's defaults for every field of the form, by dotted path."""
    values = {}
    for field in ALL_FIELDS:
        info = spec_field(field.path)
        values[field.path] = info.get_default(call_default_factory=True)
    return values


def literal_values(path: str) -> list[str]:
    """The words a ``Literal`` field of the spec accepts."""
    annotation = spec_field(path).annotation
    return [str(value) for value in get_args(annotation)]


def format_number(value: float | int) -> str:
    """A number as a person writes it: 2e-4 for a learning rate, 0.05 for a share, 3 for epochs."""
    if isinstance(value, int):
        return str(value)
    if value and abs(value) < 0.001:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:g}"


def parse_number(text: str) -> int | float | str:
    """A typed number, or the text itself so the spec's validation says what is wrong with it."""
    cleaned = text.strip()
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")  # a decimal comma
    for convert in (int, float):
        try:
            return convert(cleaned)
        except ValueError:
            continue
    return text.strip()


def errors_by_field(problems: Iterable[str], paths: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Each SpecError line under the field it starts with (the longest dotted path that matches;
    ``data.columns.instruction is required`` belongs to ``data.columns`` when that is the deepest field shown).

    Returns the messages by path (several joined by newlines) and the lines no field claims.
    """
    known = sorted(paths, key=len, reverse=True)
    placed: dict[str, list[str]] = {}
    rest: list[str] = []
    for problem in problems:
        owner = next((p for p in known if problem.startswith(p) and problem[len(p) : len(p) + 1] in " :;."), None)
        if owner is None:
            rest.append(problem)
        else:
            placed.setdefault(owner, []).append(problem)
    return {path: "\n".join(lines) for path, lines in placed.items()}, rest
