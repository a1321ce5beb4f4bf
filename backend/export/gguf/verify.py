"""Read a written GGUF back and prove it: metadata, tensor table, tokenizer and logits.

1. ``check_file``: the ``gguf`` reader must find every key llama.cpp reads for the arch, with
   the values the source config implies, and exactly the planned tensors in the planned
   shapes and types.
2. ``check_logits``: transformers' own GGUF loader (independent of this converter: it undoes
   the Q/K permutation and Gemma's +1 in its own code) rebuilds the model, and its logits are
   compared with the source model's; its tokenizer must encode sample text identically.
   transformers 5.23 cannot load a ``gemma`` (Gemma 1) file, so those tensors are read with
   its Gemma tensor processor and name map instead. For Gemma 2/3 it ignores the soft-capping
   and query-scaling keys, so the model is built from the source config; step 1 checks the keys.
3. ``check_llama_cpp``: when llama-cpp-python is installed, llama.cpp itself loads the file,
   its logits are compared the same way, and it generates a few tokens.
"""

from __future__ import annotations

import gc
import math
from pathlib import Path
from typing import Any

from backend.export.errors import VerificationError
from backend.export.gguf.arch import GEMMA_ARCHS, global_rope, head_dim_of
from backend.export.gguf.convert import FILE_TYPE_IDS, GgufPlan
from backend.export.gguf.quantize import K_QUANTS
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

GGUF_TOLERANCE = {
    "f16": Tolerance(0.01, "rounding weights to float16 (exact from a bfloat16 source, barring overflow)"),
    "bf16": Tolerance(0.03, "rounding weights to bfloat16 (exact from a bfloat16 source)"),
    "q8_0": Tolerance(0.15, "8-bit blocks of 32 weights with one scale each", min_top1=0.9),
    "q6_k": Tolerance(0.2, "6-bit K-quant blocks", min_top1=0.85),
    "q5_k_m": Tolerance(0.3, "5-bit K-quant blocks (6-bit for some tensors)", min_top1=0.8),
    "q4_k_m": Tolerance(0.4, "4-bit K-quant blocks (6-bit for some tensors)", min_top1=0.75),
}
"""Relative to the largest logit (see backend.export.logits); measured values are in docs/export.md."""
TOKENIZER_SAMPLES = (
    "The quick brown fox, 1234 times!",
    "  two spaces\nnew line\ttab",
    "héllo wörld 😀",
)


def required_keys(arch: str, tokenizer_model: str) -> list[str]:
    """The metadata keys llama.cpp reads without a default for this arch and tokenizer model."""
    keys = [
        "general.architecture", f"{arch}.context_length", f"{arch}.embedding_length", f"{arch}.block_count",
        f"{arch}.feed_forward_length", f"{arch}.attention.head_count", f"{arch}.attention.layer_norm_rms_epsilon",
        "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.eos_token_id",
    ]  # fmt: skip
    keys += ["tokenizer.ggml.pre", "tokenizer.ggml.merges"] if tokenizer_model == "gpt2" else ["tokenizer.ggml.scores"]
    return keys


def expected_metadata(plan: GgufPlan, file_type: str) -> dict[str, Any]:
    """Key → value the file must hold, from the source config (values llama.cpp would otherwise guess)."""
    a, config = plan.spec.gguf_arch, plan.config
    expected: dict[str, Any] = {
        "general.architecture": a,
        "general.type": "model",
        "general.file_type": {**FILE_TYPE_IDS, **K_QUANTS}[file_type],
        f"{a}.context_length": config.max_position_embeddings,
        f"{a}.embedding_length": config.hidden_size,
        f"{a}.block_count": config.num_hidden_layers,
        f"{a}.feed_forward_length": config.intermediate_size,
        f"{a}.attention.head_count": config.num_attention_heads,
        f"{a}.attention.head_count_kv": getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        f"{a}.attention.layer_norm_rms_epsilon": config.rms_norm_eps,
        f"{a}.attention.key_length": head_dim_of(config),
        f"{a}.rope.freq_base": global_rope(config)["rope_theta"],
        f"{a}.vocab_size": len(plan.vocab.tokens),
        "tokenizer.ggml.model": plan.vocab.model,
        "tokenizer.ggml.pre": plan.vocab.pre,
    }
    if plan.spec.write_rope_dims:
        expected[f"{a}.rope.dimension_count"] = head_dim_of(config)
    if a == "gemma2":
        expected[f"{a}.attn_logit_softcapping"] = config.attn_logit_softcapping or 0.0
        expected[f"{a}.final_logit_softcapping"] = config.final_logit_softcapping or 0.0
    if a in ("gemma2", "gemma3") and "sliding_attention" in (getattr(config, "layer_types", None) or []):
        expected[f"{a}.attention.sliding_window"] = config.sliding_window
    if a in GEMMA_ARCHS:
        expected["tokenizer.ggml.add_space_prefix"] = False
    return {key: value for key, value in expected.items() if value is not None}


