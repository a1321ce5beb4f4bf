"""Tensors autograd keeps between the forward and the backward pass, per decoder layer and once per step.

Each count follows one operation of the installed code: transformers 5.23's Llama-family
layers (RMSNorm in fp32, rotary, SDPA/eager attention, gated MLP), peft 0.21's LoRA
forward (``_cast_input_dtype``, dropout), bitsandbytes 0.50's ``MatMul4Bit`` (which keeps
only the packed weight, not its input) and trl 1.16's fused log-prob head. Sizes are in
bytes per token of the micro-batch unless a name says otherwise; docs/estimator.md lists
every one, and tests/test_estimator_cpu.py checks the sums against autograd on real models.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from backend.estimator.knobs import Knobs
from backend.estimator.stack import Stack
from backend.models.shapes import TORCH_DTYPE_BYTES, Linear, ModelShapes

AttentionPath = Literal["flash", "masked", "eager"]

_OUT_PROJ = ("o_proj", "out_proj", "dense", "wo", "c_proj", "self_attention.dense")
_DOWN_PROJ = ("down_proj", "fc2", "w2", "c_proj", "dense_4h_to_h", "wo")
NORM_SAVED_EXTRA = 4
"""RMSNorm keeps the fp32 reciprocal square root of each token's variance besides its fp32 input."""
HEAD_SAVED_EXTRA = 28
"""Per token, trl's fused head keeps int64 targets, fp32 log-normaliser and entropy, and its outputs."""
BATCH_BYTES = 24
"""input_ids, labels and attention_mask (or position_ids): three int64 per token."""


@dataclass(frozen=True)
class Dtypes:
    """Bytes per element of each kind of activation, and the dtype names that decide copies."""

    residual: str  # the hidden state between layers
    compute: str  # what linear layers output (autocast dtype, or the model dtype without autocast)
    lora: str  # the LoRA weights' dtype
    mask_bytes: int  # a dropout mask element: bool on CUDA; on the CPU, dropout multiplies by a noise tensor

    @property
    def res(self) -> int:
        return TORCH_DTYPE_BYTES[self.residual]

    @property
    def comp(self) -> int:
        return TORCH_DTYPE_BYTES[self.compute]


def dtypes(knobs: Knobs, stack: Stack, lora_dtype: str, cuda: bool) -> Dtypes:
    residual = "float32" if stack.upcasts(knobs.quant) else knobs.compute_dtype
    autocast = stack.autocast and knobs.mixed_precision != "no"
    compute = {"bf16": "bfloat16", "fp16": "float16"}[knobs.mixed_precision] if autocast else residual
    mask = 1 if cuda else TORCH_DTYPE_BYTES[lora_dtype]
    return Dtypes(residual=residual, compute=compute, lora=lora_dtype, mask_bytes=mask)


def lora_input_copy(x_dtype: str, dt: Dtypes, dropout: float, autocast: bool) -> int:
    """Bytes per input element a LoRA branch saves apart from its input (0 when it can share the input).

    peft casts the input to the LoRA dtype; with dropout, ``lora_A`` saves the dropped copy and
    dropout its mask; under autocast ``lora_A`` saves the input cast to the autocast dtype.
    """
    consumed = dt.compute if autocast else dt.lora
    if dropout > 0:
        return TORCH_DTYPE_BYTES[consumed] + dt.mask_bytes
    return 0 if x_dtype == dt.lora == consumed else TORCH_DTYPE_BYTES[consumed]


def attention_path(knobs: Knobs, sliding: bool, window: int | None, rows: int, kv_len: int) -> AttentionPath:
    """Which kernel runs, as transformers' masking_utils and sdpa_attention decide.

    SDPA skips the mask (and runs the flash kernel without repeating K/V heads) only when no
    token is masked: one row, or rows of equal length; a padded batch, packed sequences
    (padding-free rows get a block-diagonal mask) or a sliding window shorter than the row
    make it materialise a mask, repeat K/V and use the memory-efficient kernel.
    """
    if knobs.attention == "eager":
        return "eager"
    if knobs.attention == "flash_attention_2":
        return "flash"
    masked = knobs.packing or rows > 1 or (sliding and window is not None and kv_len > window)
    return "masked" if masked else "flash"


