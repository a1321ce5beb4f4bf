"""Which tensors a GGUF holds, under which names, in which type, and how each is transformed.

Planned from the safetensors headers before anything is written, so the writer can lay out
the file and then convert and write one tensor at a time (RAM: one tensor, whatever the
model's size). Type rules follow llama.cpp's converter: 1-D tensors, norms and biases stay
F32; Q8_0 needs rows that are a multiple of its 32-value block, and a tensor whose rows are
not (the ``QuantError`` case of ``gguf.quants``) is written F16 instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Any

from backend.export.errors import ExportError
from backend.export.gguf.arch import ArchSpec, global_rope, llama3_rope_factors
from backend.export.safetensors_io import TensorEntry

if TYPE_CHECKING:
    import numpy as np
    import torch

FILE_TYPES = ("f16", "bf16", "q8_0")
"""Types written directly; the K-quants are made from an F16/BF16 file (see quantize.py)."""
_SKIPPED_SUFFIXES = (".rotary_emb.inv_freq",)


@dataclass(frozen=True)
class TensorPlan:
    """One tensor of the output file."""

    source: str | None
    """The safetensors name, or None for a tensor computed here (``rope_freqs``)."""
    name: str
    shape: tuple[int, ...]
    qtype: Any
    """gguf.GGMLQuantizationType."""
    permute_heads: int | None = None
    shift: float = 0.0

    @property
    def nbytes(self) -> int:
        import gguf

        block, size = gguf.GGML_QUANT_SIZES[self.qtype]
        return prod(self.shape) // block * size

    @property
    def byte_shape(self) -> tuple[int, ...]:
        import gguf

        return tuple(gguf.quants.quant_shape_to_byte_shape(self.shape, self.qtype))


def default_qtype(file_type: str) -> Any:
    import gguf

    types = {"f16": gguf.GGMLQuantizationType.F16, "bf16": gguf.GGMLQuantizationType.BF16}
    return types.get(file_type, gguf.GGMLQuantizationType.Q8_0)


def plan_tensors(entries: list[TensorEntry], spec: ArchSpec, config: Any, file_type: str) -> list[TensorPlan]:
    """Map every weight to its GGUF name and type; tied output heads are left out (llama.cpp reuses the embedding)."""
    import gguf

    arch = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == spec.gguf_arch)
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    heads = {"q_proj": config.num_attention_heads, "k_proj": getattr(config, "num_key_value_heads", None)}
    plans = []
    rope = global_rope(config)
    if rope["rope_type"] == "llama3":
        rope_name = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"
        plans.append(TensorPlan(None, rope_name, (len(llama3_rope_factors(config)),), gguf.GGMLQuantizationType.F32))
    for entry in entries:
        if entry.name.endswith(_SKIPPED_SUFFIXES) or (tied and entry.name == "lm_head.weight"):
            continue
        name = names.get_name(entry.name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ExportError(
                f"The model has a tensor llama.cpp's {spec.gguf_arch} layout has no place for: {entry.name}.",
                hint="Is this a modified architecture? llama.cpp's own converter may know it.",
            )
        module = entry.name.rsplit(".", 2)[-2]
        plans.append(
            TensorPlan(
                source=entry.name,
                name=name,
                shape=entry.shape,
                qtype=_qtype(name, entry.shape, file_type),
                permute_heads=heads.get(module) if spec.permute_qk else None,
                shift=spec.norm_shift if entry.name.endswith("norm.weight") else 0.0,
            )
        )
    return plans


def tensor_data(plan: TensorPlan, tensor: torch.Tensor | None, config: Any) -> np.ndarray:
    """The bytes (as an array the writer accepts) of one planned tensor."""
    import gguf
    import numpy as np

    data = np.asarray(llama3_rope_factors(config), dtype=np.float32) if tensor is None else tensor.float().numpy()
    if plan.shift:
        data = data + np.float32(plan.shift)
    if plan.permute_heads:
        data = permute_rotary(data, plan.permute_heads)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), plan.qtype)


def permute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotate-half Q/K rows → llama.cpp's interleaved pairs, head by head."""
    rows = weight.shape[0]
    grouped = weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])  # numpy types this as Any
    permuted: np.ndarray = grouped.swapaxes(1, 2).reshape(weight.shape)
    return permuted


def _qtype(name: str, shape: tuple[int, ...], file_type: str) -> Any:
    import gguf

    if len(shape) <= 1 or name.endswith("_norm.weight") or not name.endswith(".weight"):
        return gguf.GGMLQuantizationType.F32
    qtype = default_qtype(file_type)
    try:
        gguf.quants.quant_shape_to_byte_shape(shape, qtype)
    except ValueError:  # the row length is not a whole number of quantization blocks
        return gguf.GGMLQuantizationType.F16
    return qtype
