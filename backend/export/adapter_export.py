"""The adapter alone, as a PEFT folder vLLM's LoRA support loads (``--enable-lora --lora-modules``).

vLLM reads ``adapter_config.json`` (``r``, ``lora_alpha``, ``target_modules``, ``use_rslora``)
and ``adapter_model.safetensors`` with PEFT's key names, and computes one scale,
``lora_alpha / r``, for every module: it refuses DoRA, ``modules_to_save`` and bias training,
and ignores PEFT's per-module ``rank_pattern``/``alpha_pattern``. So per-module alphas are
baked into the B matrices and smaller ranks padded with zeros to the largest (same product,
one rank, one scale), and the refused features are refused here, with the advice to merge
instead.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.core.layout import ADAPTER_RECORD
from backend.core.progress import ProgressFn, no_progress
from backend.export.adapter import read_adapter
from backend.export.errors import ExportError
from backend.export.lora_weights import PREFIX, check_supported, load_adapter_tensors, lora_scale
from backend.export.staging import staged_folder
from backend.models.hub_import import is_hub_id

if TYPE_CHECKING:
    import torch

VLLM_DEFAULT_MAX_RANK = 16
_LINEAR_KEYS = ("lora_A.weight", "lora_B.weight")
_EMBEDDING_KEYS = ("lora_embedding_A", "lora_embedding_B")


@dataclass(frozen=True)
class AdapterExport:
    path: Path
    rank: int
    warnings: list[str] = field(default_factory=list)


def export_adapter(
    adapter_dir: str | Path,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
) -> AdapterExport:
    """Write a vLLM-loadable copy of the adapter at ``out_dir``; ExportError says what vLLM cannot serve."""
    import torch
    from safetensors.torch import save_file

    adapter = read_adapter(adapter_dir)
    config = adapter.config
    check_supported(config)
    refused = [
        label
        for label, used in (
            ("DoRA", config.get("use_dora")),
            (f"modules_to_save ({config.get('modules_to_save')})", config.get("modules_to_save")),
            (f"bias training (bias={config.get('bias')})", config.get("bias", "none") != "none"),
        )
        if used
    ]
    if refused:
        raise ExportError(
            f"vLLM cannot serve an adapter that uses {', '.join(refused)}.",
            hint="Merge the adapter into its base instead and serve the merged model.",
        )
    tensors = load_adapter_tensors(adapter)
    rank = max(pair.a.shape[0] for pair in tensors.updates.values())
    scale = lora_scale(config, rank)
    out: dict[str, torch.Tensor] = {}
    total = len(tensors.updates)
    for done, (target, pair) in enumerate(sorted(tensors.updates.items()), start=1):
        module = PREFIX + target.removesuffix(".weight")
        a_key, b_key = _EMBEDDING_KEYS if pair.embedding else _LINEAR_KEYS
        missing = rank - pair.a.shape[0]  # zero rows of A and columns of B leave B @ A unchanged
        out[f"{module}.{a_key}"] = torch.nn.functional.pad(pair.a, (0, 0, 0, missing)).contiguous()
        out[f"{module}.{b_key}"] = torch.nn.functional.pad(pair.b * (pair.scale / scale), (0, missing)).contiguous()
        progress("writing", done, total)
    exported = {
        **config,
        "r": rank,
        "rank_pattern": {},
        "alpha_pattern": {},
        "inference_mode": True,
        "base_model_name_or_path": _base_id(adapter.recorded_base.get("ref"), config.get("base_model_name_or_path")),
    }
    warnings = []
    if rank > VLLM_DEFAULT_MAX_RANK:
        warnings.append(f"Rank {rank} is above vLLM's default limit: start vLLM with --max-lora-rank {rank}.")
    if any(pair.embedding for pair in tensors.updates.values()):
        warnings.append("The adapter changes the embeddings; check that your vLLM version supports LoRA on them.")
    need = sum(t.numel() * t.element_size() for t in out.values())
    with staged_folder(Path(out_dir), need, overwrite=overwrite) as staging:
        save_file(out, staging / "adapter_model.safetensors", metadata={"format": "pt"})
        (staging / "adapter_config.json").write_text(json.dumps(exported, indent=2) + "\n", encoding="utf-8")
        if (adapter.path / ADAPTER_RECORD).is_file():
            shutil.copy2(adapter.path / ADAPTER_RECORD, staging / ADAPTER_RECORD)
        (staging / "README.md").write_text(_readme(Path(out_dir).name, exported, rank, warnings), encoding="utf-8")
    return AdapterExport(path=Path(out_dir).expanduser().absolute(), rank=rank, warnings=warnings)


def _base_id(recorded: str | None, configured: str | None) -> str | None:
    """The base's hub id when the record names one (vLLM and PEFT users need it), else what PEFT wrote."""
    return recorded if recorded and is_hub_id(recorded) else configured


def _readme(name: str, config: dict[str, Any], rank: int, warnings: list[str]) -> str:
    base = config.get("base_model_name_or_path") or "BASE_MODEL"
    lines = [
        f"# {name}",
        "",
        "A LoRA adapter exported by LoRA Studio (PEFT format).",
        "",
        f"- vLLM: `vllm serve {base} --enable-lora --lora-modules {name}=./{name} --max-lora-rank "
        f"{max(rank, VLLM_DEFAULT_MAX_RANK)}`, then request the model `{name}`",
        f"- PEFT: `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained('{base}'), './{name}')`",
        "",
        "The base must be exactly the model the adapter was trained on.",
    ]
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {warning}" for warning in warnings]
    return "\n".join(lines) + "\n"
