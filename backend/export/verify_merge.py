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

from backend.core.progress import ProgressFn
from backend.export.check_ram import coarser
from backend.export.logits import (
    LogitCheck,
    Tolerance,
    check_logits_of,
    compare,
    compute_tolerance,
    load_for_check,
    prompt_ids,
    require,
)

MERGE_TOLERANCE = {
    "float32": Tolerance(1e-4, "float32 summation-order noise only"),
    "bfloat16": Tolerance(0.03, "rounding every merged weight to bfloat16 (8 bits of mantissa)"),
    "float16": Tolerance(0.01, "rounding every merged weight to float16 (11 bits of mantissa)"),
}
"""Relative to the largest logit; measured values per architecture are in docs/export.md."""


def verify_merge(base: Path, adapter: Path, merged: Path, precision: str, progress: ProgressFn) -> LogitCheck:
    """Raise VerificationError unless the merged model predicts what base + adapter predict (``precision``:
    how the check holds and computes the models, ``check_ram``)."""
    import json

    from transformers import AutoTokenizer

    stored = json.loads((merged / "config.json").read_text(encoding="utf-8"))["dtype"]
    ids = prompt_ids(AutoTokenizer.from_pretrained(merged))
    total = 2
    reference, base_only, reference_precision = adapter_logits(base, adapter, ids, precision)
    progress("verifying", 1, total)
    merged_model, merged_precision = load_for_check(merged, precision)
    candidate = check_logits_of(merged_model, ids, precision)
    del merged_model
    gc.collect()
    progress("verifying", 2, total)
    tol = compute_tolerance(MERGE_TOLERANCE[stored], coarser(reference_precision, merged_precision))
    effect = compare("adapter effect", reference, base_only, tol).relative_diff
    check = compare(f"merged ({stored}) vs base + adapter", reference, candidate, tol, adapter_effect=effect)
    return require(check, tol)


def adapter_logits(base: Path, adapter: Path, ids: list[list[int]], precision: str) -> tuple[list[Any], list[Any], str]:
    """The reference every adapter export is held to: PEFT's base + adapter logits, the base's alone, and the
    precision their limits must allow for (``logits.storage_dtype``)."""
    from peft import PeftModel

    model, effective = load_for_check(base, precision)
    reference_model = PeftModel.from_pretrained(model, adapter).eval()
    reference = check_logits_of(reference_model, ids, precision)
    with reference_model.disable_adapter():
        base_only = check_logits_of(reference_model, ids, precision)
    del model, reference_model
    gc.collect()
    return reference, base_only, effective
