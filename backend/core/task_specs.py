"""Specs of the jobs that use a finished adapter: evaluate, merge and export.

Each is a small document of the same family as the training spec (``JobSpec``,
whose ``kind`` is ``train`` or ``measure``): versioned, YAML or JSON, errors in a
person's words. ``load_spec`` reads any of them by its ``kind``, which is what the
queue and the worker do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from backend.core.spec import JobSpec, PositiveInt, SpecDocument, SpecError, read_document

GgufType = Literal["f16", "bf16", "q8_0", "q4_k_m", "q5_k_m", "q6_k"]
MergeDtype = Literal["auto", "bfloat16", "float16", "float32"]
LoraType = Literal["f16", "f32"]


class EvaluateSpec(SpecDocument):
    """Base model against the adapter (and optionally a second adapter) on held-out data and prompts."""

    kind: Literal["evaluate"] = Field("evaluate", description="What the job does.")
    name: str = Field("evaluation", min_length=1, max_length=120, description="A name for the job and its report.")
    adapter: str = Field(min_length=1, description="The adapter folder to evaluate (a finished training job's).")
    compare_adapter: str | None = Field(
        None, description="A second adapter folder for an A/B comparison on the same base and prompts."
    )
    base_model: str | None = Field(
        None,
        description="The base model to compare against; empty = the one the adapter was trained on. "
        "A different base is refused when its fingerprint does not match the adapter's.",
    )
    data: str | None = Field(
        None,
        description="A held-out dataset file or folder; empty = the adapter's own evaluation split, "
        "re-made exactly as in training.",
    )
    prompts: list[str] | str | None = Field(
        None,
        description="Prompts to answer side by side: a list, or a text file with one prompt per line "
        "(for example regression prompts that must not get worse); empty = the held-out data's prompts.",
    )
    max_examples: PositiveInt | None = Field(
        200, description="At most this many held-out examples for the loss; empty = all of them."
    )
    max_prompts: PositiveInt = Field(20, le=1000, description="At most this many prompts are answered.")
    max_new_tokens: PositiveInt = Field(128, le=4096, description="The longest answer generated per prompt.")
    temperature: float = Field(
        0.0,
        ge=0,
        le=2,
        description="0 = always the most likely next token (repeatable, the fairest comparison); "
        "higher = more varied answers. Base and adapter always use the same setting.",
    )
    seed: int = Field(0, description="Fixes the random choices when temperature is above 0.")
    batch_size: PositiveInt = Field(4, le=256, description="Examples or prompts processed at once.")
    refusal_check: bool = Field(
        False,
        description="Also ask LoRA Studio's 24 refusal-check prompts (12 an assistant should refuse, 12 harmless "
        "look-alikes) and report how often base and adapter refuse: a fine-tune that erased the base's "
        "refusals shows here.",
    )
    suites: list[str] = Field(
        default_factory=list,
        description="Regression suites to run: YAML files of prompts with the properties their answers must have "
        "(must contain, must not contain, must match, close to the base's answer); see docs/evaluation.md.",
    )


class MergeSpec(SpecDocument):
    """Fold an adapter into a 16- or 32-bit copy of its base: a standalone model."""

    kind: Literal["merge"] = Field("merge", description="What the job does.")
    name: str = Field("merged", min_length=1, max_length=120, description="A name for the job and the model.")
    adapter: str = Field(min_length=1, description="The adapter folder to merge.")
    base_model: str | None = Field(
        None, description="The base to merge into; empty = the one the adapter was trained on."
    )
    dtype: MergeDtype = Field(
        "auto",
        description="Number format of the merged weights; auto keeps the base's own 16-bit format. "
        "Never 4-bit: merging into a quantized base bakes its rounding errors in.",
    )
    verify: bool = Field(
        True, description="Check that the merged model's outputs equal base + adapter on a few prompts."
    )
    output_dir: str | None = Field(None, description="Where the merged model goes; empty = the job folder's merged/.")


class ExportSpec(SpecDocument):
    """Make a model usable elsewhere: GGUF for llama.cpp, Ollama and LM Studio, a GGUF LoRA adapter, or the
    PEFT adapter alone."""

    kind: Literal["export"] = Field("export", description="What the job does.")
    name: str = Field("export", min_length=1, max_length=120, description="A name for the job and the model file.")
    source: str = Field(
        min_length=1,
        description="An adapter folder (merged into its base first) or a merged model folder.",
    )
    target: Literal["gguf", "gguf_lora", "adapter"] = Field(
        "gguf",
        description="gguf: one file for llama.cpp, Ollama and LM Studio; gguf_lora: the adapter alone as a small "
        "GGUF LoRA, applied to the base's own GGUF by llama.cpp (--lora) or Ollama (ADAPTER); adapter: the PEFT "
        "adapter alone, for vLLM or another Hugging Face stack.",
    )
    gguf_type: GgufType = Field(
        "q8_0",
        description="How the GGUF stores weights. f16/bf16: exact, largest; q8_0: near-exact, half the size; "
        "q6_k, q5_k_m, q4_k_m: smaller and faster with a little quality loss (need the gguf-quant extra).",
    )
    lora_type: LoraType = Field(
        "f16",
        description="For target gguf_lora: how the adapter file stores its tensors. f16: half the size, what "
        "llama.cpp's own converter writes; f32: exact.",
    )
    base_model: str | None = Field(
        None,
        description="For an adapter source: the base to merge into (or, for gguf_lora, to check and test the "
        "adapter against); empty = the one it was trained on.",
    )
    merge_dtype: MergeDtype = Field(
        "auto",
        description="For a gguf export of an adapter: the number format of the merged model the GGUF is made from; "
        "auto keeps the base's own 16-bit format.",
    )
    merged_dir: str | None = Field(
        None,
        description="For a gguf export of an adapter: where the merged model is kept, as a result of its own; "
        "empty = a finished merge of the same adapter, base and format is used where it is, else the job folder's "
        "merged/ is made.",
    )
    system: str | None = Field(None, description="A system prompt written into the Ollama Modelfile.")
    publisher: str = Field(
        "lora-studio", min_length=1, description="The publisher folder LM Studio lists the model under."
    )
    verify: bool = Field(
        True,
        description="Read the file back and compare its outputs with the merged model's (gguf_lora: llama.cpp's "
        "base + adapter with transformers', when llama-cpp-python is installed); fail on a mismatch.",
    )
    output_dir: str | None = Field(None, description="Where the export goes; empty = the job folder's export/.")

    @model_validator(mode="after")
    def _consistent(self) -> ExportSpec:
        if self.target == "adapter" and self.base_model is not None:
            raise ValueError("base_model is only used when merging; an adapter export copies the adapter alone")
        if self.target != "gguf" and (self.merged_dir is not None or self.merge_dtype != "auto"):
            raise ValueError("merged_dir and merge_dtype are only used when a gguf export merges an adapter")
        return self


AnySpec = JobSpec | EvaluateSpec | MergeSpec | ExportSpec
SPEC_KINDS: dict[str, type[AnySpec]] = {
    "train": JobSpec,
    "measure": JobSpec,
    "evaluate": EvaluateSpec,
    "merge": MergeSpec,
    "export": ExportSpec,
}


def spec_from_dict(data: Any) -> AnySpec:
    """The spec of whichever kind ``data`` names (``train`` when it names none)."""
    if not isinstance(data, dict):
        raise SpecError([f"a spec must be a mapping of settings; this file holds a {type(data).__name__}"])
    kind = data.get("kind", "train")
    document = SPEC_KINDS.get(kind) if isinstance(kind, str) else None
    if document is None:
        raise SpecError([f"kind must be one of {', '.join(SPEC_KINDS)}; you wrote {kind!r}"])
    return document.from_dict(data)


def load_spec(path: Path) -> AnySpec:
    return spec_from_dict(read_document(path))
