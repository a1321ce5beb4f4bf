"""The memory of one training step, moment by moment, from shapes, settings and library behaviour.

A step's peak is the largest of a few moments: the end of the forward pass (all saved
activations plus the loss's temporaries), the loss's backward, the first layer's
backward (with gradient checkpointing, that layer's activations recomputed), the
optimizer step and an evaluation batch. Weights, adapter, gradients and optimizer
state are present at every moment; the estimate keeps the moment with the most.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import ceil

from backend.estimator.activations import (
    BATCH_BYTES,
    HEAD_SAVED_EXTRA,
    NORM_SAVED_EXTRA,
    Dtypes,
    LayerSaved,
    attention_path,
    dtypes,
    layer_saved,
)
from backend.estimator.adapter import adapter_size, trainable_dtype
from backend.estimator.knobs import Knobs
from backend.estimator.quant import linear_4bit_bytes, linear_8bit_bytes
from backend.estimator.result import GpuMemory
from backend.estimator.stack import Stack
from backend.estimator.workspaces import cublas_workspaces
from backend.models.shapes import TORCH_DTYPE_BYTES, ModelShapes

HEAD_TOKEN_TILE = 4096
"""trl's chunked log-prob kernel projects this many tokens at a time (kernels/chunked_logprob.py TOKEN_CHUNK_SIZE)."""
HEAD_VOCAB_TILE = 32768
"""...against this many vocabulary rows (trainer/utils.py _CHUNKED_LOGPROB_CHUNK_SIZE); the buffer is this wide
even for a smaller vocabulary."""
HEAD_TORCH_FORWARD = 13
"""Bytes per tile element of the torch fallback (no Triton) in the forward: fp32 logits, exponentials,
masks. Measured with tests/test_estimator_cpu.py's tracker on the installed trl (3.25 fp32 copies)."""
HEAD_TORCH_BACKWARD = 29
"""The same for the backward (7.25 fp32 copies)."""
ADAMW_FOREACH_COPIES = 2
"""torch.optim.AdamW's foreach step holds about two temporary lists the size of the parameters."""
BNB_MIN_8BIT_SIZE = 4096
"""bitsandbytes keeps 32-bit state for tensors smaller than this (``min_8bit_size``)."""
BNB_BLOCK = 256
"""Block size of the 8-bit optimizer's per-block absmax."""


@dataclass(frozen=True)
class StepMemory:
    """Every component of one step's memory, in bytes, and the moment of the peak."""

    workspaces: int
    base_quantized: int
    base_other: int
    trainable_count: int
    trainable: int
    gradients: int
    optimizer: int
    optimizer_pageable: bool
    saved_layers: int
    saved_other: int
    head_saved: int
    head_forward: int
    head_backward: int
    recompute: int
    layer_backward: int
    dequant: int
    optimizer_step: int
    eval_working: int
    reference_forward: int  # DPO, KTO: the reference's forward without gradients (0 for the others)
    largest_temporary: int
    tokens: int
    phases: dict[str, int]

    @property
    def persistent(self) -> int:
        weights = self.base_quantized + self.base_other
        return self.workspaces + weights + self.trainable + self.gradients + self.optimizer

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=self.phases.__getitem__)

    @property
    def peak(self) -> int:
        return self.phases[self.peak_phase]


def base_weights(shapes: ModelShapes, knobs: Knobs, stack: Stack) -> tuple[int, int]:
    """(quantized linear layers, everything else) in bytes, as loaded and after any upcast."""
    load = TORCH_DTYPE_BYTES[knobs.compute_dtype]
    if knobs.quant == "none":
        return 0, shapes.parameter_count * load
    other = shapes.parameter_count - shapes.linear_params
    if not stack.upcast_frozen_fp32:
        other_bytes = other * load
    elif stack.recast_embeddings_16bit:
        other_bytes = (other - shapes.embedding_head_params) * 4 + shapes.embedding_head_params * 2
    else:
        other_bytes = other * 4
    return _quantized_bytes(shapes, knobs.quant, knobs.double_quant), other_bytes


