"""Prove a merge: the merged model's logits against PEFT's base + adapter on the same prompts.

PEFT computes the reference from the untouched base and the adapter, so this is an
independent check of the streaming merge, not a re-run of it. The base's own logits are
measured too: how far the adapter moves the model, next to how far rounding moves it,
tells whether a 16-bit output can still show the adapter's effect.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from backend.export.logits import LogitCheck, Tolerance, compare, compute_tolerance, model_logits, prompt_ids, require
from backend.export.progress import ProgressFn

MERGE_TOLERANCE = {
    "float32": Tolerance(1e-4, "float32 summation-order noise only"),
    "bfloat16": Tolerance(0.03, "rounding every merged weight to bfloat16 (8 bits of mantissa)"),
    "float16": Tolerance(0.01, "rounding every merged weight to float16 (11 bits of mantissa)"),
}
"""Relative to the largest logit; measured values per architecture are in docs/export.md."""


def verify_merge(base: Path, adapter: Path, merged: Path, compute_dtype: str, progress: ProgressFn) -> LogitCheck:
    """Raise VerificationError unless the merged model predicts what base + adapter predict."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, compute_dtype)
    stored = json.loads((merged / "config.json").read_text(encoding="utf-8"))["dtype"]
    ids = prompt_ids(AutoTokenizer.from_pretrained(merged))
    total = 2
    reference, base_only = adapter_logits(base, adapter, ids, compute_dtype)
    progress("verifying", 1, total)
    merged_model = AutoModelForCausalLM.from_pretrained(merged, dtype=dtype).eval()
    candidate = model_logits(merged_model, ids)
    del merged_model
    gc.collect()
    progress("verifying", 2, total)
    tol = compute_tolerance(MERGE_TOLERANCE[stored], compute_dtype)
    effect = compare("adapter effect", reference, base_only, tol).relative_diff
    check = compare(f"merged ({stored}) vs base + adapter", reference, candidate, tol, adapter_effect=effect)
    return require(check, tol)


def adapter_logits(base: Path, adapter: Path, ids: list[list[int]], compute_dtype: str) -> tuple[list[Any], list[Any]]:
    """The reference every adapter export is held to: PEFT's base + adapter logits, and the base's alone."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, compute_dtype))
    reference_model = PeftModel.from_pretrained(model, adapter).eval()
    reference = model_logits(reference_model, ids)
    with reference_model.disable_adapter():
        base_only = model_logits(reference_model, ids)
    del model, reference_model
    gc.collect()
    return reference, base_only
