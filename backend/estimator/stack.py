"""What the training libraries do to memory, as switches the estimator reads.

The installed versions decide whole terms (is the frozen embedding upcast to fp32?
are the full logits ever built?), so each behaviour is a field checked against the
library code it comes from. ``INSTALLED`` is LoRA Studio's own training path;
the other stacks exist to compare the model with measurements that others made
with other versions (tests/test_estimator_published.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Literal


@dataclass(frozen=True)
class Stack:
    """Memory-relevant behaviour of one combination of transformers, peft, trl and bitsandbytes."""

    name: str
    upcast_frozen_fp32: bool
    """On a quantized base, peft's ``prepare_model_for_kbit_training`` casts embeddings, head and
    norms to fp32. fp32 norms make the residual stream fp32 too: bitsandbytes' ``Linear4bit``
    returns its input's dtype, so the MLP adds fp32 to the residual. trl <= 0.23 called it inside
    SFTTrainer; trl >= 0.26 does not."""
    quantized_trainable_dtype: str
    """dtype of LoRA weights on a quantized base. trl >= 0.26 casts them to bfloat16
    (sft_trainer.py, "the PEFT adapter weights are converted to bf16"); before, peft's fp32 upcast stood."""
    autocast: bool
    """Mixed precision through autocast (HF Trainer); False for a plain loop in the model's dtype."""
    loss: Literal["fused", "logits"]
    """"fused": trl's chunked log-prob head, which never builds the (tokens x vocab) logits.
    "logits": the model's own loss over full fp32 logits."""
    recast_embeddings_16bit: bool = False
    """trl <= 0.13 with bf16 training then calls ``peft_module_casting_to_bf16``: embeddings and
    head go back to bfloat16, norms stay fp32 (so the residual stream stays fp32)."""
    logits_copies_forward: float = 0.0
    """fp32 (tokens x vocab) tensors alive at the end of the loss forward ("logits" loss only)."""
    logits_copies_backward: float = 0.0
    """fp32 (tokens x vocab) tensors alive at the peak of the loss backward ("logits" loss only)."""
    logits_copies_step: float = 0.0
    """fp32 (tokens x vocab) tensors still held during the optimizer step (a loop that keeps its outputs)."""

    def upcasts(self, quant: str) -> bool:
        """Whether frozen non-linear weights are fp32: the upcast applies to a quantized base only."""
        return self.upcast_frozen_fp32 and quant != "none"


INSTALLED = Stack(
    name="transformers 5.23, peft 0.21, trl 1.16, bitsandbytes 0.50 (LoRA Studio's SFTTrainer path)",
    upcast_frozen_fp32=False,
    quantized_trainable_dtype="bfloat16",
    autocast=True,
    loss="fused",
)
"""The path backend/training/sft.py runs, as read in the installed libraries' code."""

PLAIN_LOOP_KBIT = Stack(
    name="plain PyTorch loop, prepare_model_for_kbit_training, model dtype without autocast "
    "(transformers 5.0, peft 0.19, bitsandbytes 0.50: fitcheck-llm's measure.py)",
    upcast_frozen_fp32=True,
    quantized_trainable_dtype="float32",
    autocast=False,
    loss="logits",
    # forward: fp32 logits (the head is fp32) + log_softmax output; backward: the loop still holds
    # the logits, log_softmax's saved output, its incoming gradient and its input gradient.
    logits_copies_forward=2.0,
    logits_copies_backward=4.0,
    logits_copies_step=1.0,
)

TRL_013 = Stack(
    name="trl 0.13 SFTTrainer, transformers 4.48, peft 0.13 (prepare_model_for_kbit_training and "
    "peft_module_casting_to_bf16 on a 4-bit base)",
    upcast_frozen_fp32=True,
    recast_embeddings_16bit=True,
    quantized_trainable_dtype="float32",
    autocast=True,
    loss="logits",
    # forward (ForCausalLMLoss): bf16 logits (half an fp32 copy) + .float() + shifted contiguous copy
    # + log_softmax's output; backward: that output, its incoming gradient and its input gradient
    # (the slice's backward buffer comes after log_softmax's saved output is freed).
    logits_copies_forward=3.5,
    logits_copies_backward=3.0,
)

CHECKED_VERSIONS = {
    "transformers": ("5.23", "5.24"),
    "peft": ("0.21",),
    "trl": ("1.16",),
    "bitsandbytes": ("0.50",),
}
"""The minor versions whose code INSTALLED was read from (5.24: the attention, mask and checkpointing code
diffed against 5.23, a renamed cache argument only, and the autograd checks of tests/test_estimator.py rerun)."""


@cache
def version_drift() -> tuple[str, ...]:
    """Installed packages whose minor version differs from the ones INSTALLED was checked against."""
    drift = []
    for package, checked in CHECKED_VERSIONS.items():
        try:
            found = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
        if not any(found == minor or found.startswith(minor + ".") for minor in checked):
            drift.append(f"{package} {found} (estimator checked against {', '.join(checked)})")
    return tuple(drift)