@lru_cache(maxsize=64)
def _quantized_bytes(shapes: ModelShapes, quant: str, double_quant: bool) -> int:
    if quant == "int8":
        return sum(linear_8bit_bytes(lin.in_features, lin.out_features) for lin in shapes.linears)
    return sum(linear_4bit_bytes(lin.in_features * lin.out_features, double_quant) for lin in shapes.linears)


def _optimizer_state(knobs: Knobs, shapes: ModelShapes, trainable_count: int, param_bytes: int) -> int:
    """Optimizer state in bytes, per torch.optim.AdamW or bitsandbytes' (paged) 8/32-bit AdamW."""
    opt = knobs.optimizer
    if opt == "adamw_torch":
        return 2 * trainable_count * param_bytes  # exp_avg and exp_avg_sq, zeros_like(param)
    if opt == "paged_adamw_32bit":
        return 8 * trainable_count  # bitsandbytes keeps 32-bit state in fp32 whatever the param dtype
    if opt in ("adamw_8bit", "paged_adamw_8bit"):
        return _bnb_8bit_state(shapes, knobs.targets, knobs.lora_r, knobs.modules_to_save)
    if opt == "adafactor":
        return 4 * sum(rows + cols for rows, cols in _trainable_matrices(shapes, knobs.targets, knobs.lora_r))
    return 0  # sgd without momentum


def _bnb_8bit_bytes(numel: int) -> int:
    if numel < BNB_MIN_8BIT_SIZE:
        return 8 * numel
    return 2 * (numel + 4 * ceil(numel / BNB_BLOCK))


@lru_cache(maxsize=256)
def _trainable_matrices(shapes: ModelShapes, targets: str | tuple[str, ...], r: int) -> tuple[tuple[int, int], ...]:
    """(rows, columns) of every LoRA A and B matrix."""
    leaves = adapter_size(shapes, targets, r, False, ()).targeted_leaves
    mats: list[tuple[int, int]] = []
    for lin in shapes.linears:
        if lin.leaf in leaves:
            mats += [(r, lin.in_features), (lin.out_features, r)]
    return tuple(mats)


@lru_cache(maxsize=256)
def _bnb_8bit_state(shapes: ModelShapes, targets: str | tuple[str, ...], r: int, saved: tuple[str, ...]) -> int:
    tensors = [rows * cols for rows, cols in _trainable_matrices(shapes, targets, r)]
    extra = adapter_size(shapes, targets, r, False, saved).saved_module_params
    return sum(_bnb_8bit_bytes(n) for n in tensors) + (_bnb_8bit_bytes(extra) if extra else 0)


