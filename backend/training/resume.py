"""Resume that repeats the uninterrupted run: each trainable weight comes back in the dtype it trained in.

trl trains a QLoRA adapter in bfloat16 (its SFTTrainer casts the LoRA weights after
building the model), but on resume the Trainer reloads the checkpoint through peft's
``load_adapter``, which upcasts the adapter to float32. The resumed run then steps in
another precision (and keeps float32 optimizer moments), so its losses drift from the
uninterrupted run's in the third decimal. Putting every trainable weight back in the
dtype it had before the reload, before the optimizer is built and its state loaded,
makes the resumed steps those of the uninterrupted run (tests/test_resume_exact.py).

The other state a checkpoint cannot hold is the base's storage layout: on CPUs with
AVX512-BF16, bitsandbytes repacks a 4-bit weight the first time it runs without
gradients (an in-training evaluation) and keeps it repacked, so the steps after an
evaluation ran on other kernels than a resumed run's. Training keeps one layout.
"""

from __future__ import annotations

from typing import Any


def keeping_dtypes_on_resume(trainer_class: type[Any]) -> type[Any]:
    """A subclass of a transformers Trainer whose checkpoint reload keeps the trainable weights' dtypes."""

    class Resumable(trainer_class):  # type: ignore[misc]  # any Trainer subclass, imported lazily
        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            dtypes = {name: p.dtype for name, p in self.model.named_parameters() if p.requires_grad}
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            for name, param in self.model.named_parameters():
                if name in dtypes and param.dtype != dtypes[name]:
                    param.data = param.data.to(dtypes[name])

    Resumable.__name__ = Resumable.__qualname__ = f"Resumable{trainer_class.__name__}"
    return Resumable


def keep_4bit_layout(model: Any) -> None:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference mid-run (see the module's docstring)."""
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
