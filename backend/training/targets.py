"""Find which linear layers a LoRA preset means, in whatever architecture is loaded.

Names differ between families (q_proj/k_proj in Llama and Qwen, c_attn in GPT-2,
query_key_value in Falcon, w1/w2/w3 in some MoE blocks), so presets are resolved
from the model itself: a linear layer belongs to attention or to the MLP by the
class names of the blocks that contain it.
"""

from __future__ import annotations

from typing import Any

from backend.core.spec import SpecError

_ATTENTION_MARKERS = ("attention", "attn")
_MLP_MARKERS = ("mlp", "feedforward", "ffn", "moe", "expert")
_LINEAR_CLASSES = ("Linear", "Linear4bit", "Linear8bitLt", "Conv1D")


def _is_linear(module: Any) -> bool:
    return type(module).__name__ in _LINEAR_CLASSES


def linear_layer_groups(model: Any) -> dict[str, set[str]]:
    """Leaf names of the model's linear layers but the output head: attention, mlp or other."""
    groups: dict[str, set[str]] = {"attention": set(), "mlp": set(), "other": set()}
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    stack: list[tuple[str, Any, tuple[str, ...]]] = [("", model, ())]
    while stack:
        name, module, ancestors = stack.pop()
        for child_name, child in module.named_children():
            full = f"{name}.{child_name}" if name else child_name
            lineage = (*ancestors, type(module).__name__.lower(), child_name.lower())
            if _is_linear(child) and child is not output:
                if any(marker in part for part in lineage for marker in _ATTENTION_MARKERS):
                    groups["attention"].add(child_name)
                elif any(marker in part for part in lineage for marker in _MLP_MARKERS):
                    groups["mlp"].add(child_name)
                else:
                    groups["other"].add(child_name)
            else:
                stack.append((full, child, lineage))
    return groups


def resolve_targets(model: Any, preset_or_names: str | list[str]) -> list[str]:
    """Module names for peft's ``target_modules``; explicit names are checked against the model."""
    groups = linear_layer_groups(model)
    if isinstance(preset_or_names, list):
        present = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if _is_linear(module)}
        missing = [name for name in preset_or_names if name not in present]
        if missing:
            raise SpecError(
                [
                    f"lora.target_modules names {', '.join(missing)}, which this model does not have; "
                    f"its linear layers are {', '.join(sorted(present))}"
                ]
            )
        return list(preset_or_names)
    if preset_or_names == "attention":
        names = groups["attention"]
    elif preset_or_names == "attention_mlp":
        names = groups["attention"] | groups["mlp"]
    else:
        names = groups["attention"] | groups["mlp"] | groups["other"]
    if not names:
        raise SpecError(
            [
                f"found no {preset_or_names.replace('_', ' ')} layers in this model; "
                "list lora.target_modules by name instead"
            ]
        )
    return sorted(names)