def step_memory(shapes: ModelShapes, knobs: Knobs, stack: Stack, gpu: GpuMemory | None, seq_len: int) -> StepMemory:
    """All components of one training step at micro-batch ``knobs.micro_batch`` x ``seq_len`` tokens."""
    cuda = gpu is None or gpu.kind == "cuda"
    triton = cuda and (gpu is None or gpu.triton)
    autocast = stack.autocast and knobs.mixed_precision != "no"
    lora_dtype = trainable_dtype(knobs.quant, stack.quantized_trainable_dtype)
    dt = dtypes(knobs, stack, lora_dtype, cuda)
    h, n_layers = shapes.hidden, shapes.layers
    rows = knobs.micro_batch * knobs.sequences_per_example
    tokens = rows * seq_len
    # Padding-free packing flattens the micro-batch into one row, so attention spans all of it.
    mask_rows, kv_len = (1, tokens) if knobs.packing else (rows, seq_len)

    base_q, base_o = base_weights(shapes, knobs, stack)
    size = adapter_size(shapes, knobs.targets, knobs.lora_r, knobs.use_dora, knobs.modules_to_save)
    lora_bytes = TORCH_DTYPE_BYTES[lora_dtype]
    saved_dtype = lora_bytes if knobs.quant != "none" else TORCH_DTYPE_BYTES[knobs.compute_dtype]
    trainable = size.lora_params * lora_bytes + size.dora_params * 4 + size.saved_module_params * saved_dtype
    count = size.lora_params + size.dora_params + size.saved_module_params
    optimizer = _optimizer_state(knobs, shapes, count, lora_bytes)

    # -- saved activations --------------------------------------------------------
    per_kind: dict[tuple[str, int], LayerSaved] = {}
    layer_counts: dict[tuple[str, int], int] = {}
    for kind in shapes.layer_types:
        sliding = kind == "sliding_attention"
        path = attention_path(knobs, sliding, shapes.sliding_window, mask_rows, kv_len)
        # Eager attention scores every pair in the row whatever the window; the mask hides the rest.
        key = (path, kv_len)
        layer_counts[key] = layer_counts.get(key, 0) + 1
        if key not in per_kind:
            per_kind[key] = layer_saved(shapes, knobs, dt, size.targeted_leaves, path, kv_len, autocast)
    widest = max(per_kind.values(), key=lambda saved: saved.total)
    largest_layer = widest.total
    input_norm = 4 * h + NORM_SAVED_EXTRA
    saved_layers: float
    if knobs.checkpointing:
        saved_layers = n_layers * dt.res * h * tokens
    else:
        # Without checkpointing the embeddings' output needs no gradient, so layer 0's first norm saves nothing.
        saved_layers = sum(per_kind[k].total * c for k, c in layer_counts.items()) * tokens - input_norm * tokens
    masks = _mask_bytes(shapes, per_kind, mask_rows, kv_len, dt)
    head_saved = (dt.res * h + HEAD_SAVED_EXTRA) * tokens if stack.loss == "fused" else dt.comp * h * tokens
    saved_other = (
        input_norm * tokens + BATCH_BYTES * tokens + 2 * dt.res * shapes.head_dim * seq_len + masks + head_saved
    )

    # -- temporaries ----------------------------------------------------------------
    head_fwd, head_bwd = _head_temporaries(shapes, knobs, stack, dt, tokens, triton)
    recompute = int(largest_layer * tokens) if knobs.checkpointing else 0
    dequant = _dequant_bytes(shapes, knobs, "mlp")
    layer_bwd = int(_layer_backward(shapes, dt, knobs, kv_len, widest) * tokens) + dequant
    opt_step = ADAMW_FOREACH_COPIES * trainable if knobs.optimizer == "adamw_torch" else 0
    opt_step += int(stack.logits_copies_step * 4 * tokens * shapes.vocab)
    forward_working = max(int(largest_layer * tokens) + dequant, head_fwd)
    eval_working = forward_working + BATCH_BYTES * tokens
    # DPO and KTO run the reference forward after the training forward, while its activations are held.
    reference = forward_working if knobs.reference_forward else 0

    workspaces = cublas_workspaces(gpu) if cuda else 0
    persistent = workspaces + base_q + base_o + trainable + trainable + optimizer
    held = persistent + int(saved_layers) + int(saved_other)
    phases = {
        "end of the forward pass": held + head_fwd,
        "loss backward": held + head_bwd,
        "first layer's backward": held - head_saved + recompute + layer_bwd,
        "optimizer step": persistent + opt_step,
        "evaluation batch": persistent - trainable + eval_working,
    }
    if reference:
        phases["reference forward"] = held + reference
    return StepMemory(
        workspaces=workspaces,
        base_quantized=base_q,
        base_other=base_o,
        trainable_count=count,
        trainable=trainable,
        gradients=trainable,
        optimizer=optimizer,
        optimizer_pageable=knobs.optimizer.startswith("paged"),
        saved_layers=int(saved_layers),
        saved_other=int(saved_other) - head_saved,
        head_saved=head_saved,
        head_forward=head_fwd,
        head_backward=head_bwd,
        recompute=recompute,
        layer_backward=layer_bwd,
        dequant=dequant,
        optimizer_step=opt_step,
        eval_working=eval_working,
        reference_forward=reference,
        largest_temporary=_largest_temporary(shapes, stack, dt, tokens),
        tokens=tokens,
        phases=phases,
    )


