"""The job specification: one typed, versioned document per job.

A spec is written by the GUI form or by hand (YAML or JSON), validated before a
job is queued, and copied into the job folder so a run can always be repeated.
Validation errors are phrased for a person ("lora.alpha must be greater than 0;
you wrote -16"), never as a stack trace (``backend.core.spec_errors``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from typing_extensions import Self  # typing.Self is Python 3.11+; pydantic depends on typing_extensions

from backend.core.atomic import write_text_atomic
from backend.core.spec_errors import explain

SCHEMA_VERSION = 1

TargetPreset = Literal["attention", "attention_mlp", "all_linear"]
LossOn = Literal["assistant", "all"]
QuantMode = Literal["nf4", "fp4", "int8", "none"]
Optimizer = Literal[
    "adamw_torch",
    "adamw_8bit",
    "paged_adamw_8bit",
    "paged_adamw_32bit",
    "adafactor",
    "sgd",
]
Scheduler = Literal["cosine", "linear", "constant", "constant_with_warmup", "cosine_with_min_lr"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]
DataFormat = Literal[
    "auto", "messages", "sharegpt", "alpaca", "prompt_completion", "question_answer", "text", "columns"
]
ComputeDtype = Literal["auto", "bfloat16", "float16", "float32"]
Objective = Literal["sft", "dpo", "orpo", "simpo", "kto"]
DpoLoss = Literal[
    "sigmoid", "ipo", "hinge", "robust", "exo_pair", "nca_pair", "bco_pair", "sppo_hard", "apo_zero", "apo_down"
]
KtoLoss = Literal["kto", "apo_zero_unpaired"]
PREFERENCE_OBJECTIVES = ("dpo", "orpo", "simpo", "kto")
"""Objectives that learn from preferences (pairs, or answers labelled desirable) rather than one answer."""
PREFERENCE_LEARNING_RATE = 5e-5
"""Where ``spec new`` starts a preference job: LoRA preference training takes smaller steps than SFT's 2e-4."""

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class SpecError(ValueError):
    """A spec that cannot be run, with one readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Quantization(_Section):
    """How the frozen base weights are stored while the adapter trains."""

    mode: QuantMode = Field(
        "nf4",
        description="How the frozen base model is stored. nf4 (QLoRA) needs about a quarter of the memory "
        "of 16-bit with little quality loss; fp4 is an older 4-bit format; int8 halves memory; none trains "
        "plain LoRA on a 16-bit base: fastest, most memory.",
    )
    double_quant: bool = Field(
        True, description="Also compress the 4-bit scaling constants: saves about 0.4 bits per weight, no quality cost."
    )
    compute_dtype: ComputeDtype = Field(
        "auto",
        description="Number format for the arithmetic on the base weights. auto picks bfloat16 on GPUs that "
        "support it, float16 on older GPUs and float32 on the CPU.",
    )


class Lora(_Section):
    """The adapter's shape: which layers get low-rank updates, and how large."""

    r: PositiveInt = Field(
        16,
        le=1024,
        description="Rank: how much the adapter can learn. 8-16 suits style and format; 32-64 helps with new "
        "knowledge. Higher means a larger adapter and a little more memory.",
    )
    alpha: PositiveFloat | None = Field(
        None, description="Strength of the adapter's update. Leave empty for twice the rank, the usual choice."
    )
    dropout: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="Share of the adapter's inputs randomly dropped while training, against overfitting small "
        "datasets. 0.05 is typical; 0 for large datasets.",
    )
    target_modules: TargetPreset | list[str] = Field(
        "all_linear",
        description="Which layers get an adapter: attention only, attention and MLP, or every linear layer "
        "(best quality, the current default). Or a list of layer names found in the model.",
    )
    use_rslora: bool = Field(
        False, description="Rank-stabilised scaling (alpha divided by the square root of r): steadier at high ranks."
    )
    use_dora: bool = Field(
        False, description="Weight-decomposed LoRA: often a little better quality, but steps are noticeably slower."
    )
    modules_to_save: list[str] = Field(
        default_factory=list,
        description="Layers trained in full and saved with the adapter, e.g. embed_tokens after adding tokens.",
    )

    @field_validator("target_modules")
    @classmethod
    def _names_not_empty(cls, value: TargetPreset | list[str]) -> TargetPreset | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("needs at least one module name, or a preset (attention, attention_mlp, all_linear)")
        return value

    @property
    def effective_alpha(self) -> float:
        return self.alpha if self.alpha is not None else 2.0 * self.r


