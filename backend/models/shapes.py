"""A model's shapes, read from files only: every tensor's name, shape and dtype, and the config.

The estimator runs in the GUI process on every keystroke, so nothing here loads
weights or imports torch: safetensors files start with a JSON header that lists
every tensor, and ``config.json`` gives the architecture numbers. For a hub model
not yet downloaded, the same two things are fetched without the weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from math import prod
from pathlib import Path
from typing import Any

from backend.models.errors import ModelImportError
from backend.models.hf_folder import CONFIG_FILE, read_config, read_header, weight_files

DTYPE_BYTES: dict[str, float] = {
    "F64": 8,
    "F32": 4,
    "BF16": 2,
    "F16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
"""Bytes per element of each safetensors dtype."""

TORCH_DTYPE_BYTES: dict[str, int] = {"float32": 4, "bfloat16": 2, "float16": 2}
"""Bytes per element of the torch dtypes a model is loaded in."""

_EMBED_MARKERS = ("embed", "wte", "wpe", "word_embeddings")
_ATTENTION_MARKERS = ("attention", "attn")
_MLP_MARKERS = ("mlp", "feedforward", "feed_forward", "ffn", "moe", "expert")
_LAYER_MARKERS = ("layers", "h", "blocks", "block", "layer")


@dataclass(frozen=True)
class Tensor:
    """One stored tensor, as its safetensors header describes it."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        return int(self.numel * DTYPE_BYTES.get(self.dtype, 2))


@dataclass(frozen=True)
class Linear:
    """A linear layer of a decoder block: what LoRA can target and bitsandbytes quantizes."""

    name: str  # module path, without ".weight"
    leaf: str  # last path component, as peft's target_modules name it
    group: str  # "attention", "mlp" or "other", like backend.training.targets
    in_features: int
    out_features: int
    has_bias: bool