def check_file(path: Path, plan: GgufPlan, file_type: str) -> None:
    """Raise VerificationError listing every key, value or tensor that is not what llama.cpp needs."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    problems = [f"missing key {key}" for key in required_keys(plan.spec.gguf_arch, plan.vocab.model)
                if key not in reader.fields]  # fmt: skip
    for key, value in expected_metadata(plan, file_type).items():
        found = field_value(reader, key)
        if not _same(found, value):
            problems.append(f"{key} = {found!r}, expected {value!r}")
    if len(reader.fields["tokenizer.ggml.tokens"].data) != len(plan.vocab.tokens):
        problems.append("token list length differs from the plan")
    if file_type in FILE_TYPE_IDS:  # a llama.cpp-quantized file has its own tensor types
        planned = {t.name: (t.shape, t.qtype) for t in plan.tensors}
        written = {t.name: (tuple(int(d) for d in reversed(t.shape)), t.tensor_type) for t in reader.tensors}
        differing = [name for name in sorted(set(planned) | set(written)) if planned.get(name) != written.get(name)]
        problems += [f"tensor {name}: written {written.get(name)}, planned {planned.get(name)}" for name in differing]
    embedding = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embedding is None or int(embedding.shape[1]) != len(plan.vocab.tokens):
        problems.append("token_embd.weight rows differ from the token count")
    if problems:
        raise VerificationError(f"{path.name} is not what llama.cpp needs: " + "; ".join(problems[:10]))


def check_logits(
    path: Path,
    plan: GgufPlan,
    file_type: str,
    reference: list[Any],
    ids: list[list[int]],
    precision: str = "float32",
    limits: str = "float32",
) -> LogitCheck:
    """Load the GGUF with transformers for a check in ``precision`` and compare its logits with the source
    model's, within the file type's limits widened as the source's precision requires (``limits``)."""
    tol = compute_tolerance(GGUF_TOLERANCE[file_type], limits)
    candidate = gguf_logits(path, plan, ids, precision, file_type)
    return require(compare(f"GGUF {file_type.upper()} (transformers) vs source", reference, candidate, tol), tol)