class Training(_Section):
    """The optimisation schedule."""

    objective: Objective = Field(
        "sft",
        description="What the adapter learns. sft: the answers in the data (supervised fine-tuning). From "
        "preference data: dpo (chosen over rejected answers, against the model as it started), orpo (the chosen "
        "answers plus a preference for them, no reference model), simpo (length-normalised preference, no "
        "reference model), kto (answers labelled desirable or undesirable, paired or not).",
    )
    learning_rate: PositiveFloat = Field(
        2e-4,
        le=1.0,
        description="How big each update is. 2e-4 suits most LoRA runs; lower it if the loss jumps around, "
        "raise it a little for very short runs.",
    )
    lr_scheduler: Scheduler = Field(
        "cosine", description="How the learning rate changes over the run; cosine eases it down to zero."
    )
    warmup_ratio: float = Field(
        0.03, ge=0.0, lt=1.0, description="Share of the run spent ramping the learning rate up from zero."
    )
    epochs: PositiveFloat = Field(
        1.0, le=1000, description="Passes over the training data. 1-3 is typical; more risks memorising it."
    )
    max_steps: PositiveInt | None = Field(
        None, description="Stop after this many optimizer steps instead of counting epochs."
    )
    micro_batch_size: PositiveInt = Field(
        4, le=4096, description="Examples processed at once. The main memory knob: halve it if the job will not fit."
    )
    gradient_accumulation_steps: PositiveInt = Field(
        4,
        le=4096,
        description="Micro-batches added up before each update. Micro-batch x accumulation is the effective "
        "batch; raise this when you lower the micro-batch to keep training the same.",
    )
    max_seq_length: PositiveInt = Field(
        1024,
        ge=16,
        le=1_048_576,
        description="Longest example in tokens; longer ones are cut. Memory grows with it: set it just above "
        "your data's longest examples.",
    )
    packing: bool = Field(
        False, description="Join short examples into full-length sequences: faster on data of many short examples."
    )
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations instead of storing them: much less memory, about 20-30% slower."
    )
    optimizer: Optimizer = Field(
        "adamw_torch",
        description="AdamW is the standard. 8-bit and paged variants save GPU memory on large adapters.",
    )
    weight_decay: float = Field(
        0.0, ge=0.0, le=1.0, description="Pulls adapter weights towards zero; rarely needed with LoRA."
    )
    max_grad_norm: float = Field(
        0.3, ge=0.0, description="Caps the size of each update against loss spikes; 0 turns it off."
    )
    precision: Precision = Field(
        "auto",
        description="Number format for training arithmetic. auto picks bf16 on GPUs that support it, fp16 on "
        "older GPUs and fp32 on the CPU.",
    )
    seed: int = Field(42, ge=0, description="Makes a run repeatable: same seed, data and settings, same result.")

    @property
    def effective_batch_size(self) -> int:
        return self.micro_batch_size * self.gradient_accumulation_steps


class Columns(_Section):
    """Which column of a table holds what, for data in no format LoRA Studio recognises."""

    instruction: str = Field(..., min_length=1, description="The column with what the user asks or instructs.")
    input: str | None = Field(None, description="A column of extra context added below the instruction.")
    response: str = Field(..., min_length=1, description="The column with the answer the model should learn.")
    system: str | None = Field(None, description="A column with a system prompt for each row.")


class Data(_Section):
    """What to train on."""

    path: str = Field(
        ...,
        min_length=1,
        description="The training data: a .jsonl, .json, .csv, .tsv, .parquet or Excel .xlsx file, text in .txt, "
        ".md, Word .docx or .pdf files, a folder of them, a dataset saved with the datasets library, or one imported "
        "with 'lora-studio data import'.",
    )
    eval_path: str | None = Field(
        None, description="Separate held-out data in any of those forms; when empty, a share of the training data."
    )
    eval_split: float = Field(
        0.1, ge=0.0, le=0.5, description="Share of the training file held out to measure progress."
    )
    split_seed: int = Field(42, ge=0, description="Fixes which examples are held out, so runs compare fairly.")
    loss_on: LossOn = Field(
        "assistant",
        description="Learn from the assistant's replies only (the usual choice), or from every token "
        "including the prompts.",
    )
    format: DataFormat = Field(
        "auto",
        description="How the rows are laid out. auto recognises OpenAI messages, ShareGPT conversations, Alpaca "
        "instructions, prompt/completion and question/answer pairs and plain text; choose one when the guess is "
        "wrong, or 'columns' with a column mapping.",
    )
    columns: Columns | None = Field(
        None,
        description="For tables in another layout: which column is the instruction, the response, and "
        "optionally the input and the system prompt, e.g. {instruction: question, response: answer}.",
    )
    dedupe: bool = Field(
        False,
        description="Drop examples that are exact copies of an earlier one (the first is kept). Copies are "
        "always reported; they are over-learned and can leak into the eval split.",
    )
    chunk_chars: int = Field(
        4000,
        ge=200,
        le=1_000_000,
        description="Text files (.txt, .md, .docx, .pdf) are cut into pieces of about this many characters at "
        "paragraph breaks; about 4 characters make a token, so keep it under 4 x max_seq_length.",
    )
    sheet: str | None = Field(
        None,
        min_length=1,
        description="The sheet to read in an Excel workbook, as its tab names it; when empty, the first visible "
        "sheet that has rows.",
    )
    system_prompt: str | None = Field(
        None,
        description="The system prompt of examples that have none. Empty (null): what the model's chat template "
        'does, which for some models (Qwen, SmolLM2) is to add its own default system prompt; "": no system '
        "prompt, where the template allows; text: this system prompt. An example's own system message is kept.",
    )

    @model_validator(mode="after")
    def _mapping_matches_format(self) -> Data:
        if self.format == "columns" and self.columns is None:
            raise ValueError(
                "needs data.columns when data.format is 'columns': which column is the instruction, which the response"
            )
        if self.columns is not None and self.format not in ("auto", "columns"):
            raise ValueError(
                f"has a column mapping (data.columns) but data.format is {self.format!r}; set data.format to "
                "'columns' or remove the mapping"
            )
        return self