@dataclass(frozen=True, eq=False)
class ModelShapes:
    """Everything the estimator needs to know about a model, without its weights.

    Compared and hashed by identity, so per-model results can be cached while a form is edited.
    """

    config: dict[str, Any]
    tensors: tuple[Tensor, ...]
    source: str = ""

    # -- architecture numbers ------------------------------------------------

    @cached_property
    def text_config(self) -> dict[str, Any]:
        """The language model's config: multimodal configs keep it in ``text_config``."""
        inner = self.config.get("text_config")
        return {**self.config, **inner} if isinstance(inner, dict) else self.config

    def _get(self, *keys: str, default: Any = None) -> Any:
        for key in keys:
            value = self.text_config.get(key)
            if value is not None:
                return value
        return default

    @cached_property
    def model_type(self) -> str:
        return str(self._get("model_type", default="unknown"))

    @cached_property
    def hidden(self) -> int:
        return int(self._get("hidden_size", "n_embd", "d_model"))

    @cached_property
    def layers(self) -> int:
        return int(self._get("num_hidden_layers", "n_layer", "num_layers"))

    @cached_property
    def heads(self) -> int:
        return int(self._get("num_attention_heads", "n_head"))

    @cached_property
    def kv_heads(self) -> int:
        return int(self._get("num_key_value_heads", "num_kv_heads", default=self.heads))

    @cached_property
    def head_dim(self) -> int:
        return int(self._get("head_dim", default=self.hidden // self.heads))

    @cached_property
    def intermediate(self) -> int:
        mlp = [lin.out_features for lin in self.linears if lin.group == "mlp" and lin.in_features == self.hidden]
        return max(mlp) if mlp else int(self._get("intermediate_size", "n_inner", default=4 * self.hidden))

    @cached_property
    def vocab(self) -> int:
        embed = self.embedding
        return embed.shape[0] if embed is not None else int(self._get("vocab_size"))

    @cached_property
    def sliding_window(self) -> int | None:
        value = self._get("sliding_window")
        return int(value) if value else None

    @cached_property
    def layer_types(self) -> tuple[str, ...]:
        """Per-layer attention kind: "full_attention" or "sliding_attention"."""
        types = self._get("layer_types")
        if isinstance(types, list) and len(types) == self.layers:
            return tuple(str(t) for t in types)
        kind = "sliding_attention" if self.sliding_window and self._get("use_sliding_window", default=True) else None
        return tuple(kind or "full_attention" for _ in range(self.layers))

    @cached_property
    def attn_softcap(self) -> float | None:
        softcap: float | None = self._get("attn_logit_softcapping")
        return softcap

    @cached_property
    def final_softcap(self) -> float | None:
        softcap: float | None = self._get("final_logit_softcapping")
        return softcap

    @cached_property
    def is_moe(self) -> bool:
        return bool(self._get("num_experts", "num_local_experts", "n_routed_experts"))

    @property
    def tied_embeddings(self) -> bool:
        """True when the output head reuses the embedding matrix (no separate lm_head tensor stored)."""
        return self.lm_head is None

    # -- tensors by role ---------------------------------------------------------

    @cached_property
    def embedding(self) -> Tensor | None:
        """The token embedding matrix (the largest 2-D embedding tensor)."""
        candidates = [t for t in self.tensors if len(t.shape) == 2 and _is_embedding(t.name)]
        return max(candidates, key=lambda t: t.numel, default=None)

    @cached_property
    def lm_head(self) -> Tensor | None:
        """The separate output head, or None when it is tied to the embeddings."""
        for tensor in self.tensors:
            if tensor.name.endswith(("lm_head.weight", "embed_out.weight", "output.weight")) and len(tensor.shape) == 2:
                return tensor
        return None

    @cached_property
    def embedding_head_params(self) -> int:
        """Parameters of the token embeddings and the output head (once when they are tied)."""
        return sum(t.numel for t in (self.embedding, self.lm_head) if t is not None)

    @cached_property
    def linears(self) -> tuple[Linear, ...]:
        """Linear layers inside the decoder blocks: 2-D ``*.weight`` tensors that are not embeddings or the head."""
        names = {t.name for t in self.tensors}
        head = self.lm_head.name if self.lm_head else None
        found = []
        for tensor in self.tensors:
            if len(tensor.shape) != 2 or not tensor.name.endswith(".weight") or tensor.name == head:
                continue
            if _is_embedding(tensor.name):
                continue
            module = tensor.name[: -len(".weight")]
            parts = module.split(".")
            found.append(
                Linear(
                    name=module,
                    leaf=parts[-1],
                    group=_group(parts[:-1]),
                    in_features=tensor.shape[1],
                    out_features=tensor.shape[0],
                    has_bias=f"{module}.bias" in names,
                )
            )
        return tuple(found)

    @cached_property
    def per_layer_linears(self) -> tuple[Linear, ...]:
        """The linear layers of one decoder block (the first), with their leaf names."""
        first = _layer_prefix(self.linears)
        return tuple(lin for lin in self.linears if lin.name.startswith(first)) if first else self.linears

    @cached_property
    def norms_per_layer(self) -> int:
        """Hidden-size norm layers in one block: 2 in Llama, 4 in Gemma 2/3 (pre and post)."""
        first = _layer_prefix(self.linears)
        if not first:
            return 2
        return sum(
            1
            for t in self.tensors
            if t.name.startswith(first) and len(t.shape) == 1 and t.shape[0] == self.hidden and "norm" in t.name
        )

    @cached_property
    def has_qk_norm(self) -> bool:
        """Per-head norms on queries and keys (Gemma 3, Qwen 3, OLMo 2)."""
        return any(t.name.endswith(("q_norm.weight", "k_norm.weight", "q_layernorm.weight")) for t in self.tensors)

    # -- counts --------------------------------------------------------------------

    @cached_property
    def parameter_count(self) -> int:
        """Exact stored parameter count; a tied head is stored, and counted, once."""
        return sum(t.numel for t in self.tensors)

    @cached_property
    def stored_bytes(self) -> int:
        """Bytes of all tensors as stored on disk."""
        return sum(t.nbytes for t in self.tensors)

    @cached_property
    def linear_params(self) -> int:
        """Weights of all block linear layers: what bitsandbytes quantizes (biases excluded)."""
        return sum(lin.in_features * lin.out_features for lin in self.linears)

    @cached_property
    def largest_tensor_bytes(self) -> int:
        return max((t.nbytes for t in self.tensors), default=0)

    @cached_property
    def largest_tensor_numel(self) -> int:
        return max((t.numel for t in self.tensors), default=0)

    @cached_property
    def largest_linear(self) -> int:
        """Elements of the largest block weight: the size of one dequantized temporary."""
        return max((lin.in_features * lin.out_features for lin in self.linears), default=0)

    @cached_property
    def stored_dtype(self) -> str:
        """The dtype most parameters are stored in, as a torch name."""
        counts: dict[str, int] = {}
        for tensor in self.tensors:
            counts[tensor.dtype] = counts.get(tensor.dtype, 0) + tensor.numel
        main = max(counts, key=counts.__getitem__) if counts else "BF16"
        return {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}.get(main, "bfloat16")


def _is_embedding(name: str) -> bool:
    parts = name.lower().split(".")
    return any(marker in part for part in parts[:-1] for marker in _EMBED_MARKERS)


def _group(parents: list[str]) -> str:
    lowered = [p.lower() for p in parents]
    if any(marker in part for part in lowered for marker in _ATTENTION_MARKERS):
        return "attention"
    if any(marker in part for part in lowered for marker in _MLP_MARKERS):
        return "mlp"
    return "other"


def _layer_prefix(linears: tuple[Linear, ...]) -> str | None:
    """The module path of the first decoder block, e.g. ``model.layers.0.``."""
    for lin in linears:
        parts = lin.name.split(".")
        for i, part in enumerate(parts[:-1]):
            if part in _LAYER_MARKERS and parts[i + 1].isdigit():
                return ".".join(parts[: i + 2]) + "."
    return None


# -- reading -------------------------------------------------------------------------


def tensors_from_header(header: dict[str, Any]) -> list[Tensor]:
    return [
        Tensor(name=name, shape=tuple(int(d) for d in entry["shape"]), dtype=str(entry["dtype"]))
        for name, entry in header.items()
        if name != "__metadata__"
    ]


def shapes_from_folder(folder: Path) -> ModelShapes:
    """Shapes of a local Hugging Face folder from its config and safetensors headers."""
    config = read_config(folder)
    files = [f for f in weight_files(folder) if f.suffix == ".safetensors"]
    if not files:
        raise ModelImportError(
            f"{folder} has no *.safetensors weights; the estimator reads tensor shapes from their headers."
        )
    tensors: list[Tensor] = []
    for path in files:
        tensors.extend(tensors_from_header(read_header(path)))
    return ModelShapes(config=config, tensors=tuple(tensors), source=str(folder))


def shapes_from_hub(repo_id: str, revision: str | None = None) -> ModelShapes:
    """Shapes of a hub model without downloading its weights: config.json and the safetensors headers.

    Needs the network; huggingface_hub reads only the headers with HTTP range requests.
    """
    from huggingface_hub import HfApi

    api = HfApi()
    config_path = api.hf_hub_download(repo_id, CONFIG_FILE, revision=revision)
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    metadata = api.get_safetensors_metadata(repo_id, revision=revision)
    tensors = [
        Tensor(name=name, shape=tuple(info.shape), dtype=info.dtype)
        for file_meta in metadata.files_metadata.values()
        for name, info in file_meta.tensors.items()
    ]
    return ModelShapes(config=config, tensors=tuple(tensors), source=f"hub:{repo_id}@{revision or 'main'}")


def shapes_from_config(config: dict[str, Any], dtype: str = "BF16", *, qkv_bias: bool = False) -> ModelShapes:
    """Shapes of a Llama-family decoder built from its config numbers alone.

    For models whose weights are not readable (published measurements, pickled
    ``.bin`` folders): the tensor list follows the Llama/Mistral/Qwen2 layout
    (q/k/v/o, gate/up/down, two norms per block), so counts are exact only for that layout.
    """
    h, inter = int(config["hidden_size"]), int(config["intermediate_size"])
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads") or heads)
    hd = int(config.get("head_dim") or h // heads)
    vocab = int(config["vocab_size"])
    tensors = [Tensor("model.embed_tokens.weight", (vocab, h), dtype), Tensor("model.norm.weight", (h,), dtype)]
    if not config.get("tie_word_embeddings", False):
        tensors.append(Tensor("lm_head.weight", (vocab, h), dtype))
    for i in range(int(config["num_hidden_layers"])):
        p = f"model.layers.{i}."
        shapes = {
            "self_attn.q_proj": (heads * hd, h),
            "self_attn.k_proj": (kv * hd, h),
            "self_attn.v_proj": (kv * hd, h),
            "self_attn.o_proj": (h, heads * hd),
            "mlp.gate_proj": (inter, h),
            "mlp.up_proj": (inter, h),
            "mlp.down_proj": (h, inter),
        }
        for module, shape in shapes.items():
            tensors.append(Tensor(f"{p}{module}.weight", shape, dtype))
            if qkv_bias and module[-6:] in ("q_proj", "k_proj", "v_proj"):
                tensors.append(Tensor(f"{p}{module}.bias", (shape[0],), dtype))
        tensors += [
            Tensor(f"{p}input_layernorm.weight", (h,), dtype),
            Tensor(f"{p}post_attention_layernorm.weight", (h,), dtype),
        ]
    return ModelShapes(config=dict(config), tensors=tuple(tensors), source="config")
