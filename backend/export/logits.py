"""Comparing two models' next-token logits on the same prompts, with a stated tolerance.

Merge and GGUF export both prove their output by this test: the written model must
predict what the model it came from predicts, up to the rounding its storage type
implies. The tolerance is relative to the largest logit, because rounding a weight to
bf16 or f16 moves every logit by a fraction of its size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
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


def compute_tolerance(tol: Tolerance, precision: str) -> Tolerance:
    """``tol`` for a comparison in ``precision`` (see ``check_ram``): as it is where that is exact, wider in
    bfloat16."""
    noise = COMPUTE_NOISE[precision]
    if not noise:
        return tol
    return Tolerance(
        tol.relative + noise, f"{tol.why}, and weights or activations rounded to {precision}", tol.min_top1
    )


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


def storage_dtype(model_dir: Path, precision: str) -> tuple[str, str]:
    """The dtype to load a model in for a check in ``precision`` (see ``check_ram``), and the precision its
    limits must allow for: a ``layerwise`` check keeps the model in its own 16-bit type, which is exact; a
    float32 checkpoint kept in bfloat16 is rounded, so its limits are bfloat16's."""
    if precision != "layerwise":
        return precision, precision
    from backend.export.safetensors_io import list_tensors, weight_dtype

    sixteen = {"BF16": "bfloat16", "F16": "float16"}
    stored = weight_dtype(list_tensors(model_dir))
    if stored in sixteen:
        return sixteen[stored], "layerwise"
    return "bfloat16", "bfloat16"


def check_logits_of(model: Any, ids: list[list[int]], precision: str) -> list[torch.Tensor]:
    """``model_logits`` for a check in ``precision``: a ``layerwise`` one computes in float32 piece by piece."""
    if precision != "layerwise":
        return model_logits(model, ids)
    with float32_compute(model):
        return model_logits(model, ids)


def load_for_check(model_dir: Path, precision: str) -> tuple[Any, str]:
    """The saved model at ``model_dir`` loaded for a check in ``precision``, and the precision its limits
    must allow for (``storage_dtype``)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype, effective = storage_dtype(model_dir, precision)
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval(), effective


@contextmanager
def float32_compute(model: Any) -> Iterator[Any]:
    """Run a model held in 16 bits as if it were float32, one piece at a time.

    Before each decoder layer runs, its parameters and buffers are replaced by float32 copies, and
    the 16-bit originals are put back when it returns; modules outside the layers (embeddings,
    final norm, head) are upcast the same way one at a time. RAM holds the 16-bit model plus one
    piece in float32; the arithmetic is float32's throughout, and a 16-bit value is exact in
    float32, so the logits equal the float32 model's (tests/test_check_ram.py: bit for bit).
    """
    import torch
    from transformers.modeling_layers import GradientCheckpointingLayer

    half = (torch.bfloat16, torch.float16)
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    in_layers = {id(sub) for layer in layers for sub in layer.modules()}
    saved: dict[int, list[tuple[Any, str, Any]]] = {}

    def upcast(module: Any, recurse: bool) -> None:
        originals = []
        for owner in module.modules() if recurse else [module]:
            for name, param in owner._parameters.items():
                if param is not None and param.dtype in half:
                    originals.append((param, name, param.data))
                    param.data = param.data.float()
            for name, buffer in owner._buffers.items():
                if buffer is not None and buffer.dtype in half:
                    originals.append((owner, name, buffer))
                    owner._buffers[name] = buffer.float()
        saved[id(module)] = originals

    def restore(module: Any, _args: Any, _output: Any) -> None:
        for holder, name, original in saved.pop(id(module)):
            if isinstance(holder, torch.nn.Parameter):
                holder.data = original
            else:
                holder._buffers[name] = original

    handles = []
    for layer in layers:
        handles.append(layer.register_forward_pre_hook(lambda module, _args: upcast(module, True)))
        handles.append(layer.register_forward_hook(restore))
    for module in model.modules():
        if id(module) in in_layers or not (module._parameters or module._buffers):
            continue
        handles.append(module.register_forward_pre_hook(lambda module, _args: upcast(module, False)))
        handles.append(module.register_forward_hook(restore))
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


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
