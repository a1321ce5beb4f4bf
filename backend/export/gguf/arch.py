"""What llama.cpp needs to know per architecture: GGUF arch name, metadata keys, tensor quirks.

Facts (see docs/export.md): Llama-family Q/K weights are permuted from HF's rotate-half
layout to llama.cpp's interleaved RoPE; Qwen2/3 and Gemma use NEOX RoPE and are written
as they are. Gemma's RMSNorm multiplies by ``1 + w``, llama.cpp's by ``w``, so every Gemma
norm weight gets +1. Gemma 2 and 3 carry soft-capping and sliding-window keys; llama.cpp
fixes their local/global layer pattern (every 2nd / every 6th layer global) and the
attention scale (1/sqrt(head_dim)), so a model that differs is exported with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from backend.export.errors import ExportError


@dataclass(frozen=True)
class ArchSpec:
    """How one Hugging Face ``model_type`` is written for llama.cpp."""

    gguf_arch: str
    permute_qk: bool = False
    norm_shift: float = 0.0
    write_rope_dims: bool = False
    swa_period: int | None = None
    """llama.cpp's built-in local/global pattern: every ``swa_period``-th layer is global."""
    transformers_config: bool = True
    """transformers 5.23 rebuilds the full config from this arch's GGUF metadata, so the logits check may
    trust it (it does not read Gemma's soft-capping and query scaling, nor Qwen3's head_dim)."""
    transformers_loads: bool = True
    """transformers 5.23's GGUF loader knows this arch at all."""


ARCHS: dict[str, ArchSpec] = {
    "llama": ArchSpec("llama", permute_qk=True, write_rope_dims=True),
    "mistral": ArchSpec("llama", permute_qk=True, write_rope_dims=True),
    "qwen2": ArchSpec("qwen2"),
    "qwen3": ArchSpec("qwen3", transformers_config=False),  # its GGUF config mapping drops head_dim
    "gemma": ArchSpec("gemma", norm_shift=1.0, transformers_config=False, transformers_loads=False),
    "gemma2": ArchSpec("gemma2", norm_shift=1.0, swa_period=2, transformers_config=False),
    "gemma3_text": ArchSpec("gemma3", norm_shift=1.0, swa_period=6, transformers_config=False),
}
GEMMA_ARCHS = frozenset({"gemma", "gemma2", "gemma3"})


def arch_for(config: Any) -> ArchSpec:
    """The spec for a transformers config; ExportError names the supported families otherwise."""
    model_type = config.model_type
    if model_type == "gemma3":
        raise ExportError(
            "This is the multimodal Gemma 3 (image + text); LoRA Studio exports text-only models to GGUF.",
            hint="Use a text-only Gemma 3 (gemma-3-1b or -270m), or llama.cpp's own converter for the vision part.",
        )
    if model_type not in ARCHS:
        raise ExportError(
            f"LoRA Studio cannot write {model_type} models to GGUF yet; supported: Llama, Mistral, SmolLM, "
            "TinyLlama, Qwen2/2.5/3, Gemma 1/2/3 (text).",
            hint="Export the merged safetensors and convert them with llama.cpp's convert_hf_to_gguf.py.",
        )
    return ARCHS[model_type]


def write_hparams(writer: Any, spec: ArchSpec, config: Any, vocab_size: int) -> list[str]:
    """Write the ``{arch}.*`` keys llama.cpp reads; returns warnings about behaviour it cannot reproduce."""
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(vocab_size)
    head_dim = head_dim_of(config)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    rope = global_rope(config)
    writer.add_rope_freq_base(rope["rope_theta"])
    if spec.write_rope_dims:
        writer.add_rope_dimension_count(int(head_dim * rope.get("partial_rotary_factor", 1.0)))
    _write_rope_scaling(writer, rope)
    if spec.gguf_arch in GEMMA_ARCHS:
        return _write_gemma(writer, spec, config, head_dim)
    return []


def head_dim_of(config: Any) -> int:
    head_dim: int = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return head_dim


def global_rope(config: Any) -> dict[str, Any]:
    """RoPE parameters of the full-attention layers (Gemma 3 keeps one set per layer type)."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    if "full_attention" in params:
        params = dict(params["full_attention"])
    params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    params.setdefault("rope_type", "default")
    return params


def llama3_rope_factors(config: Any) -> list[float]:
    """The per-frequency divisors llama.cpp reads from ``rope_freqs.weight`` for Llama 3.1-style scaling."""
    rope = global_rope(config)
    dim = int(head_dim_of(config) * rope.get("partial_rotary_factor", 1.0))
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    original = rope["original_max_position_embeddings"]
    low_wavelen, high_wavelen = original / low, original / high
    factors = []
    for i in range(0, dim, 2):
        wavelen = 2 * math.pi * rope["rope_theta"] ** (i / dim)
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return factors


def _write_rope_scaling(writer: Any, rope: dict[str, Any]) -> None:
    import gguf

    kind = rope["rope_type"]
    if kind == "default":
        return
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(rope["factor"])
    elif kind == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(rope["factor"])
        writer.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
    elif kind != "llama3":  # llama3 scaling travels as the rope_freqs tensor, with no keys
        raise ExportError(f"RoPE scaling '{kind}' cannot be written to GGUF by LoRA Studio yet.")


def _write_gemma(writer: Any, spec: ArchSpec, config: Any, head_dim: int) -> list[str]:
    warnings = []
    if spec.gguf_arch == "gemma2":
        writer.add_attn_logit_softcapping(config.attn_logit_softcapping or 0.0)
        writer.add_final_logit_softcapping(config.final_logit_softcapping or 0.0)
    elif getattr(config, "final_logit_softcapping", None):
        writer.add_final_logit_softcapping(config.final_logit_softcapping)
    layer_types = getattr(config, "layer_types", None) or []
    if getattr(config, "sliding_window", None) and "sliding_attention" in layer_types:
        writer.add_sliding_window(config.sliding_window)
        writer.add_sliding_window_pattern([kind == "sliding_attention" for kind in layer_types])
        assert spec.swa_period is not None  # every Gemma with sliding-window layers has a local/global period
        expected = [(i + 1) % spec.swa_period != 0 for i in range(len(layer_types))]
        if [kind == "sliding_attention" for kind in layer_types] != expected:
            warnings.append(
                f"llama.cpp makes every {spec.swa_period}th {spec.gguf_arch} layer global, but this model's layer "
                f"pattern differs; llama.cpp's outputs will differ once a prompt exceeds the "
                f"{config.sliding_window}-token window."
            )
    local = (getattr(config, "rope_parameters", None) or {}).get("sliding_attention")
    if local:
        writer.add_rope_freq_base_swa(local["rope_theta"])
        if local["rope_theta"] != 10000.0:
            warnings.append("llama.cpp versions before local-RoPE keys assume a local RoPE base of 10000.")
    scalar = getattr(config, "query_pre_attn_scalar", None)
    if scalar is not None and scalar != head_dim:
        warnings.append(
            f"llama.cpp scales {spec.gguf_arch} attention by 1/sqrt(head_dim={head_dim}) but this model uses "
            f"query_pre_attn_scalar={scalar} (only Gemma 27B models are special-cased)."
        )
    return warnings