@lru_cache(maxsize=64)
def split_linears(shapes: ModelShapes) -> dict[str, list[Linear]]:
    """One block's linear layers by what they read: the attention input, the attention output,
    the MLP input, or the MLP's hidden activation."""
    roles: dict[str, list[Linear]] = {"attn_in": [], "attn_out": [], "mlp_in": [], "mlp_hidden": []}
    inter = shapes.intermediate
    for lin in shapes.per_layer_linears:
        if lin.group == "attention":
            out = lin.leaf in _OUT_PROJ or lin.in_features != shapes.hidden
            roles["attn_out" if out else "attn_in"].append(lin)
        else:
            down = lin.leaf in _DOWN_PROJ or (lin.in_features == inter and lin.out_features == shapes.hidden)
            roles["mlp_hidden" if down else "mlp_in"].append(lin)
    return roles


@dataclass(frozen=True)
class LayerSaved:
    """Bytes per token one layer keeps for backward: the attention half and the MLP half.

    The backward pass consumes the MLP half first, so the attention's backward runs after it is freed.
    """

    attention_side: float
    mlp_side: float

    @property
    def total(self) -> float:
        return self.attention_side + self.mlp_side


def layer_saved(
    shapes: ModelShapes,
    knobs: Knobs,
    dt: Dtypes,
    leaves: frozenset[str],
    path: AttentionPath,
    kv_len: int,
    autocast: bool,
) -> LayerSaved:
    """What one decoder layer saves per token, when its input requires a gradient."""
    h, nh, nkv, d = shapes.hidden, shapes.heads, shapes.kv_heads, shapes.head_dim
    roles = split_linears(shapes)
    lora_out = knobs.lora_r * (dt.comp if autocast else TORCH_DTYPE_BYTES[dt.lora])

    norm = 4 * h + NORM_SAVED_EXTRA
    attention_norms = norm * (shapes.norms_per_layer // 2)
    mlp_norms = norm * (shapes.norms_per_layer - shapes.norms_per_layer // 2)
    if shapes.has_qk_norm:
        attention_norms += 4 * (nh + nkv) * d + NORM_SAVED_EXTRA * (nh + nkv)

    def inputs(role: str, x_dtype: str, shared_elsewhere: bool) -> float:
        """LoRA's saved inputs for the modules reading one tensor; the tensor itself once if shared."""
        total, shared = 0.0, False
        for lin in roles[role]:
            if lin.leaf not in leaves:
                continue
            copy = lora_input_copy(x_dtype, dt, knobs.lora_dropout, autocast)
            total += copy * lin.in_features + lora_out
            shared = shared or copy == 0
            if knobs.use_dora:
                total += dt.comp * (lin.in_features + lin.out_features)
        width = roles[role][0].in_features if roles[role] else 0
        if shared and not shared_elsewhere:
            total += TORCH_DTYPE_BYTES[x_dtype] * width
        return total

    q_width, kv_width = nh * d, nkv * d
    a = dt.comp
    attention: float
    if path == "flash":
        attention = a * (2 * q_width + 2 * kv_width) + 4 * nh
    elif path == "masked":
        attention = a * 4 * q_width + 4 * nh + a * kv_len
    else:
        probs = 4 * nh * kv_len + (a * nh * kv_len if a != 4 else 0)
        softcap = a * nh * kv_len if shapes.attn_softcap else 0
        attention = a * 3 * q_width + probs + softcap

    attention += inputs("attn_in", dt.residual, False) + inputs("attn_out", dt.compute, path != "eager")
    gated = len(roles["mlp_in"]) >= 2
    mlp: float = a * shapes.intermediate * (3 if gated else 1)
    mlp += inputs("mlp_in", dt.residual, False) + inputs("mlp_hidden", dt.compute, False)
    return LayerSaved(attention_side=attention_norms + attention, mlp_side=mlp_norms + mlp)
