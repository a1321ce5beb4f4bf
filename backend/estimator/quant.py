"""Bytes that a frozen linear weight takes once bitsandbytes has quantized it.

Derived from what bitsandbytes 0.50 stores (``functional.quantize_4bit``,
``nn.Int8Params``) rather than quoted, so a changed block size changes the answer:

* 4-bit (NF4 or FP4), block size 64: two weights per byte, plus one absolute
  maximum per block of 64. Without double quantization the absmax is fp32:
  0.5 + 4/64 = 0.5625 bytes per weight. With it, the absmaxes minus their mean are
  themselves quantized to 8 bits in blocks of 256, each block keeping an fp32 absmax:
  0.5 + 1/64 + 4/(64*256) = 0.51587 bytes per weight (the QLoRA paper's 0.516;
  Dettmers et al. 2023, section 3). Per weight also a 16-entry code table, and with nesting
  an fp32 offset and the 256-entry map.
* 8-bit (LLM.int8): one int8 per weight plus an fp32 scale per output row.
"""

from __future__ import annotations

from math import ceil

BLOCKSIZE_4BIT = 64
"""bitsandbytes' default ``Params4bit`` block size, which transformers' BitsAndBytesConfig keeps."""
BLOCKSIZE_NESTED = 256
"""Block size of the second quantization of the absmax values (``quantize_blockwise(..., blocksize=256)``)."""
CODE_4BIT_BYTES = 16 * 4
"""The NF4/FP4 code table (16 fp32 values) each QuantState holds."""
OFFSET_BYTES = 4
"""The fp32 mean subtracted from the absmaxes before nesting."""
NESTED_CODE_BYTES = 256 * 4
"""The 256-entry fp32 dynamic map of the nested quantization; each weight's QuantState holds its own copy
(tests/test_estimator.py checks this against bitsandbytes)."""


def bytes_per_param_4bit(double_quant: bool, blocksize: int = BLOCKSIZE_4BIT) -> float:
    """Average bytes per weight of a large 4-bit matrix (no per-tensor constants)."""
    if double_quant:
        return 0.5 + 1 / blocksize + 4 / (blocksize * BLOCKSIZE_NESTED)
    return 0.5 + 4 / blocksize


def linear_4bit_bytes(numel: int, double_quant: bool, blocksize: int = BLOCKSIZE_4BIT) -> int:
    """Exact bytes of one 4-bit weight: packed nibbles, absmax (plain or nested) and the code table."""
    blocks = ceil(numel / blocksize)
    packed = (numel + 1) // 2
    nested = blocks + 4 * ceil(blocks / BLOCKSIZE_NESTED) + OFFSET_BYTES + NESTED_CODE_BYTES
    scales = nested if double_quant else 4 * blocks
    return packed + scales + CODE_4BIT_BYTES


def linear_8bit_bytes(in_features: int, out_features: int) -> int:
    """Exact bytes of one LLM.int8 weight: int8 values and an fp32 scale (SCB) per output row."""
    return in_features * out_features + 4 * out_features