class Preference(_Section):
    """The settings of preference training (training.objective dpo, orpo, simpo or kto); sft ignores them."""

    beta: PositiveFloat = Field(
        0.1,
        le=100,
        description="dpo, kto: how far the adapter may move from the reference model; higher = closer to it "
        "(0.1 is usual; for loss_type ipo it is the regularisation). orpo: the weight of the preference term next "
        "to learning the chosen answers. simpo: the reward scale, usually 2 to 2.5.",
    )
    loss_type: DpoLoss = Field(
        "sigmoid",
        description="dpo only: the loss. sigmoid is the original DPO; ipo (IPO) resists overfitting small "
        "datasets; hinge (SLiC); robust for noisy labels (with label_smoothing); exo_pair, nca_pair, bco_pair, "
        "sppo_hard, apo_zero and apo_down as trl provides them.",
    )
    label_smoothing: float = Field(
        0.0,
        ge=0.0,
        lt=0.5,
        description="dpo with loss_type robust or exo_pair: the share of preference labels you think are wrong.",
    )
    simpo_gamma: float = Field(
        0.5, ge=0.0, le=10.0, description="simpo only: the reward margin aimed for between chosen and rejected."
    )
    kto_loss_type: KtoLoss = Field(
        "kto",
        description="kto only: the loss. kto is the original; apo_zero_unpaired needs no reference point from "
        "other answers in the micro-batch.",
    )
    desirable_weight: PositiveFloat = Field(
        1.0,
        le=100,
        description="kto only: weight of the answers labelled desirable. When one kind outnumbers the other, "
        "weight them so desirable x count is within 1 to 4/3 of undesirable x count.",
    )
    undesirable_weight: PositiveFloat = Field(
        1.0, le=100, description="kto only: weight of the answers labelled undesirable."
    )


class Schedule(_Section):
    """When to evaluate, checkpoint and log."""

    eval_every_steps: PositiveInt | None = Field(
        None, description="Measure the held-out loss every this many steps; empty = about ten times per run."
    )
    save_every_steps: PositiveInt = Field(
        50, description="Save a checkpoint every this many steps; a stopped job resumes from the newest."
    )
    keep_checkpoints: PositiveInt = Field(3, le=1000, description="How many recent checkpoints to keep on disk.")
    log_every_steps: PositiveInt = Field(1, description="Report loss and learning rate every this many steps.")


class SpecDocument(_Section):
    """A whole spec file of any job kind: versioned, round-trips through YAML and JSON, explains its errors."""

    schema_version: int = Field(SCHEMA_VERSION, description="The spec format's version; written by LoRA Studio.")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(
                f"was written by a newer LoRA Studio (schema {value}; this one reads up to {SCHEMA_VERSION}); "
                "update LoRA Studio"
            )
        if value < 1:
            raise ValueError("must be 1 or more")
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_yaml(self) -> str:
        text: str = yaml.safe_dump(self.to_dict(), sort_keys=False)
        return text

    def save(self, path: Path) -> None:
        """Write as YAML or JSON by the file's suffix, atomically."""
        text = self.to_json() if path.suffix == ".json" else self.to_yaml()
        write_text_atomic(path, text)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            raise SpecError([f"a spec must be a mapping of settings; this file holds a {type(data).__name__}"])
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(explain(exc, cls)) from None

    @classmethod
    def from_text(cls, text: str, fmt: Literal["yaml", "json"] = "yaml") -> Self:
        return cls.from_dict(parse_text(text, fmt))

    @classmethod
    def load(cls, path: Path) -> Self:
        return cls.from_dict(read_document(path))


