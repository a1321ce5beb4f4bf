"""Two held-out losses, each with its name, and why they differ for the same adapter.

- The **in-training held-out loss** is the trainer's ``eval_loss``: measured in the training loop
  on every example of the job's held-out split, in batches of ``micro_batch_size``, with the base
  as training ran it (4-bit for QLoRA), as the mean of the batches' token means (each batch
  weighted by its examples). The adapter's job and record show it.
- The **evaluation held-out loss** is the evaluate job's: measured on at most ``max_examples`` of
  those examples (or of another file), with the base loaded as the evaluation loads it (16-bit
  where it fits), as one token-weighted mean over every reply token.

Both read the same examples tokenized the same way (chat template, which tokens count, the
training job's maximum length), so where the conditions match the numbers agree to a few parts
in a thousand. ``loss_differences`` names the conditions that do not match for one evaluation;
the report, the Evaluate page and docs/evaluation.md show them beside the two numbers.
"""

from __future__ import annotations

from typing import Any

IN_TRAINING = "in-training held-out loss"
EVALUATION = "evaluation held-out loss"
_QUANTIZED = ("4-bit", "8-bit", "nf4", "fp4", "int8")


def loss_differences(
    *,
    training_spec: dict[str, Any] | None,
    named_data: bool,
    source: str,
    examples: int,
    available: int,
    tokens: int,
    precision: str,
) -> list[str]:
    """Why this evaluation's loss is not the adapter's in-training one, one reason a sentence; empty when the
    conditions are the same (then only the batch weighting, under 1% on replies of similar length, remains)."""
    reasons = []
    if named_data:
        reasons.append(f"it is measured on {source}, not on the training job's held-out split")
    elif examples < available:
        reasons.append(
            f"it is measured on {examples} of the {available} held-out examples (max_examples); training measured "
            "all of them"
        )
    training = (training_spec or {}).get("training") or {}
    batch = training.get("micro_batch_size")
    if isinstance(batch, int) and batch > 1:
        reasons.append(
            f"it weights each of its {tokens:,} reply tokens equally; training averaged the token means of batches "
            f"of {batch} examples, so there a short reply weighs as much as a long one in its batch"
        )
    mode = ((training_spec or {}).get("quantization") or {}).get("mode")
    if mode and mode != "none" and not any(word in precision.lower() for word in _QUANTIZED):
        reasons.append(
            f"the base runs as {precision} here; in training it ran quantized ({mode}), the base the adapter "
            "was trained against"
        )
    return reasons
