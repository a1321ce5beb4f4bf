"""The adapter's tensors, grouped by the base tensor they change, and the merge arithmetic.

This is PEFT's merge for the LoRA features LoRA Studio trains (plain LoRA, rsLoRA, DoRA,
per-module rank and alpha, ``modules_to_save``, LoRA on embeddings), applied one base
tensor at a time so a merge never needs the whole model in memory. Features that change
the base weights themselves or that PEFT merges differently are refused up front; the
logits check after the merge catches anything else.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backend.export.adapter import AdapterInfo
from backend.export.errors import ExportError

if TYPE_CHECKING:
    import torch

PREFIX = "base_model.model."
_LINEAR_PARTS = {"lora_A.weight": "a", "lora_B.weight": "b", "lora_magnitude_vector": "magnitude"}
_EMBEDDING_PARTS = {"lora_embedding_A": "a", "lora_embedding_B": "b"}
_UNSUPPORTED = {
    "fan_in_fan_out": "GPT-2 style Conv1D layers",
    "lora_bias": "LoRA bias terms",
    "use_qalora": "QA-LoRA",
    "layer_replication": "layer replication",
    "target_parameters": "LoRA on raw parameters",
    "trainable_token_indices": "trainable token indices",
    "alora_invocation_tokens": "activated LoRA",
    "use_bdlora": "block-diagonal LoRA",
}
_BASE_CHANGING_INITS = ("pissa", "olora", "corda", "loftq", "eva", "lora_ga")


@dataclass
class LoraPair:
    """The low-rank update of one base tensor: ``W + scale * B @ A`` (transposed for embeddings)."""

    a: torch.Tensor
    b: torch.Tensor
    magnitude: torch.Tensor | None = None
    embedding: bool = False
    scale: float = 1.0


@dataclass
class _Parts:
    """One base tensor's LoRA tensors as they come out of the adapter file, in any order."""

    a: torch.Tensor | None = None
    b: torch.Tensor | None = None
    magnitude: torch.Tensor | None = None
    embedding: bool = False


@dataclass(frozen=True)
class AdapterTensors:
    """What the adapter does to the base, keyed by base tensor name (``model.layers.0.mlp.up_proj.weight``)."""

    updates: dict[str, LoraPair]
    replacements: dict[str, torch.Tensor]
    """Whole tensors the adapter trained (``modules_to_save``, biases): they replace the base's."""


def check_supported(config: dict[str, Any]) -> None:
    """Refuse adapter features this merge does not reproduce exactly."""
    used = [label for key, label in _UNSUPPORTED.items() if config.get(key) not in (None, False, {}, [])]
    init = config.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower().startswith(_BASE_CHANGING_INITS):
        used.append(f"init_lora_weights={init} (it changes the base weights)")
    if used:
        raise ExportError(
            f"This adapter uses {', '.join(used)}, which LoRA Studio cannot merge.",
            hint="Serve the adapter with PEFT on top of its base instead of merging it.",
        )


def load_adapter_tensors(adapter: AdapterInfo) -> AdapterTensors:
    """Group the adapter file's tensors by the base tensor they change, with each update's scale."""
    import torch

    check_supported(adapter.config)
    if adapter.weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        raw = load_file(adapter.weights)
    else:
        raw = torch.load(adapter.weights, map_location="cpu", weights_only=True)
    parts: dict[str, _Parts] = {}
    replacements: dict[str, torch.Tensor] = {}
    for key, tensor in raw.items():
        name = key.removeprefix(PREFIX)
        module, part, embedding = split_key(name)
        if part is None:
            if name.endswith(".base_layer.bias"):  # bias="lora_only"/"all": a LoRA layer's trained bias
                replacements[name.replace(".base_layer.bias", ".bias")] = tensor
            elif ".base_layer." not in name:  # not a copy of the base embedding that PEFT saves alongside
                replacements[name] = tensor
            continue
        found = parts.setdefault(f"{module}.weight", _Parts())
        found.embedding |= embedding
        setattr(found, part, tensor.float())
    updates: dict[str, LoraPair] = {}
    for target, found in parts.items():
        if found.a is None or found.b is None:
            raise ExportError(f"The adapter file is damaged: {target} has only half of its LoRA pair.")
        if found.embedding and found.magnitude is not None:
            raise ExportError("DoRA on embedding layers cannot be merged by LoRA Studio.")
        scale = lora_scale(adapter.config, found.a.shape[0], target.removesuffix(".weight"))
        updates[target] = LoraPair(found.a, found.b, found.magnitude, found.embedding, scale)
    return AdapterTensors(updates=updates, replacements=replacements)


def merge_update(weight: torch.Tensor, pair: LoraPair) -> torch.Tensor:
    """The merged tensor in float32, as PEFT's ``merge_and_unload`` computes it."""
    base = weight.float()
    delta = pair.scale * (pair.b @ pair.a)
    if pair.embedding:
        delta = delta.T
    if delta.shape != base.shape:
        raise ExportError(
            f"The adapter's update has shape {tuple(delta.shape)} but the base tensor has {tuple(base.shape)}: "
            "the adapter was trained on a differently shaped model."
        )
    merged = base + delta
    if pair.magnitude is not None:
        # DoRA: rescale each output row to the trained magnitude; PEFT takes the norm of W + delta.
        norm = merged.norm(p=2, dim=1, keepdim=True)
        merged = merged * (pair.magnitude.view(-1, 1) / norm)
    return merged


def split_key(name: str) -> tuple[str, str | None, bool]:
    """``(module, part, is_embedding)`` for a LoRA key, or ``(name, None, False)`` for a whole tensor."""
    for parts, embedding in ((_LINEAR_PARTS, False), (_EMBEDDING_PARTS, True)):
        for suffix, part in parts.items():
            if name.endswith("." + suffix):
                return name[: -len(suffix) - 1], part, embedding
    return name, None, False


def lora_alpha(config: dict[str, Any], module: str | None = None) -> float:
    """``lora_alpha`` (PEFT's default 8), or the ``alpha_pattern`` entry PEFT would pick for ``module``."""
    if module is not None:
        for pattern, alpha in (config.get("alpha_pattern") or {}).items():
            if re.fullmatch(rf"(.*\.)?{pattern}", module):
                return float(alpha)
    return float(config.get("lora_alpha", 8))


def lora_scale(config: dict[str, Any], rank: int, module: str | None = None) -> float:
    """What PEFT multiplies ``B @ A`` by: ``alpha / r``, or ``alpha / sqrt(r)`` with rsLoRA.

    ``rank`` is read off the module's A (so ``rank_pattern`` is honoured), ``alpha`` is
    ``lora_alpha(config, module)``; without a module, the adapter-wide scale that vLLM applies.
    """
    alpha = lora_alpha(config, module)
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