def gguf_logits(
    path: Path, plan: GgufPlan, ids: list[list[int]], precision: str = "float32", file_type: str = "f16"
) -> list[Any]:
    """The GGUF's logits on ``ids`` as transformers reads the file: dequantized into float32, or (``layerwise``)
    into 16 bits, computed layer by layer in float32. A BF16 or F16 file's values are exact in its own type; a
    quantized block's (an F16 scale times a small integer) round to float16 by about 0.02 %, far inside its
    limits."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    dtype = precision if precision != "layerwise" else ("bfloat16" if file_type == "bf16" else "float16")

    model = None
    if plan.spec.transformers_loads:
        _check_tokenizer(path, plan)
        trusted = plan.spec.transformers_config and _plain_rope(plan)
        kwargs = {} if trusted else {"config": AutoConfig.from_pretrained(plan.model_dir)}
        try:
            model = AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=getattr(torch, dtype), **kwargs
            )
        except NotImplementedError:  # transformers renames arch llama to mistral for a file named exactly "mistral"
            model = None
    if model is None:
        model = _load_with_processor(path, plan, dtype)
    candidate = check_logits_of(model.eval(), ids, precision)
    del model
    gc.collect()
    return candidate


LLAMA_CPP_SLACK = 2.0
"""llama.cpp multiplies quantized weights by activations it also rounds to 8 bits (Q8_0 or Q8_K blocks,
its CPU kernels' ``vec_dot_type``), an error transformers' dequantizing loader does not make: measured on
SmolLM2 + a random r=16 adapter, Q8_0 gave 4.8 % through transformers and 17.9 % through llama.cpp, with
top-1 agreement 100 % in both. Float files are computed in float and keep their limit."""


def llama_cpp_tolerance(file_type: str, precision: str = "float32") -> Tolerance:
    """The file type's limit, wider for llama.cpp's 8-bit activations (quantized files) and for a reference whose
    ``precision`` rounds (``check_ram``)."""
    tol = GGUF_TOLERANCE[file_type]
    if file_type not in ("f16", "bf16"):
        tol = Tolerance(tol.relative * LLAMA_CPP_SLACK, f"{tol.why}, and llama.cpp's 8-bit activations", tol.min_top1)
    return compute_tolerance(tol, precision)


def check_llama_cpp(
    path: Path, file_type: str, reference: list[Any] | None, ids: list[list[int]], precision: str = "float32"
) -> tuple[LogitCheck | None, str] | None:
    """llama.cpp's own logits for the same token ids (compared when there is a ``reference``, whose limits
    allow for ``precision``), and a short greedy generation; None when llama.cpp is not installed."""
    from backend.export.gguf.llama_cpp_run import installed, run_llama_cpp

    if not installed():
        return None
    import torch

    scores, text = run_llama_cpp(path, ids)
    if reference is None:
        return None, text
    candidate = [torch.from_numpy(rows) for rows in scores]
    tol = llama_cpp_tolerance(file_type, precision)
    check = compare(f"GGUF {file_type.upper()} (llama.cpp) vs source", reference, candidate, tol)
    return require(check, tol), text


def source_logits(model_dir: Path, precision: str = "float32") -> tuple[list[Any], list[list[int]], str]:
    """The source model's logits on the check prompts in ``precision`` (see ``check_ram``), the prompts, and the
    precision the limits must allow for."""
    from transformers import AutoTokenizer

    ids = prompt_ids(AutoTokenizer.from_pretrained(model_dir))
    model, effective = load_for_check(model_dir, precision)
    logits = check_logits_of(model, ids, precision)
    del model
    gc.collect()
    return logits, ids, effective


def field_value(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    return field.contents()


def _check_tokenizer(path: Path, plan: GgufPlan) -> None:
    from transformers import AutoTokenizer

    source = AutoTokenizer.from_pretrained(plan.model_dir)
    written = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    for text in (*TOKENIZER_SAMPLES, *source.all_special_tokens):
        if source(text)["input_ids"] != written(text)["input_ids"]:
            raise VerificationError(
                f"The GGUF's tokenizer encodes {text!r} as {written(text)['input_ids']} but the model's tokenizer "
                f"as {source(text)['input_ids']}."
            )


def _load_with_processor(path: Path, plan: GgufPlan, dtype: str) -> Any:
    """transformers' own tensor processors and name map with the source config, where its loader refuses the
    file (Gemma 1: no config mapping) or stumbles."""
    import torch
    from gguf import GGUFReader, dequantize
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor, get_gguf_hf_weights_map

    config = AutoConfig.from_pretrained(plan.model_dir)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    arch = plan.spec.gguf_arch
    # Gemma's norm convention is Gemma 2's; the Llama processor undoes the Q/K permutation.
    processor_class: type[TensorProcessor] = TENSOR_PROCESSORS.get(
        "gemma2" if arch in GEMMA_ARCHS else arch, TensorProcessor
    )
    processor = processor_class(config=config.to_dict())
    names = get_gguf_hf_weights_map(model, processor, model_type=arch)
    state = {}
    for tensor in GGUFReader(path).tensors:
        result = processor.process(weights=dequantize(tensor.data, tensor.tensor_type), name=tensor.name)
        state[names[result.name]] = torch.from_numpy(result.weights.copy()).to(getattr(torch, dtype))
    missing, _ = model.load_state_dict(state, strict=False)
    if set(missing) - {"lm_head.weight"}:
        raise VerificationError(f"The GGUF lacks tensors the model needs: {sorted(missing)[:5]}")
    model.tie_weights()
    return model


def _plain_rope(plan: GgufPlan) -> bool:
    """transformers' GGUF config mapping carries no RoPE scaling; with scaling the source config is used."""
    plain: bool = global_rope(plan.config)["rope_type"] == "default"
    return plain


def _same(found: Any, value: Any) -> bool:
    if isinstance(value, float) and isinstance(found, float):
        return math.isclose(found, value, rel_tol=1e-6)
    same: bool = found == value
    return same
