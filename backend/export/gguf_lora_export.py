"""One-call GGUF LoRA adapter export: the adapter file, its checks, an Ollama Modelfile and a README.

The result is ``<out>/<name>-LoRA-<TYPE>/`` holding ``<name>-LoRA-<TYPE>.gguf``, a ``Modelfile``
(``ADAPTER`` names the file; ``FROM`` must be pointed at the base's GGUF, which LoRA Studio
cannot know) and a README. The file is read back and checked by llama.cpp's loader rules
against the base's GGUF tensor names and shapes. With llama-cpp-python installed, the real
check follows: the base is written as an F16 GGUF into the staging folder, llama.cpp loads it
with the adapter (in a child process) and its next-token logits must match transformers' base +
adapter (PEFT) within the F16 export's limit; the base file is deleted afterwards, so only the
small adapter is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backend.core.progress import ProgressFn, no_progress
from backend.export.check_ram import LORA_CHECK, lora_check
from backend.export.gguf.llama_cpp_run import installed as llama_cpp_installed
from backend.export.gguf.lora import LoraGgufPlan, check_lora_file, plan_lora_gguf, write_lora_gguf
from backend.export.gguf_export import file_slug
from backend.export.logits import LogitCheck
from backend.export.ollama import modelfile_for
from backend.export.staging import staged_folder

if TYPE_CHECKING:
    from backend.export.gguf.convert import GgufPlan

BASE_GGUF_PLACEHOLDER = "./BASE-MODEL.gguf"
"""FROM's value in the Modelfile until the user names the base's GGUF."""
_CHECK_BASE = ".verify-base-F16.gguf"


@dataclass(frozen=True)
class GgufLoraExport:
    folder: Path
    gguf: Path
    modelfile: Path
    file_type: str
    base_path: Path
    checks: list[LogitCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    llama_cpp_sample: str | None = None
    """A few greedy tokens llama.cpp generated from the base with the adapter, when it is installed."""


def export_gguf_lora(
    adapter_dir: str | Path,
    out_root: str | Path,
    file_type: str = "f16",
    *,
    base: str | Path | None = None,
    name: str | None = None,
    system: str | None = None,
    verify: bool = True,
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
) -> GgufLoraExport:
    """Write the adapter as a checked GGUF LoRA under ``out_root``; ExportError says what llama.cpp cannot load."""
    plan = plan_lora_gguf(adapter_dir, base, file_type, name)
    stem = f"{file_slug(plan.name)}-LoRA-{file_type.upper()}"
    folder = Path(out_root).expanduser() / stem
    native = verify and llama_cpp_installed()
    base_plan, precision = None, "float32"
    if native:
        from backend.export.gguf.convert import plan_gguf

        base_plan = plan_gguf(plan.base_path, "f16")
        check = lora_check(base_plan.parameter_count, base_plan.largest_tensor, plan.adapter.weights.stat().st_size)
        if check.precision is None:
            plan.warnings.append(check.skipped(LORA_CHECK))
            base_plan = None
        else:
            precision = check.precision
    checks: list[LogitCheck] = []
    sample = None
    with staged_folder(folder, plan.nbytes + (base_plan.nbytes if base_plan else 0), overwrite=overwrite) as staging:
        target = staging / f"{stem}.gguf"
        write_lora_gguf(plan, target, progress)
        if verify:
            check_lora_file(target, plan)
        if base_plan is not None:
            checks, sample = _check_in_llama_cpp(plan, base_plan, target, precision, progress)
        elif verify and not native:
            plan.warnings.append(
                "llama-cpp-python is not installed, so the adapter was checked for structure only (names, shapes, "
                "metadata against the base's GGUF layout), not run in llama.cpp."
            )
        tokenizer_dir = plan.adapter.path if (plan.adapter.path / "tokenizer_config.json").is_file() else plan.base_path
        modelfile = staging / "Modelfile"
        text = modelfile_for(tokenizer_dir, BASE_GGUF_PLACEHOLDER, system, plan.warnings, adapter=f"./{target.name}")
        modelfile.write_text(_modelfile_note(plan) + text, encoding="utf-8")
        (staging / "README.md").write_text(_readme(stem, plan, checks), encoding="utf-8")
    return GgufLoraExport(
        folder=folder.absolute(),
        gguf=folder.absolute() / target.name,
        modelfile=folder.absolute() / modelfile.name,
        file_type=file_type,
        base_path=plan.base_path,
        checks=checks,
        warnings=plan.warnings,
        llama_cpp_sample=sample,
    )


def where_the_base_comes_from(base_path: Path) -> str:
    """What the user must give llama.cpp or Ollama as the base: said in the Modelfile, the README and the job log."""
    return (
        f"The adapter applies to a GGUF of exactly its base, {base_path.name}: your own GGUF of it (from the "
        f"same weights; a quantized one works, with its own rounding), or one made with `lora-studio export gguf "
        f"{base_path} --type f16` (the base alone, no adapter)."
    )


def _check_in_llama_cpp(
    plan: LoraGgufPlan, base_plan: GgufPlan, lora: Path, precision: str, progress: ProgressFn
) -> tuple[list[LogitCheck], str]:
    """llama.cpp's logits for the base F16 GGUF + this adapter against PEFT's base + adapter (in ``precision``)."""
    import torch
    from transformers import AutoTokenizer

    from backend.export.gguf.convert import write_gguf
    from backend.export.gguf.llama_cpp_run import run_llama_cpp
    from backend.export.gguf.verify import llama_cpp_tolerance
    from backend.export.logits import compare, prompt_ids, require
    from backend.export.verify_merge import adapter_logits

    base_gguf = lora.parent / _CHECK_BASE
    total = len(base_plan.tensors) + 2
    write_gguf(base_plan, base_gguf, lambda _stage, done, _total: progress("verifying", done, total))
    ids = prompt_ids(AutoTokenizer.from_pretrained(plan.base_path))
    reference, base_only, effective = adapter_logits(plan.base_path, plan.adapter.path, ids, precision)
    progress("verifying", total - 1, total)
    scores, sample = run_llama_cpp(base_gguf, ids, lora=lora)
    base_gguf.unlink()
    progress("verifying", total, total)
    tol = llama_cpp_tolerance("f16", effective)
    effect = compare("adapter effect", reference, base_only, tol).relative_diff
    what = f"base F16 + adapter {plan.file_type.upper()} (llama.cpp) vs base + adapter (transformers)"
    candidate = [torch.from_numpy(rows) for rows in scores]
    return [require(compare(what, reference, candidate, tol, adapter_effect=effect), tol)], sample


def _modelfile_note(plan: LoraGgufPlan) -> str:
    return (
        f"# Point FROM at the base model's GGUF before `ollama create`. {where_the_base_comes_from(plan.base_path)}\n"
        "# An Ollama model name (FROM some-model:tag) works too when it holds exactly these base weights.\n"
    )


def _readme(stem: str, plan: LoraGgufPlan, checks: list[LogitCheck]) -> str:
    lines = [
        f"# {stem}",
        "",
        f"A GGUF LoRA adapter ({plan.file_type.upper()}, {len(plan.tensors)} tensor pairs, alpha {plan.alpha:g}) "
        f"written by LoRA Studio, for the {plan.arch} base {plan.base_path.name}.",
        "",
        where_the_base_comes_from(plan.base_path),
        "",
        f"- llama.cpp: `llama-cli -m BASE.gguf --lora {stem}.gguf -cnv` (or `llama-server ... --lora`)",
        f"- Ollama: set FROM in the Modelfile to the base's GGUF, then `ollama create {stem.lower()} -f Modelfile`",
        "- LM Studio has no way to add a separate adapter (lmstudio-ai/lms#110 asks for one): export the merged "
        "GGUF (target gguf) for it.",
        "",
    ]
    if checks:
        lines += ["## Checks", ""] + [f"- {check.describe()}" for check in checks] + [""]
    if plan.warnings:
        lines += ["## Warnings", ""] + [f"- {warning}" for warning in plan.warnings] + [""]
    return "\n".join(lines)
