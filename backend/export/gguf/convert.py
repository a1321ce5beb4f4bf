"""Write one GGUF file from a Hugging Face model folder, tensor by tensor.

The header, metadata and tensor table are written first from the plan; then each tensor
is read from safetensors, transformed, converted and appended, so memory holds one tensor
at a time and ``progress`` is called once per tensor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.progress import ProgressFn, no_progress
from backend.export.errors import ExportError
from backend.export.gguf.arch import GEMMA_ARCHS, ArchSpec, arch_for, write_hparams
from backend.export.gguf.tensors import FILE_TYPES, TensorPlan, plan_tensors, tensor_data
from backend.export.gguf.vocab import Vocab, build_vocab
from backend.export.safetensors_io import iter_tensors, list_tensors

FILE_TYPE_IDS = {"f16": 1, "q8_0": 7, "bf16": 32}
"""gguf.LlamaFileType values for general.file_type."""


@dataclass
class GgufPlan:
    """Everything decided before writing: used by the writer and, afterwards, by the checks."""

    model_dir: Path
    config: Any
    spec: ArchSpec
    vocab: Vocab
    tensors: list[TensorPlan]
    file_type: str
    name: str
    warnings: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(plan.nbytes for plan in self.tensors)

    @property
    def parameter_count(self) -> int:
        return sum(math.prod(plan.shape) for plan in self.tensors)

    @property
    def largest_tensor(self) -> int:
        return max((math.prod(plan.shape) for plan in self.tensors), default=0)


def plan_gguf(model_dir: str | Path, file_type: str, name: str | None = None) -> GgufPlan:
    """Read config, tokenizer and tensor headers and decide the whole file; raises ExportError when unsupported."""
    from transformers import AutoConfig

    if file_type not in FILE_TYPES:
        raise ExportError(f"GGUF type {file_type!r} is written by quantize.py, not directly; use one of {FILE_TYPES}.")
    model_dir = Path(model_dir).expanduser().resolve()
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{model_dir} is not a model folder transformers can read: {exc}") from exc
    spec = arch_for(config)
    entries = list_tensors(model_dir)
    embedding = next((e for e in entries if e.name.endswith("embed_tokens.weight")), None)
    vocab_size = embedding.shape[0] if embedding is not None else config.vocab_size
    display = name or _display_name(model_dir)
    hint = " ".join(str(x) for x in (display, json.dumps(getattr(config, "_name_or_path", "")), model_dir.name))
    vocab = build_vocab(model_dir, vocab_size, spec.gguf_arch in GEMMA_ARCHS, hint)
    plans = plan_tensors(entries, spec, config, file_type)
    return GgufPlan(model_dir, config, spec, vocab, plans, file_type, display, warnings=list(vocab.notes))


def write_gguf(plan: GgufPlan, path: Path, progress: ProgressFn = no_progress) -> None:
    """Write the planned file at ``path`` (the caller stages and renames it)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(path, plan.spec.gguf_arch)
    try:
        writer.add_type("model")
        writer.add_name(plan.name)
        writer.add_file_type(FILE_TYPE_IDS[plan.file_type])
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        plan.warnings += write_hparams(writer, plan.spec, plan.config, len(plan.vocab.tokens))
        _write_tokenizer(writer, plan)
        for tensor in plan.tensors:
            if tensor.qtype in (gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32):
                dtype = np.float16 if tensor.qtype == gguf.GGMLQuantizationType.F16 else np.float32
                writer.add_tensor_info(tensor.name, tensor.shape, np.dtype(dtype), tensor.nbytes)
            else:
                writer.add_tensor_info(tensor.name, tensor.byte_shape, np.dtype(np.uint8), tensor.nbytes, tensor.qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        sources = {tensor.source for tensor in plan.tensors}
        weights = iter_tensors([entry for entry in list_tensors(plan.model_dir) if entry.name in sources])
        for done, tensor in enumerate(plan.tensors, start=1):
            weight = None
            if tensor.source is not None:
                entry, weight = next(weights)
                if entry.name != tensor.source:  # the table already written fixes the order
                    raise ValueError(f"tensor order changed: {entry.name} read where {tensor.source} was planned")
            writer.write_tensor_data(tensor_data(tensor, weight, plan.config))
            progress("writing", done, len(plan.tensors))
    finally:
        writer.close()


def _write_tokenizer(writer: Any, plan: GgufPlan) -> None:
    """Vocabulary, merges, special ids, BOS/EOS habits and the chat template."""
    import gguf
    from transformers import AutoTokenizer

    vocab = plan.vocab
    writer.add_tokenizer_model(vocab.model)
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    if vocab.add_space_prefix is not None:
        writer.add_add_space_prefix(vocab.add_space_prefix)
    special = gguf.SpecialVocab(plan.model_dir, load_merges=vocab.model == "gpt2", n_vocab=len(vocab.tokens))
    special.add_special_token = {}  # decided below from what the tokenizer really does
    special.add_to_gguf(writer, quiet=True)
    tokenizer = AutoTokenizer.from_pretrained(plan.model_dir)
    add_bos, add_eos = adds_bos_eos(tokenizer)
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(add_eos)
    end_of_turn = _end_of_turn_id(plan.model_dir, tokenizer.eos_token_id)
    if end_of_turn is not None and "eot" not in special.special_token_ids:
        writer.add_eot_token_id(end_of_turn)
    if special.chat_template is None:
        plan.warnings.append("The model has no chat template; chat front-ends will fall back to their own guess.")


def adds_bos_eos(tokenizer: Any) -> tuple[bool, bool]:
    """Whether the tokenizer itself puts BOS before / EOS after every text: llama.cpp must do the same."""
    probe = tokenizer("a")["input_ids"]
    bos = tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id]
    eos = tokenizer.eos_token_id is not None and probe[-1:] == [tokenizer.eos_token_id]
    return bos, eos


def _end_of_turn_id(model_dir: Path, eos: int | None) -> int | None:
    """A second stop id in generation_config.json (Gemma's <end_of_turn>, Llama 3's <|eot_id|>)."""
    path = model_dir / "generation_config.json"
    if not path.is_file():
        return None
    stops = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
    stops = stops if isinstance(stops, list) else [stops]
    return next((stop for stop in stops if isinstance(stop, int) and stop != eos), None)


def _display_name(model_dir: Path) -> str:
    return model_dir.name.replace("_", " ")
