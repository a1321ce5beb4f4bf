"""The settings that move memory, resolved from a JobSpec the way the training path resolves them.

Suggestions change these with ``dataclasses.replace`` and re-estimate, which is far
cheaper than copying and re-validating a pydantic spec on every keystroke.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.core.precision import Device, resolve_precision
from backend.core.spec import JobSpec
from backend.estimator.result import DataStats, GpuMemory
from backend.models.shapes import ModelShapes

Attention = Literal["sdpa", "eager", "flash_attention_2"]


@dataclass(frozen=True)
class Knobs:
    """One job's memory-relevant choices, every "auto" resolved."""

    quant: str  # nf4, fp4, int8, none
    double_quant: bool
    compute_dtype: str  # bfloat16, float16, float32: the dtype the base is loaded in
    mixed_precision: str  # bf16, fp16, no
    lora_r: int
    lora_dropout: float
    use_dora: bool
    targets: str | tuple[str, ...]
    modules_to_save: tuple[str, ...]
    micro_batch: int
    grad_accum: int
    max_len: int
    packing: bool
    checkpointing: bool
    optimizer: str
    attention: Attention
    has_eval: bool
    keep_checkpoints: int
    objective: str = "sft"  # sft, dpo, orpo, simpo, kto: how many sequences an example is, and a reference pass

    @property
    def sequences_per_example(self) -> int:
        """DPO, ORPO and SimPO run chosen and rejected through the model together; SFT and KTO one answer."""
        return 2 if self.objective in ("dpo", "orpo", "simpo") else 1

    @property
    def reference_forward(self) -> bool:
        """DPO and KTO score every batch with the reference (the adapter switched off), without gradients."""
        return self.objective in ("dpo", "kto")

    @property
    def effective_batch(self) -> int:
        return self.micro_batch * self.grad_accum


def resolve(
    spec: JobSpec,
    shapes: ModelShapes,
    gpu: GpuMemory | None,
    attention: Attention | None = None,
) -> Knobs:
    """Resolve ``auto`` as backend.models.runtime.Runtime.detect does on that device (a bf16 GPU when unknown)."""
    q, t, lora = spec.quantization, spec.training, spec.lora
    device: Device = "cuda" if gpu is None else gpu.kind
    bf16 = True if gpu is None else gpu.supports_bf16
    compute, precision = resolve_precision(device, bf16, q.compute_dtype, t.precision)
    targets = lora.target_modules if isinstance(lora.target_modules, str) else tuple(lora.target_modules)
    return Knobs(
        quant=q.mode,
        double_quant=q.double_quant,
        compute_dtype=compute,
        mixed_precision=precision,
        lora_r=lora.r,
        lora_dropout=lora.dropout,
        use_dora=lora.use_dora,
        targets=targets,
        modules_to_save=tuple(lora.modules_to_save),
        micro_batch=t.micro_batch_size,
        grad_accum=t.gradient_accumulation_steps,
        max_len=t.max_seq_length,
        packing=t.packing,
        checkpointing=t.gradient_checkpointing,
        optimizer=t.optimizer,
        attention=attention or default_attention(shapes),
        has_eval=spec.data.eval_path is not None or spec.data.eval_split > 0,
        keep_checkpoints=spec.schedule.keep_checkpoints,
        objective=t.objective,
    )


def default_attention(shapes: ModelShapes) -> Attention:
    """transformers 5.23 runs SDPA unless the model needs attention soft-capping (Gemma 2), which only eager does."""
    return "eager" if shapes.attn_softcap else "sdpa"


def sequence_length(knobs: Knobs, data: DataStats | None) -> int:
    """Tokens per row of the worst micro-batch: the collator pads to the batch's longest example,
    so no batch is longer than the data's longest; packing fills every row to max_len."""
    if knobs.packing or data is None or data.max_tokens is None:
        return knobs.max_len
    return max(1, min(knobs.max_len, data.max_tokens))
