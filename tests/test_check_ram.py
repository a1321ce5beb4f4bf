"""The logits checks of merge and export sized to the RAM at hand (backend/export/check_ram.py).

With too little RAM for a float32 check the real merge and exports run it in bfloat16, within the
widened limits, on every tiny architecture; with too little even for that they skip it, say so,
and still deliver the output. RAM is made short by reporting less of it, not by filling it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.export import check_ram
from backend.export.check_ram import USABLE_SHARE, check_ram_bytes, coarser, plan_check
from backend.export.gguf_export import export_gguf
from backend.export.gguf_lora_export import export_gguf_lora
from backend.export.merge import merge_adapter
from backend.export.safetensors_io import list_tensors
from tests.adapters import make_adapter
from tests.tiny_models import ARCHS

GIB = 2**30


def test_float32_where_it_fits_then_layer_by_layer_then_nothing() -> None:
    params = 8 * 10**9  # an 8B model
    assert plan_check(params, available=128 * GIB).precision == "float32"
    on_32 = plan_check(params, available=28 * GIB, largest_tensor=525 * 10**6)
    assert on_32.precision == "layerwise"
    assert on_32.ram_bytes == check_ram_bytes(params, "model", "layerwise", 0, 525 * 10**6)
    assert on_32.note("The merge's logits check") is None, "as exact as float32: nothing to warn of"
    readback = plan_check(params, "gguf", available=48 * GIB)
    assert readback.precision == "layerwise" and readback.note("Reading it back") is None
    assert plan_check(params, "gguf", available=28 * GIB).precision is None, "reading a GGUF back holds more"
    skipped = plan_check(params, available=8 * GIB)
    assert skipped.precision is None and "skipped" in skipped.note("The check")
    assert plan_check(params, available=128 * GIB).note("The check") is None
    assert coarser("layerwise", "bfloat16") == "bfloat16" and coarser("layerwise", "float32") in (
        "float32",
        "layerwise",
    )


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_by_layer_float32_is_the_float32_model_bit_for_bit(
    arch: str, adapters: dict[str, Path], tiny_model_dirs: dict[str, Path]
) -> None:
    """The 16-bit model computed piece by piece in float32 gives the float32 model's logits exactly, with
    PEFT's adapter too, and is left in 16 bits afterwards."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.export.logits import float32_compute, model_logits, prompt_ids

    base = tiny_model_dirs[arch]
    ids = prompt_ids(AutoTokenizer.from_pretrained(base))
    for with_adapter in (False, True):
        models = [AutoModelForCausalLM.from_pretrained(base, dtype=d) for d in (torch.float32, torch.bfloat16)]
        if with_adapter:
            models = [PeftModel.from_pretrained(m, adapters[arch]) for m in models]
        full, half = (m.eval() for m in models)
        with float32_compute(half):
            layered = model_logits(half, ids)
        expected = model_logits(full, ids)
        assert all(torch.equal(a, b) for a, b in zip(layered, expected, strict=True))
        assert {p.dtype for n, p in half.named_parameters() if "lora_" not in n} == {torch.bfloat16}


