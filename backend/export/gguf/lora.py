"""A PEFT LoRA as a GGUF LoRA adapter: the file llama.cpp's ``--lora`` and Ollama's ``ADAPTER`` load.

What llama.cpp's loader (``src/llama-adapter.cpp``) accepts: ``general.type = adapter``,
``adapter.type = lora``, ``adapter.lora.alpha`` and the base's ``general.architecture``, then
one pair per changed base tensor, named after the base's GGUF tensor: ``<name>.lora_a`` with
the base's input width and ``<name>.lora_b`` with its output height. In numpy order these
are PEFT's ``lora_A`` (r x in) and ``lora_B`` (out x r) as stored, no transpose. It scales
``B @ A`` by ``alpha / r``, one alpha per file and r read off each B, so whatever PEFT scales
differently (rsLoRA's ``alpha / sqrt(r)``, a per-module ``alpha_pattern``) is folded into B.

Names, shapes and the Q/K permutation come from the base's own GGUF plan
(``tensors.plan_tensors``, as the model export writes it): B's rows are permuted as the base
weight's rows are, A stays as it is. llama.cpp carries nothing but LoRA pairs, so DoRA,
``modules_to_save`` copies and trained biases are refused, as are LoRA on the embeddings and
on a tied output head (the base GGUF has no ``output.weight``; llama.cpp reuses ``token_embd``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from backend.core.progress import ProgressFn, no_progress
from backend.core.task_specs import LoraType
from backend.export.adapter import AdapterInfo, read_adapter, resolve_base
from backend.export.errors import ExportError, VerificationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import numpy as np

    from backend.export.lora_weights import AdapterTensors, LoraPair

LORA_TYPES = get_args(LoraType)
MERGE_INSTEAD = (
    "Merge the adapter into its base and export one GGUF instead (export target gguf): the merged file keeps "
    "everything the adapter learned."
)

TIED_HEAD = (
    "The adapter changes lm_head, which this base shares with its embeddings: its GGUF has no separate output "
    "tensor for llama.cpp to apply the change to."
)


@dataclass(frozen=True)
class LoraTensor:
    """One ``.lora_a`` / ``.lora_b`` pair of the file."""

    target: str
    """The Hugging Face name of the base tensor it changes."""
    name: str
    """The base tensor's GGUF name."""
    rank: int
    permute_heads: int | None
    factor: float
    """Folded into B: PEFT's scale over the ``alpha / r`` llama.cpp applies."""


@dataclass
class LoraGgufPlan:
    """Everything decided before writing; the checks read it afterwards."""

    adapter: AdapterInfo
    base_path: Path
    arch: str
    name: str
    alpha: float
    file_type: str
    tensors: list[LoraTensor]
    pairs: dict[str, LoraPair]
    base_tensors: dict[str, tuple[int, ...]]
    """The base GGUF's tensor names and numpy shapes, which llama.cpp checks the pairs against."""
    warnings: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        item = 2 if self.file_type == "f16" else 4
        return sum(t.rank * sum(self.base_tensors[t.name]) * item for t in self.tensors)


def plan_lora_gguf(
    adapter_dir: str | Path, base: str | Path | None = None, file_type: str = "f16", name: str | None = None
) -> LoraGgufPlan:
    """Check the adapter against what llama.cpp can load and against its base; ExportError says why not."""
    from transformers import AutoConfig

    from backend.export.gguf.arch import arch_for
    from backend.export.gguf.tensors import plan_tensors
    from backend.export.lora_weights import load_adapter_tensors, lora_alpha
    from backend.export.safetensors_io import list_tensors

    if file_type not in LORA_TYPES:
        raise ExportError(f"Unknown adapter GGUF type {file_type!r}; choose one of {', '.join(LORA_TYPES)}.")
    adapter = read_adapter(adapter_dir)
    loaded = load_adapter_tensors(adapter)
    reasons = loaded_refusals(adapter.config, loaded)
    if reasons:
        raise cannot_load(reasons)
    base_path, warnings = resolve_base(adapter, base)
    config = AutoConfig.from_pretrained(base_path)
    spec = arch_for(config)
    layout = {plan.source: plan for plan in plan_tensors(list_tensors(base_path), spec, config, "f16")}
    alpha = lora_alpha(adapter.config)
    tensors, missing = [], []
    for target, pair in sorted(loaded.updates.items()):
        base_tensor = layout.get(target)
        if base_tensor is None:
            missing.append(target)
            continue
        rank = pair.a.shape[0]
        if (pair.a.shape[1], pair.b.shape[0]) != (base_tensor.shape[1], base_tensor.shape[0]):
            raise ExportError(
                f"The adapter's update of {target} is {pair.b.shape[0]} x {pair.a.shape[1]} but the base tensor is "
                f"{base_tensor.shape[0]} x {base_tensor.shape[1]}: it was trained on a differently shaped model."
            )
        factor = pair.scale / llama_cpp_scale(alpha, rank)
        tensors.append(LoraTensor(target, base_tensor.name, rank, base_tensor.permute_heads, factor))
    if missing:
        _refuse_missing(missing, config)
    base_tensors = {plan.name: plan.shape for plan in layout.values()}
    return LoraGgufPlan(
        adapter, base_path, spec.gguf_arch, name or adapter.name, alpha, file_type, tensors,
        loaded.updates, base_tensors, warnings,
    )  # fmt: skip


