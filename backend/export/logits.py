"""Comparing two models' next-token logits on the same prompts, with a stated tolerance.

Merge and GGUF export both prove their output by this test: the written model must
predict what the model it came from predicts, up to the rounding its storage type
implies. The tolerance is relative to the largest logit, because rounding a weight to
bf16 or f16 moves every logit by a fraction of its size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from backend.export.check_ram import COMPUTE_NOISE
from backend.export.errors import VerificationError

if TYPE_CHECKING:
    import torch

PROMPTS = (
    "The quick brown fox jumps over the lazy dog while the farmer watches.",
    "Fine-tuning adapts a pretrained language model to a new task: 1, 2, 3, 42.",
)
CHAT_PROMPT = [{"role": "user", "content": "What is the capital of France? Answer briefly."}]


DECISIVE_MARGIN = 0.05


@dataclass(frozen=True)
class Tolerance:
    """Pass when ``max |a - b| <= relative * max |reference|`` over every position and vocabulary entry,
    and (for quantized outputs) the most likely next token agrees at ``min_top1`` of the decisive positions:
    those where the reference's best token leads the runner-up by more than ``DECISIVE_MARGIN`` of the
    logit scale. Where the reference itself nearly ties, either token is as right, and rounding may pick
    the other; counting those would fail small or untrained models for noise, not for damage."""

    relative: float
    why: str
    min_top1: float = 0.0


def compute_tolerance(tol: Tolerance, dtype: str) -> Tolerance:
    """``tol`` for a comparison computed in ``dtype`` (see ``check_ram``): as it is in float32, wider in bfloat16."""
    noise = COMPUTE_NOISE[dtype]
    if not noise:
        return tol
    return Tolerance(tol.relative + noise, f"{tol.why}, and both sides computed in {dtype}", tol.min_top1)


@dataclass(frozen=True)
class LogitCheck:
    """The outcome of one comparison, kept in the output's record."""

    what: str
    max_abs_diff: float
    logit_scale: float
    relative_diff: float
    top1_agreement: float
    tolerance: float
    passed: bool
    adapter_effect: float | None = None
    """How far the adapter moves the base's logits, in the same relative measure (merge checks only)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        verdict = "ok" if self.passed else "MISMATCH"
        effect = f"; the adapter itself moves them {self.adapter_effect:.2%}" if self.adapter_effect is not None else ""
        return (
            f"{self.what}: max |Δlogit| {self.max_abs_diff:.4g} = {self.relative_diff:.2%} of the largest logit "
            f"(limit {self.tolerance:.2%}), top-1 agreement {self.top1_agreement:.0%} where decisive"
            f"{effect} [{verdict}]"
        )


def prompt_ids(tokenizer: Any) -> list[list[int]]:
    """Token ids of the check prompts: plain text, plus one chat turn when the tokenizer has a template."""
    ids = [tokenizer(text)["input_ids"] for text in PROMPTS]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(CHAT_PROMPT, add_generation_prompt=True, tokenize=False)
        ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids


def model_logits(model: Any, ids: list[list[int]]) -> list[torch.Tensor]:
    """Logits for every position of every prompt, in float32, one prompt at a time (no padding effects)."""
    import torch

    with torch.no_grad():
        return [model(input_ids=torch.tensor([row])).logits[0].float() for row in ids]


def compare(
    what: str,
    reference: list[torch.Tensor],
    candidate: list[torch.Tensor],
    tol: Tolerance,
    adapter_effect: float | None = None,
) -> LogitCheck:
    """Compare logits over the shared vocabulary (a GGUF may pad the vocabulary with unused rows)."""
    pairs = []
    for ref, cand in zip(reference, candidate, strict=True):
        width = min(ref.shape[-1], cand.shape[-1])
        pairs.append((ref[..., :width], cand[..., :width]))
    max_diff = max(float((ref - cand).abs().max()) for ref, cand in pairs)
    scale = max(float(ref.abs().max()) for ref, _ in pairs) or 1.0
    relative = max_diff / scale
    agree = total = 0
    for ref, cand in pairs:
        top2 = ref.topk(2, dim=-1).values
        decisive = (top2[..., 0] - top2[..., 1]) > DECISIVE_MARGIN * scale
        agree += int(((ref.argmax(-1) == cand.argmax(-1)) & decisive).sum())
        total += int(decisive.sum())
    top1 = agree / total if total else 1.0
    return LogitCheck(
        what=what,
        max_abs_diff=max_diff,
        logit_scale=scale,
        relative_diff=relative,
        top1_agreement=top1,
        tolerance=tol.relative,
        passed=relative <= tol.relative and top1 >= tol.min_top1,
        adapter_effect=adapter_effect,
    )


def require(check: LogitCheck, tol: Tolerance) -> LogitCheck:
    """Raise when the check failed, saying what the tolerance means."""
    if not check.passed:
        raise VerificationError(f"{check.describe()}. The limits allow for {tol.why}; this is beyond them.")
    return check
