"""The adapter's size: which linear layers LoRA targets, and how many weights it trains.

Targets are resolved from tensor names the way backend/training/targets.py resolves
them from the module tree (a layer belongs to attention or the MLP by the blocks
that contain it), so a preset means the same layers here as in the real run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from backend.models.shapes import Linear, ModelShapes

_PRESET_GROUPS = {
    "attention": ("attention",),
    "attention_mlp": ("attention", "mlp"),
    "all_linear": ("attention", "mlp", "other"),
}


@dataclass(frozen=True)
class AdapterSize:
    """Counts for one adapter on one model."""

    targeted_leaves: frozenset[str]
    lora_params: int
    dora_params: int
    saved_module_params: int


def trainable_dtype(quant: str, quantized_trainable_dtype: str) -> str:
    """dtype of LoRA weights: trl casts them to bf16 on a quantized base; peft upcasts them to fp32 otherwise."""
    return quantized_trainable_dtype if quant != "none" else "float32"


def targeted_leaves(shapes: ModelShapes, targets: str | tuple[str, ...]) -> frozenset[str]:
    if isinstance(targets, str):
        groups = _PRESET_GROUPS[targets]
        return frozenset(lin.leaf for lin in shapes.per_layer_linears if lin.group in groups)
    return frozenset(targets)


def adapter_size(
    shapes: ModelShapes, targets: str | tuple[str, ...], r: int, dora: bool, modules_to_save: tuple[str, ...]
) -> AdapterSize:
    return _adapter_size(shapes, targets, r, dora, modules_to_save)


@lru_cache(maxsize=256)
def _adapter_size(
    shapes: ModelShapes, targets: str | tuple[str, ...], r: int, dora: bool, modules_to_save: tuple[str, ...]
) -> AdapterSize:
    leaves = targeted_leaves(shapes, targets)
    chosen: list[Linear] = [lin for lin in shapes.linears if lin.leaf in leaves]
    return AdapterSize(
        targeted_leaves=leaves,
        lora_params=sum(r * (lin.in_features + lin.out_features) for lin in chosen),
        dora_params=sum(lin.out_features for lin in chosen) if dora else 0,
        saved_module_params=saved_module_params(shapes, modules_to_save),
    )


def saved_module_params(shapes: ModelShapes, names: tuple[str, ...]) -> int:
    """Weights of ``modules_to_save``: peft trains a full copy of each named module."""
    total = 0
    for name in names:
        found = [t for t in shapes.tensors if f".{name}." in f".{t.name}"]
        if not found and name == "lm_head" and shapes.embedding is not None:
            found = [shapes.embedding]  # a tied head: peft copies the shared matrix
        total += sum(t.numel for t in found)
    return total