def llama_cpp_scale(alpha: float, rank: int) -> float:
    """What llama.cpp multiplies ``B @ A`` by (``alpha / r``; 1 when the file's alpha is 0)."""
    return alpha / rank if alpha else 1.0


def lora_arrays(plan: LoraGgufPlan, tensor: LoraTensor) -> tuple[np.ndarray, np.ndarray]:
    """``(lora_a, lora_b)`` in float32, in the base GGUF's layout."""
    from backend.export.gguf.tensors import permute_rotary

    pair = plan.pairs[tensor.target]
    a, b = pair.a.float().numpy(), (pair.b.float() * tensor.factor).numpy()
    if tensor.permute_heads:
        b = permute_rotary(b, tensor.permute_heads)
    return a, b


def write_lora_gguf(plan: LoraGgufPlan, path: Path, progress: ProgressFn = no_progress) -> None:
    """Write the planned adapter file at ``path`` (the caller stages and renames it)."""
    import gguf
    import numpy as np

    dtype = np.float16 if plan.file_type == "f16" else np.float32
    writer = gguf.GGUFWriter(path, plan.arch)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, plan.alpha)
        writer.add_name(plan.name)
        for done, tensor in enumerate(plan.tensors, start=1):
            a, b = lora_arrays(plan, tensor)
            writer.add_tensor(f"{tensor.name}.lora_a", np.ascontiguousarray(a, dtype=dtype))
            writer.add_tensor(f"{tensor.name}.lora_b", np.ascontiguousarray(b, dtype=dtype))
            progress("writing", done, len(plan.tensors))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def check_lora_file(path: Path, plan: LoraGgufPlan) -> None:
    """Read the file back and apply llama.cpp's loader rules: metadata, suffixes, whole pairs, and each pair's
    shapes against the base GGUF tensor of that name; raise VerificationError listing what fails."""
    from gguf import GGUFReader

    from backend.export.gguf.verify import field_value

    reader = GGUFReader(path)
    expected = {"general.type": "adapter", "adapter.type": "lora", "general.architecture": plan.arch}
    problems = [f"{key} = {field_value(reader, key)!r}, expected {value!r}" for key, value in expected.items()
                if field_value(reader, key) != value]  # fmt: skip
    if not math.isclose(field_value(reader, "adapter.lora.alpha") or 0.0, plan.alpha, rel_tol=1e-6):
        problems.append(f"adapter.lora.alpha = {field_value(reader, 'adapter.lora.alpha')}, expected {plan.alpha}")
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for tensor in reader.tensors:
        base, _, part = tensor.name.rpartition(".lora_")
        if part not in ("a", "b"):
            problems.append(f"tensor {tensor.name} is neither .lora_a nor .lora_b")
        elif tensor.tensor_type.name != plan.file_type.upper():
            problems.append(f"tensor {tensor.name} is {tensor.tensor_type.name}, planned {plan.file_type.upper()}")
        pairs.setdefault(base, {})[part] = tuple(int(d) for d in reversed(tensor.shape))
    for base, pair in sorted(pairs.items()):
        problems += _pair_problems(base, pair, plan.base_tensors.get(base))
    if sorted(pairs) != sorted(t.name for t in plan.tensors):
        problems.append(f"the file pairs {len(pairs)} tensors, the plan {len(plan.tensors)}")
    if problems:
        raise VerificationError(f"{path.name} is not what llama.cpp loads: " + "; ".join(problems[:10]))


