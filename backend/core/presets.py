"""Starting points for the hyperparameter form: partial job specs, nested like the spec itself.

Every preset sets the same fields, so switching from one to another never leaves a value
behind from the first. Fields a preset does not name (the model, the data, the memory
format of the base) keep what the person chose. Plain dicts, no Qt: the form's preset
buttons and ``lora-studio spec new --preset`` start from the same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    """One sentence for the preset's tooltip and the line under the buttons."""
    values: dict[str, Any]
    """A partial spec: sections to field values; None means the field is left empty."""

    @property
    def key(self) -> str:
        """The name as a command-line word: ``Quick test`` is ``quick-test``."""
        return self.name.lower().replace(" ", "-")


QUICK_TEST = Preset(
    "Quick test",
    "A few minutes: checks that the data, model and settings work end to end before a long run.",
    {
        "lora": {"r": 8, "alpha": None, "dropout": 0.05, "target_modules": "all_linear", "use_rslora": False},
        "training": {
            "learning_rate": 2e-4,
            "epochs": 1.0,
            "max_steps": 30,
            "micro_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "max_seq_length": 512,
            "warmup_ratio": 0.03,
        },
        "schedule": {"eval_every_steps": 10, "save_every_steps": 10, "keep_checkpoints": 1},
    },
)

BALANCED = Preset(
    "Balanced",
    "The usual LoRA settings: two passes over the data with a rank that suits style, format and some knowledge.",
    {
        "lora": {"r": 16, "alpha": None, "dropout": 0.05, "target_modules": "all_linear", "use_rslora": False},
        "training": {
            "learning_rate": 2e-4,
            "epochs": 2.0,
            "max_steps": None,
            "micro_batch_size": 4,
            "gradient_accumulation_steps": 4,
            "max_seq_length": 1024,
            "warmup_ratio": 0.03,
        },
        "schedule": {"eval_every_steps": None, "save_every_steps": 50, "keep_checkpoints": 3},
    },
)

MAX_QUALITY = Preset(
    "Max quality",
    "A large adapter trained longer and more gently on longer examples: the best results, and the most time "
    "and memory.",
    {
        "lora": {"r": 64, "alpha": None, "dropout": 0.05, "target_modules": "all_linear", "use_rslora": True},
        "training": {
            "learning_rate": 1e-4,
            "epochs": 3.0,
            "max_steps": None,
            "micro_batch_size": 2,
            "gradient_accumulation_steps": 8,
            "max_seq_length": 2048,
            "warmup_ratio": 0.05,
        },
        "schedule": {"eval_every_steps": None, "save_every_steps": 100, "keep_checkpoints": 3},
    },
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (QUICK_TEST, BALANCED, MAX_QUALITY)}
DEFAULT_PRESET = BALANCED.name


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"lora": {"r": 8}}`` as ``{"lora.r": 8}``: the dotted paths the form's fields are named by."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``flatten``: dotted paths back to sections."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *sections, name = path.split(".")
        target = nested
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return nested


def matching_preset(flat: Mapping[str, Any]) -> str | None:
    """The preset whose every value ``flat`` (dotted paths) holds, if any."""
    for preset in PRESETS.values():
        if all(flat.get(path) == value for path, value in flatten(preset.values).items()):
            return preset.name
    return None
