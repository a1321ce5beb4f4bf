"""One-call GGUF export: file, checks, Ollama Modelfile and the folder layout LM Studio indexes.

The result is ``<out>/<publisher>/<model>-<TYPE>/`` holding ``<model>-<TYPE>.gguf``, a
``Modelfile`` and a README. LM Studio lists models found at
``~/.lmstudio/models/<publisher>/<model>/<file>.gguf`` (a GGUF directly in ``models/`` is
ignored), so ``<out>/<publisher>`` can be copied or linked there as it is, and
``ollama create NAME -f Modelfile`` works from inside the folder. Each export is staged and
renamed into place only after every check passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backend.core.progress import ProgressFn, no_progress
from backend.export.check_ram import gguf_checks
from backend.export.errors import ExportError
from backend.export.gguf.quantize import K_QUANTS, llama_cpp_module, quantize_file
from backend.export.gguf.tensors import FILE_TYPES
from backend.export.logits import LogitCheck
from backend.export.ollama import modelfile_for
from backend.export.staging import staged_folder

if TYPE_CHECKING:
    from backend.export.gguf.convert import GgufPlan

GGUF_TYPES = (*FILE_TYPES, *K_QUANTS)
PUBLISHER = "lora-studio"


@dataclass(frozen=True)
class GgufExport:
    folder: Path
    gguf: Path
    modelfile: Path
    file_type: str
    checks: list[LogitCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    llama_cpp_sample: str | None = None
    """A few greedy tokens llama.cpp generated from the file, when llama-cpp-python is installed."""


def export_gguf(
    model_dir: str | Path,
    out_root: str | Path,
    file_type: str = "q8_0",
    *,
    model_name: str | None = None,
    publisher: str = PUBLISHER,
    system: str | None = None,
    verify: bool = True,
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
) -> GgufExport:
    """Convert a merged (or any supported) Hugging Face model folder to a checked GGUF package."""
    from backend.export.gguf.convert import plan_gguf, write_gguf

    file_type = file_type.lower()
    if file_type not in GGUF_TYPES:
        raise ExportError(f"Unknown GGUF type {file_type!r}; choose one of {', '.join(GGUF_TYPES)}.")
    if file_type in K_QUANTS:
        llama_cpp_module()  # say so before minutes of work, not after
    model_dir = Path(model_dir).expanduser().resolve()
    direct = file_type if file_type in FILE_TYPES else _intermediate_type(model_dir)
    plan = plan_gguf(model_dir, direct, name=model_name)
    stem = f"{file_slug(model_name or model_dir.name)}-{file_type.upper()}"
    folder = Path(out_root).expanduser() / file_slug(publisher) / stem
    need = plan.nbytes * (2 if file_type in K_QUANTS else 1)
    checks: list[LogitCheck] = []
    sample = None
    with staged_folder(folder, need, overwrite=overwrite) as staging:
        target = staging / f"{stem}.gguf"
        written = target if file_type in FILE_TYPES else staging / f".intermediate-{direct}.gguf"
        write_gguf(plan, written, progress)
        if file_type in K_QUANTS:
            if verify:
                _check_file(written, plan, direct)
            progress("quantizing", 0, 1)
            quantize_file(written, target, file_type)
            written.unlink()
            progress("quantizing", 1, 1)
        if verify:
            checks, sample = _verify(target, plan, file_type, progress)
        modelfile = staging / "Modelfile"
        modelfile.write_text(modelfile_for(plan.model_dir, f"./{target.name}", system, plan.warnings), "utf-8")
        (staging / "README.md").write_text(_readme(stem, publisher, file_type, checks, plan.warnings), "utf-8")
    return GgufExport(
        folder=folder.absolute(),
        gguf=folder.absolute() / target.name,
        modelfile=folder.absolute() / modelfile.name,
        file_type=file_type,
        checks=checks,
        warnings=plan.warnings,
        llama_cpp_sample=sample,
    )


def _verify(path: Path, plan: GgufPlan, file_type: str, progress: ProgressFn) -> tuple[list[LogitCheck], str | None]:
    """The file's structure; then, as far as RAM allows (``check_ram``), its logits through transformers and
    llama.cpp against the source's. Where the source cannot be loaded, llama.cpp still loads and runs the file."""
    from transformers import AutoTokenizer

    from backend.export.gguf.verify import check_llama_cpp, check_logits, source_logits
    from backend.export.logits import prompt_ids

    _check_file(path, plan, file_type)
    progress("verifying", 1, 3)
    reference, ids, checks = None, None, []
    source, readback, notes = gguf_checks(plan.parameter_count, plan.largest_tensor)
    plan.warnings.extend(notes)
    effective = "float32"
    if source.precision is not None:
        reference, ids, effective = source_logits(plan.model_dir, source.precision)
        if readback.precision is not None:
            checks.append(check_logits(path, plan, file_type, reference, ids, readback.precision, effective))
    progress("verifying", 2, 3)
    ids = ids or prompt_ids(AutoTokenizer.from_pretrained(plan.model_dir))
    native = check_llama_cpp(path, file_type, reference, ids, effective)
    progress("verifying", 3, 3)
    if native is None:
        return checks, None
    check, sample = native
    return ([*checks, check] if check else checks), sample


def _check_file(path: Path, plan: GgufPlan, file_type: str) -> None:
    from backend.export.gguf.verify import check_file

    check_file(path, plan, file_type)


def _intermediate_type(model_dir: Path) -> str:
    """K-quants start from BF16 when the weights are bfloat16 (no rounding at all), else F16."""
    from backend.export.safetensors_io import list_tensors, weight_dtype

    return "bf16" if weight_dtype(list_tensors(model_dir)) == "BF16" else "f16"


def file_slug(text: str) -> str:
    """``text`` as a file or folder name every OS and Ollama accept."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not slug:
        raise ExportError(f"{text!r} cannot be used as a folder name; choose a name with letters or digits.")
    return slug


def _readme(stem: str, publisher: str, file_type: str, checks: list[LogitCheck], warnings: list[str]) -> str:
    lines = [
        f"# {stem}",
        "",
        f"GGUF ({file_type.upper()}) written by LoRA Studio.",
        "",
        f"- llama.cpp: `llama-cli -m {stem}.gguf -cnv` (the chat template is in the file)",
        f"- Ollama: `ollama create {stem.lower()} -f Modelfile`, then `ollama run {stem.lower()}`",
        f"- LM Studio: copy or link the `{publisher}` folder into `~/.lmstudio/models/`",
        "",
    ]
    if checks:
        lines += ["## Checks", ""] + [f"- {check.describe()}" for check in checks] + [""]
    if warnings:
        lines += ["## Warnings", ""] + [f"- {warning}" for warning in warnings] + [""]
    return "\n".join(lines)
