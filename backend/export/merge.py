"""Merge a LoRA adapter into its 16- or 32-bit base and save a standalone model.

The merge streams the base one tensor at a time from its safetensors files: each
tensor is read in its stored precision, the adapter's update is added in float32, and
the result is rounded once to the output dtype and queued for its shard. Peak RAM is
one output shard plus a few copies of the largest tensor, whatever the model's size
(``MergePlan.merge_ram_bytes``). A quantized (4-bit or 8-bit) base is refused: merging
into quantized weights bakes the quantization error into the model.

After writing, the merged model's logits are compared with the base + adapter computed
by PEFT (``verify_merge``); the merge fails loudly when they differ beyond the rounding
the output dtype implies. Only then is the staging folder renamed into place.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.progress import ProgressFn, no_progress
from backend.export.adapter import AdapterInfo, read_adapter, resolve_base
from backend.export.check_ram import MERGE_CHECK, CheckRam, plan_check, streaming_merge_ram_bytes
from backend.export.errors import ExportError
from backend.export.logits import LogitCheck
from backend.export.lora_weights import AdapterTensors
from backend.export.merge_reuse import MERGE_RECORD, MergeKey, adapter_fingerprint, record_fields, remember_merge
from backend.export.model_card import model_card
from backend.export.safetensors_io import DEFAULT_SHARD_BYTES, DTYPE_BYTES, TensorEntry, list_tensors, weight_dtype
from backend.export.staging import staged_folder
from backend.models.hf_folder import CONFIG_FILE, read_config

OUTPUT_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "vocab.json",
    "merges.txt", "added_tokens.json", "chat_template.jinja", "chat_template.json",
)  # fmt: skip
_QUANTIZED_DTYPES = {"U8", "I8", "F8_E4M3", "F8_E5M2"}


@dataclass(frozen=True)
class MergePlan:
    """What a merge will do and need, known before it starts (shown to the user, checked by the worker)."""

    adapter: AdapterInfo
    base_path: Path
    dtype: str
    parameter_count: int
    output_bytes: int
    largest_tensor: int
    shard_bytes: int
    adapter_bytes: int
    check: CheckRam
    """The logits check's precision (None: not run, RAM too small) and RAM."""
    warnings: list[str] = field(default_factory=list)

    @property
    def merge_ram_bytes(self) -> int:
        """Peak RAM of the streaming merge: one shard, the largest tensor's working copies, the adapter."""
        item = DTYPE_BYTES[OUTPUT_DTYPES[self.dtype]]
        return streaming_merge_ram_bytes(
            self.output_bytes, self.largest_tensor, item, self.adapter_bytes, self.shard_bytes
        )

    @property
    def ram_bytes(self) -> int:
        """Peak RAM of the job: the streaming merge, or the logits check when it runs."""
        return max(self.merge_ram_bytes, self.check.ram_bytes if self.check.precision else 0)


@dataclass(frozen=True)
class MergeResult:
    path: Path
    plan: MergePlan
    checks: list[LogitCheck]


def required_ram(adapter_dir: str | Path, base: str | Path | None = None, dtype: str = "auto") -> int:
    """Bytes of RAM a merge of this adapter needs at its peak (see ``MergePlan``)."""
    return plan_merge(adapter_dir, base, dtype).ram_bytes


