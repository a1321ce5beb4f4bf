"""Pre-flight checks of the jobs that start from a finished adapter or model: evaluate, merge and export.

They make the refusals the job itself would make, before it waits in line: a folder that
is not an adapter or a model, a base that cannot be found or whose fingerprint differs
from the one the adapter was trained on, a model GGUF cannot hold, an adapter llama.cpp
cannot load as a GGUF LoRA, a disk too small for the output, too little RAM for a merge; and,
as warnings, logits checks that the RAM available now would skip (``check_ram``).
Nothing is imported or loaded (the window runs these in its own process, which never
imports torch): the base is looked up in the store, and sizes and tensor names come from
safetensors headers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from backend.core.task_specs import EvaluateSpec, ExportSpec, MergeSpec
from backend.export.adapter import ADAPTER_CONFIG, AdapterInfo, check_fingerprint, read_adapter
from backend.export.check_ram import LORA_CHECK, gguf_checks, lora_check
from backend.export.errors import ExportError
from backend.export.gguf.arch import arch_for
from backend.export.gguf.llama_cpp_run import installed as llama_cpp_installed
from backend.export.gguf.lora import MERGE_INSTEAD, TIED_HEAD, cannot_load, llama_cpp_refusals
from backend.export.gguf.quantize import INSTALL_HINT, K_QUANTS
from backend.export.merge import MergePlan, merge_key, plan_merge
from backend.export.merge_reuse import why_not_reusable
from backend.export.safetensors_io import list_tensors
from backend.jobs.checks import HEADROOM, Check, free_bytes, size_text
from backend.models.errors import ModelError
from backend.models.hf_folder import read_config, read_header
from backend.models.hub_import import is_hub_id
from backend.models.record import ModelRecord
from backend.models.store import DEFAULT_ALIAS, get_model

GGUF_BYTES_PER_WEIGHT = {"f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q6_k": 0.82, "q5_k_m": 0.72, "q4_k_m": 0.61}
"""Bytes a GGUF of each type stores per weight: blocks of 32 weights in 34 bytes for Q8_0; the K-quants'
averages over their mix of block types (llama.cpp's quantize table), rounded up."""


class _Refused(Exception):
    """A check that ends the checking: what follows depends on what it found wrong."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.message)
        self.check = check


def evaluate_checks(spec: EvaluateSpec) -> list[Check]:
    """The adapters, their base and fingerprints, and the held-out data and prompt files."""
    checks: list[Check] = []
    try:
        adapter = _adapter(spec.adapter, "adapter")
        base = _base(adapter, spec.base_model, checks)
        if base is not None:
            checks += _fingerprint(adapter, base.path)
        if spec.compare_adapter:
            other = _adapter(spec.compare_adapter, "compare_adapter")
            if base is not None:
                checks += _fingerprint(other, base.path)
    except _Refused as refused:
        return [*checks, refused.check]
    if spec.data is None and adapter.record is None:
        checks.append(
            Check(
                "error",
                "data",
                f"{adapter.path} has no LoRA Studio record of the data it was trained on, so its held-out split "
                "cannot be made again; name held-out data (data).",
            )
        )
    files = {"data": spec.data, "prompts": spec.prompts if isinstance(spec.prompts, str) else None}
    for setting, path in files.items():
        if path and not Path(path).exists():
            checks.append(Check("error", "data", f"{setting}: {path} does not exist."))
    return checks


def merge_checks(spec: MergeSpec, jobs_dir: Path) -> list[Check]:
    """The adapter against its base, the output folder, the disk for the merged model, the RAM for merging."""
    checks: list[Check] = []
    try:
        out = Path(spec.output_dir) if spec.output_dir else None
        if out is not None and out.exists():
            raise _Refused(Check("error", "spec", f"output_dir: {out} already exists; choose another folder."))
        plan = _merge_plan(_adapter(spec.adapter, "adapter"), spec.base_model, spec.dtype, checks)
    except _Refused as refused:
        return [*checks, refused.check]
    if plan is None:
        return checks
    return checks + _disk([(out or jobs_dir, plan.output_bytes)], "the merged model")


def export_checks(spec: ExportSpec, jobs_dir: Path) -> list[Check]:
    """The source (adapter or model) and what the target needs of it: a base, a GGUF architecture, disk, RAM."""
    checks: list[Check] = []
    root = Path(spec.output_dir) if spec.output_dir else jobs_dir
    source = Path(spec.source)
    try:
        if not source.is_dir():
            raise _Refused(Check("error", "model", f"source: {source} is not a folder."))
        is_adapter = (source / ADAPTER_CONFIG).is_file()
        if spec.target in ("adapter", "gguf_lora") and not is_adapter:
            raise _Refused(
                Check(
                    "error",
                    "adapter",
                    f"source: {source} has no {ADAPTER_CONFIG}, so it is not an adapter; target {spec.target} "
                    "needs the adapter folder of a finished training job.",
                )
            )
        if spec.target == "adapter":
            adapter = _adapter(spec.source, "source")
            return _disk([(root, adapter.weights.stat().st_size)], "the exported adapter")
        if spec.target == "gguf_lora":
            return _gguf_lora(spec, _adapter(spec.source, "source"), root, checks)
        if spec.gguf_type in K_QUANTS and not llama_cpp_installed():
            missing = f"gguf_type {spec.gguf_type} is made by llama.cpp, which is not installed. {INSTALL_HINT}"
            checks.append(Check("error", "spec", missing))
        if is_adapter:
            plan = _merge_plan(_adapter(spec.source, "source"), spec.base_model, spec.merge_dtype, checks)
            if plan is None:
                return checks
            _gguf_architecture(get_model(plan.base_path).model_type)
            gguf = _gguf_bytes(plan.parameter_count, spec.gguf_type)
            if spec.verify:
                checks += _ram_notes(plan.parameter_count, plan.largest_tensor)
            if spec.merged_dir and Path(spec.merged_dir).exists():
                kept = _kept_merge(Path(spec.merged_dir), plan, spec.verify)
                return [*checks, kept, *_disk([(root, gguf)], "the GGUF")]
            merged = Path(spec.merged_dir) if spec.merged_dir else jobs_dir
            return checks + _disk([(merged, plan.output_bytes), (root, gguf)], "the merged model and the GGUF")
        record = _model_folder(source)
        _gguf_architecture(record.model_type)
        if spec.base_model is not None:
            checks.append(Check("warning", "model", f"base_model is ignored: {source} is a model, not an adapter."))
    except _Refused as refused:
        return [*checks, refused.check]
    if not record.parameter_count:
        unknown = f"The size of the GGUF cannot be estimated: {source} has no safetensors weights."
        return [*checks, Check("info", "disk", unknown)]
    if spec.verify:
        checks += _ram_notes(record.parameter_count, _largest_tensor(source))
    return checks + _disk([(root, _gguf_bytes(record.parameter_count, spec.gguf_type))], "the GGUF")


def _gguf_lora(spec: ExportSpec, adapter: AdapterInfo, root: Path, checks: list[Check]) -> list[Check]:
    """What llama.cpp cannot load of the adapter (from its config and tensor names), its base and fingerprint,
    and disk for the file and, when llama.cpp is to run it, for the base as an F16 GGUF meanwhile. Whether each
    changed tensor exists in the base's GGUF needs the base's config read by transformers: the job checks that."""
    try:
        header = read_header(adapter.weights) if adapter.weights.suffix == ".safetensors" else {}
        reasons = llama_cpp_refusals(adapter.config, header)
    except ExportError as exc:
        raise _Refused(Check("error", "adapter", _sentence(exc))) from None
    except ModelError as exc:
        raise _Refused(Check("error", "adapter", str(exc))) from None
    if reasons:
        raise _Refused(Check("error", "adapter", _sentence(cannot_load(reasons))))
    record = _base(adapter, spec.base_model, checks)
    if record is None:
        return checks
    checks += _fingerprint(adapter, record.path)
    if any(key.split(".lora_")[0].endswith("lm_head") for key in header) and _tied(record):
        raise _Refused(Check("error", "adapter", f"{TIED_HEAD} {MERGE_INSTEAD}"))
    need = _lora_bytes(adapter, header, 2 if spec.lora_type == "f16" else 4)
    if spec.verify and llama_cpp_installed():
        size = adapter.weights.stat().st_size
        check = lora_check(record.parameter_count or 0, _largest_tensor(record.path), size)
        if note := check.note(LORA_CHECK):
            checks.append(Check("warning", "ram", note))
        if check.precision is not None:
            need += int((record.parameter_count or 0) * GGUF_BYTES_PER_WEIGHT["f16"])
    elif spec.verify:
        unchecked = (
            "llama-cpp-python is not installed: the adapter file is checked for structure, not run in llama.cpp."
        )
        checks.append(Check("info", "adapter", f"{unchecked} {INSTALL_HINT}"))
    return checks + _disk([(root, need)], "the GGUF adapter and, while it is checked, its base as F16 GGUF")


def _ram_notes(parameter_count: int, largest_tensor: int) -> list[Check]:
    """What the RAM available now allows of a GGUF export's logits checks."""
    return [Check("warning", "ram", note) for note in gguf_checks(parameter_count, largest_tensor)[2]]


def _largest_tensor(model_dir: Path) -> int:
    """Elements of the model's largest tensor, from its safetensors headers (0 when it has none)."""
    try:
        return max((entry.numel for entry in list_tensors(model_dir)), default=0)
    except ExportError:
        return 0


def _tied(record: ModelRecord) -> bool:
    """Whether the base's config says its output head is its embedding matrix (unsaid: the job finds out)."""
    try:
        return bool(read_config(record.path).get("tie_word_embeddings"))
    except ModelError:
        return False


def _lora_bytes(adapter: AdapterInfo, header: dict[str, Any], item: int) -> int:
    """The adapter's LoRA pairs at ``item`` bytes per value; the weights file's size when there is no header."""
    if not header:
        return adapter.weights.stat().st_size
    return sum(math.prod(entry["shape"]) * item for key, entry in header.items() if ".lora_" in key)


def output_disk_checks(spec: EvaluateSpec | MergeSpec | ExportSpec, jobs_dir: Path) -> list[Check]:
    """Only the disk, again, when a queued job starts; any other problem is the job's own to report."""
    if isinstance(spec, EvaluateSpec):
        return []
    checks = merge_checks(spec, jobs_dir) if isinstance(spec, MergeSpec) else export_checks(spec, jobs_dir)
    return [check for check in checks if check.topic == "disk" and check.level == "error"]


# -- the pieces ---------------------------------------------------------------------


def _adapter(folder: str, setting: str) -> AdapterInfo:
    try:
        return read_adapter(folder)
    except ExportError as exc:
        raise _Refused(Check("error", "adapter", f"{setting}: {_sentence(exc)}")) from None


def _base(adapter: AdapterInfo, base: str | None, checks: list[Check]) -> ModelRecord | None:
    """The base the adapter names (or ``base``) in the store, without importing anything.

    None, with a warning, when it is the default model or a hub id the job will import when it starts.
    """
    recorded = adapter.recorded_base
    candidates = [c for c in ([base] if base else [recorded.get("ref"), recorded.get("path")]) if c]
    if not candidates:
        message = f"{adapter.path} does not say which base model it was trained on; name it (base_model)."
        raise _Refused(Check("error", "model", message))
    problems = []
    for candidate in candidates:
        try:
            record = get_model(candidate)
        except ModelError as exc:
            problems.append(str(exc))
            continue
        if record.path.is_dir():
            return record
        problems.append(f"Model '{record.slug}' points to {record.path}, which no longer exists.")
    if any(c == DEFAULT_ALIAS or is_hub_id(str(c)) for c in candidates):
        checks.append(Check("warning", "model", f"{problems[0]} The job imports it when it starts."))
        return None
    raise _Refused(Check("error", "model", f"The base model cannot be found: {' '.join(problems)}"))


def _fingerprint(adapter: AdapterInfo, base_path: Path) -> list[Check]:
    try:
        return [Check("warning", "adapter", warning) for warning in check_fingerprint(adapter, base_path)]
    except ExportError as exc:
        raise _Refused(Check("error", "adapter", _sentence(exc))) from None


def _merge_plan(adapter: AdapterInfo, base: str | None, dtype: str, checks: list[Check]) -> MergePlan | None:
    """The merge's plan, or None when the base is not here yet.

    Planning checks the fingerprint and the base's precision, and warns when the RAM available
    now is less than the merge needs.
    """
    record = _base(adapter, base, checks)
    if record is None:
        return None
    try:
        plan = plan_merge(adapter.path, str(record.path), dtype)
    except ExportError as exc:
        raise _Refused(Check("error", "adapter", _sentence(exc))) from None
    checks += [Check("warning", "adapter", warning) for warning in plan.warnings]
    return plan


def _kept_merge(folder: Path, plan: MergePlan, verify: bool) -> Check:
    """A merged_dir that exists: used as it is when it is this very merge, complete; otherwise refused, since a
    merge never writes over a folder."""
    key = merge_key(plan, verify)
    why = why_not_reusable(folder, key) if key else "the adapter has no LoRA Studio record to match it against"
    if why is None:
        return Check("info", "model", f"merged_dir: {folder} holds this merge already; the GGUF is made from it.")
    return Check("error", "spec", f"merged_dir: {folder} already exists and is not this merge ({why}); choose "
                 "another folder, or leave merged_dir empty.")  # fmt: skip


def _model_folder(source: Path) -> ModelRecord:
    try:
        return get_model(source)
    except ModelError as exc:
        raise _Refused(
            Check(
                "error",
                "model",
                f"source: {source} is neither an adapter folder ({ADAPTER_CONFIG}) nor a model folder: {exc}",
            )
        ) from None


def _gguf_architecture(model_type: str | None) -> None:
    try:
        arch_for(SimpleNamespace(model_type=model_type))
    except ExportError as exc:
        raise _Refused(Check("error", "model", _sentence(exc))) from None


def _gguf_bytes(parameters: int, gguf_type: str) -> int:
    """The GGUF's size; a K-quant is made from a 16-bit GGUF written first, so both are on disk for a while."""
    extra = 2.0 if gguf_type in K_QUANTS else 0.0
    return int(parameters * (GGUF_BYTES_PER_WEIGHT[gguf_type] + extra))


def _disk(needs: list[tuple[Path, int]], what: str) -> list[Check]:
    """Each filesystem must hold what goes on it, plus headroom."""
    per_disk: dict[int, tuple[Path, int]] = {}
    for path, need in needs:
        device = _device(path)
        previous = per_disk.get(device, (path, 0))[1]
        per_disk[device] = (path, previous + need)
    checks = []
    for path, need in per_disk.values():
        free = free_bytes(path)
        if free < need + HEADROOM:
            checks.append(
                Check(
                    "error",
                    "disk",
                    f"Not enough disk space for {what}: about {size_text(need)} (plus {size_text(HEADROOM)} to "
                    f"spare) is needed where it is written ({path}), and {size_text(free)} is free.",
                )
            )
    return checks


def _device(path: Path) -> int:
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    return os.stat(existing).st_dev


def _sentence(exc: ExportError) -> str:
    return f"{exc} {exc.hint}" if exc.hint else str(exc)