def parse_text(text: str, fmt: Literal["yaml", "json"]) -> Any:
    try:
        return json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError([f"the spec is not valid {fmt.upper()}: {exc}"]) from None


def read_document(path: Path) -> Any:
    """The parsed content of a spec file, YAML or JSON by its suffix."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SpecError([f"cannot read the spec {path}: {exc.strerror}"]) from None
    return parse_text(text, "json" if path.suffix == ".json" else "yaml")


class JobSpec(SpecDocument):
    """Everything a training job needs, and nothing machine-specific.

    ``kind: measure`` runs the same configuration for a few steps at the longest
    sequence length to record its true peak memory (see ``backend.estimator.calibration``).
    """

    kind: Literal["train", "measure"] = Field(
        "train",
        description="What the job does: train an adapter, or measure: a few steps at the longest sequence "
        "length to record the real peak GPU memory of this configuration.",
    )
    name: str = Field("adapter", min_length=1, max_length=120, description="A name for the job and its adapter.")
    base_model: str = Field(
        "default",
        min_length=1,
        description="The model to adapt: 'default' (SmolLM2-135M-Instruct), a model imported into the store, "
        "a local Hugging Face folder or a hub id.",
    )
    quantization: Quantization = Field(default_factory=Quantization)
    lora: Lora = Field(default_factory=Lora)
    training: Training = Field(default_factory=Training)
    data: Data
    preference: Preference = Field(default_factory=Preference)
    schedule: Schedule = Field(default_factory=Schedule)
    continue_from: str | None = Field(
        None,
        min_length=1,
        description="Preference objectives: an adapter folder (a finished job's, usually sft) to go on training "
        "instead of a fresh adapter; its own LoRA shape is kept and the lora settings are not used. Empty = a "
        "fresh adapter.",
    )
    output_dir: str | None = Field(
        None, description="Where the finished adapter is written; empty = the job folder's adapter/."
    )

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        if self.lora.use_dora and self.quantization.mode == "int8":
            raise ValueError("lora.use_dora does not work with an 8-bit base; use nf4 or none")
        if self.training.precision == "fp16" and self.quantization.compute_dtype == "bfloat16":
            raise ValueError(
                "training.precision fp16 with quantization.compute_dtype bfloat16 mixes two half formats; "
                "choose bf16 for both or fp16 for both"
            )
        self._preference_consistent()
        return self

    def _preference_consistent(self) -> None:
        objective, t, p = self.training.objective, self.training, self.preference
        if objective == "sft":
            if self.continue_from is not None:
                raise ValueError(
                    "continue_from goes on training an adapter with a preference objective (dpo, orpo, simpo, kto); "
                    "set training.objective, or remove continue_from"
                )
            return
        if self.kind == "measure":
            raise ValueError(
                f"kind measure records the memory of sft jobs only; training.objective {objective} is priced by "
                "the estimator. Use kind train, or objective sft"
            )
        if self.data.format != "auto":
            raise ValueError(
                f"data.format {self.data.format} is a layout for sft; training.objective {objective} recognises its "
                "preference layouts itself. Set data.format to auto"
            )
        if t.packing:
            raise ValueError(
                f"training.packing joins examples into one sequence, which training.objective {objective} cannot "
                "use: it compares whole answers. Set training.packing to false"
            )
        if objective == "kto" and p.kto_loss_type == "kto" and t.micro_batch_size < 2:
            raise ValueError(
                "training.objective kto needs training.micro_batch_size of 2 or more: KTO takes its reference point "
                f"from the other answers in each micro-batch; you wrote {t.micro_batch_size}. Raise it (and lower "
                "gradient_accumulation_steps to keep the effective batch), or set preference.kto_loss_type to "
                "apo_zero_unpaired"
            )
        owners = {"loss_type": "dpo", "label_smoothing": "dpo", "simpo_gamma": "simpo", "kto_loss_type": "kto"}
        owners |= {"desirable_weight": "kto", "undesirable_weight": "kto"}
        defaults = Preference()
        unused = [
            (name, owner)
            for name, owner in owners.items()
            if owner != objective and getattr(p, name) != getattr(defaults, name)
        ]
        if unused:
            name, owner = unused[0]
            raise ValueError(
                f"preference.{name} is used by training.objective {owner} only, and this job's objective is "
                f"{objective}; remove it or change the objective"
            )