def plan_merge(
    adapter_dir: str | Path,
    base: str | Path | None = None,
    dtype: str = "auto",
    *,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> MergePlan:
    """Check the adapter against its base (fingerprint, precision) and size the merge.

    Raises ExportError with the reason when the merge must not happen.
    """
    import psutil

    adapter = read_adapter(adapter_dir)
    base_path, warnings = resolve_base(adapter, base)
    entries = list_tensors(base_path)
    _refuse_quantized(base_path, entries)
    out_dtype = _output_dtype(base_path, entries, dtype)
    params = sum(entry.numel for entry in entries)
    adapter_bytes = adapter.weights.stat().st_size * 2
    largest = max(entry.numel for entry in entries)
    check = plan_check(params, "model", extra_bytes=adapter_bytes, largest_tensor=largest)
    if note := check.note(MERGE_CHECK):
        warnings.append(note)
    plan = MergePlan(
        adapter=adapter,
        base_path=base_path,
        dtype=out_dtype,
        parameter_count=params,
        output_bytes=params * DTYPE_BYTES[OUTPUT_DTYPES[out_dtype]],
        largest_tensor=largest,
        shard_bytes=max_shard_bytes,
        adapter_bytes=adapter_bytes,
        check=check,
        warnings=warnings,
    )
    available = psutil.virtual_memory().available
    if plan.ram_bytes > available:
        plan.warnings.append(
            f"The merge needs about {plan.ram_bytes / 2**30:.1f} GiB of RAM and {available / 2**30:.1f} GiB is "
            "available now; close other programs first."
        )
    return plan


def merge_adapter(
    adapter_dir: str | Path,
    out_dir: str | Path,
    *,
    base: str | Path | None = None,
    dtype: str = "auto",
    verify: bool = True,
    overwrite: bool = False,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    progress: ProgressFn = no_progress,
) -> MergeResult:
    """Merge ``adapter_dir`` into its base and write a standalone model folder at ``out_dir``.

    ``dtype``: ``auto`` (the base's stored 16/32-bit type), ``bfloat16``, ``float16`` or ``float32``.
    """
    plan = plan_merge(adapter_dir, base, dtype, max_shard_bytes=max_shard_bytes)
    key = merge_key(plan, verify)
    out = Path(out_dir)
    with staged_folder(out, plan.output_bytes, overwrite=overwrite) as staging:
        untied = _write_merged_weights(plan, staging, progress)
        _copy_side_files(plan, staging, untied)
        checks = []
        if verify and plan.check.precision is not None:
            from backend.export.verify_merge import verify_merge

            checks.append(verify_merge(plan.base_path, plan.adapter.path, staging, plan.check.precision, progress))
        name = out.name
        base_name = plan.base_path.name
        (staging / "README.md").write_text(model_card(name, plan.adapter, base_name, plan.dtype, checks), "utf-8")
        _write_record(plan, staging, checks, key)
    path = out.expanduser().absolute()
    if key is not None:
        remember_merge(path)
    return MergeResult(path=path, plan=plan, checks=checks)


def merge_key(plan: MergePlan, verify: bool) -> MergeKey | None:
    """What identifies this merge for reuse (``merge_reuse``); None for an adapter without a record, whose
    base is unchecked."""
    base = plan.adapter.recorded_base.get("fingerprint")
    return MergeKey(adapter_fingerprint(plan.adapter), base, plan.dtype, verify) if base else None


def _write_merged_weights(plan: MergePlan, folder: Path, progress: ProgressFn) -> bool:
    """Stream the base through the adapter into sharded safetensors; True when lm_head had to be untied."""
    import torch

    from backend.export.lora_weights import load_adapter_tensors, merge_update
    from backend.export.safetensors_io import ShardWriter, iter_tensors

    tensors = load_adapter_tensors(plan.adapter)
    entries = list_tensors(plan.base_path)
    names = {entry.name for entry in entries}
    extra = _untied_head(plan, tensors, names)
    unknown = sorted((set(tensors.updates) | set(tensors.replacements)) - names - set(extra))
    if unknown:
        raise ExportError(
            f"The adapter changes tensors the base does not have ({', '.join(unknown[:5])}); it was trained on "
            "a different architecture."
        )
    out_dtype = getattr(torch, plan.dtype)
    item = DTYPE_BYTES[OUTPUT_DTYPES[plan.dtype]]
    order = [(entry.name, entry.numel * item) for entry in entries] + [
        (name, tensor.numel() * item) for name, tensor in extra.items()
    ]
    writer = ShardWriter(folder, order, plan.shard_bytes)
    total = len(order)
    for done, (entry, weight) in enumerate(iter_tensors(entries), start=1):
        if entry.name in tensors.replacements:
            weight = tensors.replacements[entry.name]
        elif entry.name in tensors.updates:
            weight = merge_update(weight, tensors.updates[entry.name])
        writer.add(entry.name, weight.to(out_dtype))
        progress("merging", done, total)
    for done, (name, tensor) in enumerate(extra.items(), start=len(entries) + 1):
        writer.add(name, tensor.to(out_dtype))
        progress("merging", done, total)
    writer.finish()
    return bool(extra)


def _untied_head(plan: MergePlan, tensors: AdapterTensors, names: set[str]) -> dict[str, Any]:
    """A trained lm_head (``modules_to_save``) of a model that ties it to the embeddings is written on its own."""
    config = read_config(plan.base_path)
    head, embedding = "lm_head.weight", "model.embed_tokens.weight"
    if head in tensors.replacements and head not in names and config.get("tie_word_embeddings", True):
        return {head: tensors.replacements[head]}
    changes_embedding = embedding in tensors.updates or embedding in tensors.replacements
    if changes_embedding and head not in names and config.get("tie_word_embeddings", False):
        raise ExportError(
            "The adapter trains the embeddings of a model whose output head shares them; merging would change "
            "the head too, which the adapter did not do.",
            hint="Serve this adapter with PEFT on its base instead of merging it.",
        )
    return {}


def _copy_side_files(plan: MergePlan, folder: Path, untied: bool) -> None:
    """config.json (dtype updated), generation config, and the tokenizer the adapter was trained with."""
    config = read_config(plan.base_path)
    config.pop("quantization_config", None)
    config["dtype"] = plan.dtype
    if untied:
        config["tie_word_embeddings"] = False
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    generation = plan.base_path / "generation_config.json"
    if generation.is_file():
        shutil.copy2(generation, folder / generation.name)
    tokenizer_source = plan.adapter.path if (plan.adapter.path / "tokenizer_config.json").is_file() else plan.base_path
    for name in TOKENIZER_FILES:
        if (tokenizer_source / name).is_file():
            shutil.copy2(tokenizer_source / name, folder / name)


def _write_record(plan: MergePlan, folder: Path, checks: list[LogitCheck], key: MergeKey | None) -> None:
    """Provenance of the merged model: adapter, base and its fingerprint, verification results; written last,
    with every other file's size, so a reuse can tell a complete merge (``merge_reuse``)."""
    record = {
        "format": 1,
        "adapter": str(plan.adapter.path),
        "adapter_record": plan.adapter.record,
        "base_model": {"path": str(plan.base_path), "fingerprint": plan.adapter.recorded_base.get("fingerprint")},
        "dtype": plan.dtype,
        "verification": [check.to_dict() for check in checks],
        "warnings": plan.warnings,
    } | record_fields(key, folder)
    (folder / MERGE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _refuse_quantized(base_path: Path, entries: list[TensorEntry]) -> None:
    config = read_config(base_path)
    quantized = config.get("quantization_config") or any(entry.dtype in _QUANTIZED_DTYPES for entry in entries)
    if quantized:
        raise ExportError(
            f"{base_path} stores quantized weights. Merging into quantized weights bakes the quantization error "
            "into the model, and the result cannot be converted to GGUF cleanly.",
            hint="Import the original 16-bit (or 32-bit) model and merge into that; a QLoRA adapter trained on "
            "its 4-bit version fits it.",
        )


def _output_dtype(base_path: Path, entries: list[TensorEntry], requested: str) -> str:
    if requested != "auto":
        if requested not in OUTPUT_DTYPES:
            raise ExportError(f"Unknown dtype {requested!r}; choose auto, {', '.join(OUTPUT_DTYPES)}.")
        return requested
    stored = weight_dtype(entries)
    for name, code in OUTPUT_DTYPES.items():
        if stored == code:
            return name
    config = read_config(base_path)
    configured = config.get("dtype") or config.get("torch_dtype")
    return configured if configured in OUTPUT_DTYPES else "float32"