def _pair_problems(base: str, pair: dict[str, tuple[int, ...]], base_shape: tuple[int, ...] | None) -> list[str]:
    """llama.cpp's own shape rules, in numpy order: A is (r, in), B is (out, r), the base (out, in)."""
    if base_shape is None:
        return [f"{base} is not a tensor of the base's GGUF"]
    if set(pair) != {"a", "b"}:
        return [f"{base} lacks its lora_{'b' if 'a' in pair else 'a'}"]
    a, b = pair["a"], pair["b"]
    if len(a) != 2 or len(b) != 2 or a[1] != base_shape[1] or b[0] != base_shape[0] or a[0] != b[1]:
        return [f"{base}: lora_a {a} and lora_b {b} do not fit the base tensor {base_shape}"]
    return []


def llama_cpp_refusals(config: dict[str, Any], names: Iterable[str]) -> list[str]:
    """What in the adapter a GGUF LoRA cannot carry, read from its config and tensor names, never its weights.

    Light enough for the pre-flight in the window's process (no torch), which reads the names
    from the safetensors header; a ``.bin`` adapter's names need torch to read, so the pre-flight
    passes none and the job refuses from the loaded tensors (``loaded_refusals``).
    """
    from backend.export.lora_weights import PREFIX, check_supported, split_key

    check_supported(config)
    parts = [(name, *split_key(name)) for name in (key.removeprefix(PREFIX) for key in names if key != "__metadata__")]
    return _refusals(
        config,
        dora=any(part == "magnitude" for _, _, part, _ in parts),
        trained={name for name, _, part, _ in parts if part is None and ".base_layer." not in name},
        embeddings={f"{module}.weight" for _, module, _, embedding in parts if embedding},
    )


def loaded_refusals(config: dict[str, Any], loaded: AdapterTensors) -> list[str]:
    """The same refusals from the tensors ``load_adapter_tensors`` read, whatever file they came from."""
    return _refusals(
        config,
        dora=any(pair.magnitude is not None for pair in loaded.updates.values()),
        trained=set(loaded.replacements),
        embeddings={target for target, pair in loaded.updates.items() if pair.embedding},
    )


def cannot_load(reasons: list[str]) -> ExportError:
    """The one refusal for what ``llama_cpp_refusals`` or ``loaded_refusals`` found, with the way out."""
    return ExportError(f"llama.cpp cannot load this adapter as a GGUF LoRA: it uses {'; '.join(reasons)}.",
                       hint=MERGE_INSTEAD)  # fmt: skip


def _refusals(config: dict[str, Any], *, dora: bool, trained: set[str], embeddings: set[str]) -> list[str]:
    """Reasons in a person's words; trained biases count under bias training, the other whole tensors apart."""
    reasons = []
    if config.get("use_dora") or dora:
        reasons.append("DoRA (llama.cpp applies plain B·A, without DoRA's magnitude vectors)")
    bias = config.get("bias", "none")
    whole = sorted(name for name in trained if bias == "none" or not name.endswith(".bias"))
    whole = whole or list(config.get("modules_to_save") or [])
    if whole:
        reasons.append(
            f"whole trained tensors ({', '.join(whole[:3])}{', ...' if len(whole) > 3 else ''}: "
            "modules_to_save), which a GGUF adapter cannot hold"
        )
    if bias != "none":
        reasons.append(f"bias training (bias={bias}), which a GGUF adapter cannot hold")
    if embeddings:
        reasons.append(
            f"LoRA on the embeddings ({', '.join(sorted(embeddings))}), which LoRA Studio does not write to GGUF "
            "adapters"
        )
    return reasons


def _refuse_missing(missing: list[str], config: object) -> None:
    if "lm_head.weight" in missing and getattr(config, "tie_word_embeddings", False):
        raise ExportError(TIED_HEAD, hint=MERGE_INSTEAD)
    raise ExportError(
        f"The adapter changes tensors the base does not have ({', '.join(missing[:5])}): it was trained on "
        "another architecture.",
        hint="Name the base model it was trained on.",
    )
