"""LoRA adapters built in-process on the tiny models, for merge and export tests.

PEFT initialises B to zero, which would make an adapter a no-op; B (and any trained bias)
gets seeded noise instead, so the adapter changes the logits and a merge that drops it fails the
tests. A LoRA Studio record with the base's fingerprint is written next to it, as
training would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backend.core.layout import ADAPTER_RECORD
from backend.models.fingerprint import fingerprint

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_adapter(
    base: Path,
    out: Path,
    *,
    seed: int = 0,
    record: bool = True,
    base_ref: str | None = None,
    safetensors: bool = True,
    **lora: Any,
) -> Path:
    """Save a PEFT LoRA (default r=8, alpha=16, all linear layers) with non-zero B, tokenizer and record.

    ``safetensors=False`` saves ``adapter_model.bin`` (a torch pickle), as older PEFT did.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = {"r": 8, "lora_alpha": 16, "target_modules": ALL_LINEAR, "lora_dropout": 0.0, **lora}
    with torch.random.fork_rng(devices=[]):  # PEFT draws A from the global generator
        torch.manual_seed(seed)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), LoraConfig(**settings))
        with torch.no_grad():
            for name, param in model.named_parameters():
                trained_bias = name.endswith(".bias") and param.requires_grad  # bias="lora_only" or "all"
                if "lora_B" in name or "lora_embedding_B" in name or "lora_magnitude" in name or trained_bias:
                    param.add_(torch.randn(param.shape) * 0.05)
    model.save_pretrained(out, safe_serialization=safetensors)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    if record:
        data = {
            "format": 1,
            "name": out.name,
            "base_model": {"ref": base_ref or str(base), "path": str(base), "fingerprint": fingerprint(base)},
            "dataset": {"path": "train.jsonl", "eval_path": None, "content_hash": "d" * 64},
            "spec": {
                "lora": {"r": settings["r"], "alpha": settings["lora_alpha"]},
                "training": {"learning_rate": 2e-4},
            },
            "metrics": {"train_loss": 2.5, "eval_loss": 2.75},
            "steps": 2,
            "versions": {"peft": "test"},
        }
        (out / ADAPTER_RECORD).write_text(json.dumps(data), encoding="utf-8")
    return out