@pytest.fixture(scope="module")
def adapters(tiny_model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("check-ram-adapters")
    return {arch: make_adapter(tiny_model_dirs[arch], root / arch, seed=i) for i, arch in enumerate(ARCHS)}


def _short_of_ram(model_dir: Path) -> int:
    """RAM in which every check (the largest: reading a GGUF back) fits layer by layer but not in float32."""
    entries = list_tensors(model_dir)
    params, largest = sum(e.numel for e in entries), max(e.numel for e in entries)
    low, high = (check_ram_bytes(params, "gguf", p, 0, largest) for p in ("layerwise", "float32"))
    return int((low + high) / 2 / USABLE_SHARE)


@pytest.mark.parametrize("lora", [{"use_dora": True}, {"modules_to_save": ["lm_head"]}])
def test_layer_by_layer_holds_for_dora_and_a_trained_head(
    lora: dict, tiny_model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """DoRA reads its base weight outside the base layer's own forward; a trained head sits outside the
    decoder layers: both still compute in float32."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.export.logits import float32_compute, model_logits, prompt_ids

    base = tiny_model_dirs["gemma2"]
    adapter = make_adapter(base, tmp_path / "adapter", **lora)
    ids = prompt_ids(AutoTokenizer.from_pretrained(base))
    full, half = (
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=d), adapter).eval()
        for d in (torch.float32, torch.bfloat16)
    )
    with float32_compute(half):
        layered = model_logits(half, ids)
    assert all(torch.equal(a, b) for a, b in zip(layered, model_logits(full, ids), strict=True))


@pytest.mark.parametrize("arch", ARCHS)
def test_short_of_ram_the_checks_run_layer_by_layer_and_pass(
    arch: str, adapters: dict[str, Path], tiny_model_dirs: dict[str, Path], tmp_path: Path, report_ram
) -> None:
    report_ram(_short_of_ram(tiny_model_dirs[arch]))
    merged = merge_adapter(adapters[arch], tmp_path / "merged")
    (check,) = merged.checks
    assert merged.plan.check.precision == "layerwise" and check.passed
    assert check.tolerance == 0.03, "a bfloat16 merge held to its own limit: the check is as exact as float32's"
    assert not any("merge's logits check" in w for w in merged.plan.warnings)

    exported = export_gguf(merged.path, tmp_path / "gguf", "f16")
    assert exported.checks and all(c.passed for c in exported.checks)
    assert all(c.tolerance in (0.01, 0.02) for c in exported.checks), "F16's own limits: every check as exact"
    assert not any("GiB" in w for w in exported.warnings), "nothing skipped, nothing to warn of"


def test_a_float32_checkpoint_kept_in_16_bits_gets_bfloat16_limits(
    adapters: dict[str, Path], tiny_model_dirs: dict[str, Path], tmp_path: Path, report_ram
) -> None:
    """Layer by layer holds the model in 16 bits: exact for a 16-bit checkpoint, rounded for a float32 one."""
    report_ram(_short_of_ram(tiny_model_dirs["qwen2"]))
    merged = merge_adapter(adapters["qwen2"], tmp_path / "merged", dtype="float32")
    (check,) = merged.checks
    assert check.passed and check.tolerance == pytest.approx(1e-4 + check_ram.COMPUTE_NOISE["bfloat16"])


def test_with_too_little_ram_the_checks_are_skipped_and_the_output_delivered(
    adapters: dict[str, Path], tmp_path: Path, report_ram
) -> None:
    report_ram(GIB)  # less than the runtime itself
    merged = merge_adapter(adapters["llama"], tmp_path / "merged")
    assert merged.checks == [] and merged.plan.check.precision is None
    assert any("logits check was skipped" in w for w in merged.plan.warnings)
    assert (merged.path / "model.safetensors").is_file()

    exported = export_gguf(merged.path, tmp_path / "gguf", "q8_0")
    assert not any("transformers" in c.what for c in exported.checks)
    assert any("comparison with the source model's logits was skipped" in w for w in exported.warnings)
    assert exported.gguf.is_file() and "skipped" in (exported.folder / "README.md").read_text()


@pytest.mark.llama_cpp
@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_gguf_lora_checked_layer_by_layer_through_llama_cpp(
    arch: str, adapters: dict[str, Path], tiny_model_dirs: dict[str, Path], tmp_path: Path, report_ram, llama_cpp
) -> None:
    report_ram(_short_of_ram(tiny_model_dirs[arch]))
    exported = export_gguf_lora(adapters[arch], tmp_path / "lora")
    (check,) = exported.checks
    assert check.passed and check.tolerance == 0.01, "the F16 limit, unwidened"
    assert not exported.warnings


@pytest.mark.llama_cpp
def test_gguf_lora_without_ram_for_peft_skips_the_base_gguf(
    adapters: dict[str, Path], tmp_path: Path, report_ram, llama_cpp
) -> None:
    report_ram(GIB)
    exported = export_gguf_lora(adapters["llama"], tmp_path / "lora")
    assert exported.checks == [] and exported.gguf.is_file()
    assert any("was skipped" in w for w in exported.warnings)
    assert sorted(p.name for p in exported.folder.iterdir()) == sorted(["Modelfile", "README.md", exported.gguf.name])


def test_the_pre_flight_says_before_queueing(
    adapters: dict[str, Path], tiny_model_dirs: dict[str, Path], tmp_path: Path, report_ram
) -> None:
    from backend.core.task_specs import ExportSpec, MergeSpec
    from backend.jobs.adapter_preflight import export_checks, merge_checks

    report_ram(_short_of_ram(tiny_model_dirs["llama"]) // 2)
    model = export_checks(ExportSpec(source=str(tiny_model_dirs["llama"]), target="gguf", gguf_type="f16"), tmp_path)
    ram = [c for c in model if c.topic == "ram"]
    assert ram and all(c.level == "warning" and "was skipped" in c.message for c in ram)
    unchecked = ExportSpec(source=str(tiny_model_dirs["llama"]), target="gguf", gguf_type="f16", verify=False)
    assert not any(c.topic == "ram" for c in export_checks(unchecked, tmp_path))
    merge = merge_checks(MergeSpec(adapter=str(adapters["llama"])), tmp_path)
    assert any("merge's logits check" in c.message for c in merge)


@pytest.mark.slow
@pytest.mark.llama_cpp
def test_smollm2_checks_pass_layer_by_layer(smollm2_store: dict, tmp_path: Path, report_ram, llama_cpp) -> None:
    """A real model short of RAM: every check layer by layer, within the float32 checks' own limits."""
    record = smollm2_store["record"]
    adapter = make_adapter(record.path, tmp_path / "adapter", r=16, lora_alpha=32, base_ref="default")
    report_ram(_short_of_ram(record.path))
    merged = merge_adapter(adapter, tmp_path / "merged")
    exported = export_gguf(merged.path, tmp_path / "gguf", "f16")
    lora = export_gguf_lora(adapter, tmp_path / "lora")
    checks = [*merged.checks, *exported.checks, *lora.checks]
    assert len(checks) == 4 and merged.plan.check.precision == "layerwise"
    assert all(c.passed and c.relative_diff < c.tolerance * 0.8 for c in checks), [c.describe() for c in checks]