def _mask_bytes(
    shapes: ModelShapes, per_kind: dict[tuple[str, int], LayerSaved], rows: int, kv_len: int, dt: Dtypes
) -> int:
    """The attention masks transformers builds once per step (one per kind of layer, full and sliding):
    bool for SDPA, the model dtype for eager."""
    paths = {path for path, _ in per_kind}
    kinds = len(set(shapes.layer_types))
    if "eager" in paths:
        return kinds * dt.res * rows * kv_len * kv_len
    if "masked" in paths:
        return kinds * rows * kv_len * kv_len
    return 0


def _head_temporaries(
    shapes: ModelShapes, knobs: Knobs, stack: Stack, dt: Dtypes, tokens: int, triton: bool
) -> tuple[int, int]:
    """(forward, backward) temporaries of the loss: trl's chunked head, or the full fp32 logits."""
    h, vocab = shapes.hidden, shapes.vocab
    if stack.loss == "logits":
        logits = 4 * tokens * vocab
        return int(stack.logits_copies_forward * logits), int(stack.logits_copies_backward * logits)
    n, width = min(tokens, HEAD_TOKEN_TILE), min(vocab, HEAD_VOCAB_TILE)
    buffer = n * HEAD_VOCAB_TILE * dt.comp
    casts = (dt.comp * width * h if dt.residual != dt.compute else 0) + (dt.comp * n * h if dt.res != dt.comp else 0)
    stats = 7 * 4 * tokens  # running max, sums and outputs, fp32 per token
    forward = buffer + casts + stats + (0 if triton else HEAD_TORCH_FORWARD * n * width)
    grad_hidden = 4 * h * tokens + (dt.res * h * tokens if dt.res != 4 else 0) + dt.res * h * tokens
    head_trained = "lm_head" in knobs.modules_to_save
    backward = buffer + casts + grad_hidden + (0 if triton else HEAD_TORCH_BACKWARD * n * width)
    backward += 4 * vocab * h if head_trained else 0
    return forward, backward


def _largest_temporary(shapes: ModelShapes, stack: Stack, dt: Dtypes, tokens: int) -> int:
    """The loss's biggest single buffer: one fp32 logits copy, or the chunked head's tile."""
    if stack.loss == "logits":
        return 4 * tokens * shapes.vocab
    return min(tokens, HEAD_TOKEN_TILE) * HEAD_VOCAB_TILE * dt.comp


def _layer_backward(shapes: ModelShapes, dt: Dtypes, knobs: Knobs, kv_len: int, saved: LayerSaved) -> float:
    """Working memory per token of one layer's backward, beyond what the layer saved.

    The MLP goes first: the gradient of its hidden activation splits into two (the down
    projection's saved input is freed by then). Attention follows once the MLP's half is freed.
    Both carry the residual stream's gradient and the fp32 gradient inside a norm.
    """
    h, nh, nkv, d = shapes.hidden, shapes.heads, shapes.kv_heads, shapes.head_dim
    residual = 2 * dt.res * h + 4 * h
    mlp = 2 * dt.comp * shapes.intermediate
    eager = (8 + dt.comp) * nh * kv_len
    attention = eager if knobs.attention == "eager" else dt.comp * (nh + 2 * nkv) * d + 4 * nh * d
    return residual + max(mlp, attention - saved.mlp_side)


def _dequant_bytes(shapes: ModelShapes, knobs: Knobs, group: str) -> int:
    """bitsandbytes dequantizes a whole weight, in its compute dtype (the load dtype here), for each
    backward matmul (and for forward matmuls of more than 1536 tokens): one weight-sized temporary."""
    if knobs.quant == "none":
        return 0
    largest = max(
        (lin.in_features * lin.out_features for lin in shapes.per_layer_linears if lin.group == group),
        default=shapes.largest_linear,
    )
    absmax = 4 * ceil(largest / 64) if knobs.quant in ("nf4", "fp4") and knobs.double_quant else 0
    return TORCH_DTYPE_BYTES[knobs.compute_dtype] * largest + absmax
