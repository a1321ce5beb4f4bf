"""The logits checks of merge and export sized to the RAM at hand (backend/export/check_ram.py).

With too little RAM for a float32 check the real merge and exports run it in bfloat16, within the
widened limits, on every tiny architecture; with too little even for that they skip it, say so,
and still deliver the output. RAM is made short by reporting less of it, not by filling it.
"""

from __future__ import annotations

from pathlib import Path

import psutil
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


def test_float32_where_it_fits_then_bfloat16_then_nothing() -> None:
    params = 8 * 10**9  # an 8B model
    assert plan_check(params, available=128 * GIB).dtype == "float32"
    on_32 = plan_check(params, available=28 * GIB)
    assert on_32.dtype == "bfloat16" and on_32.ram_bytes == check_ram_bytes(params, "model", "bfloat16")
    assert "runs in bfloat16" in on_32.note("The merge's logits check")
    assert plan_check(params, "gguf", available=28 * GIB).dtype is None, "reading a GGUF back holds more"
    skipped = plan_check(params, available=8 * GIB)
    assert skipped.dtype is None and "skipped" in skipped.note("The check")
    assert plan_check(params, available=128 * GIB).note("The check") is None
    assert coarser("float32", "bfloat16") == "bfloat16" and coarser("float32") == "float32"


@pytest.fixture(scope="module")
def adapters(tiny_model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("check-ram-adapters")
    return {arch: make_adapter(tiny_model_dirs[arch], root / arch, seed=i) for i, arch in enumerate(ARCHS)}


def _report_ram(monkeypatch: pytest.MonkeyPatch, available: int) -> None:
    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=available))


def _between_bfloat16_and_float32(model_dir: Path) -> int:
    """RAM in which every check (the largest: reading a GGUF back) fits in bfloat16 but not in float32."""
    params = sum(entry.numel for entry in list_tensors(model_dir))
    low, high = (check_ram_bytes(params, "gguf", dtype) for dtype in ("bfloat16", "float32"))
    return int((low + high) / 2 / USABLE_SHARE)


@pytest.mark.parametrize("arch", ARCHS)
def test_short_of_ram_the_checks_run_in_bfloat16_and_pass(
    arch: str, adapters: dict[str, Path], tiny_model_dirs: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    _report_ram(monkeypatch, _between_bfloat16_and_float32(tiny_model_dirs[arch]))
    merged = merge_adapter(adapters[arch], tmp_path / "merged", dtype="float32")
    (check,) = merged.checks
    assert merged.plan.check.dtype == "bfloat16" and check.passed
    assert check.tolerance == pytest.approx(1e-4 + check_ram.COMPUTE_NOISE["bfloat16"])
    assert check.adapter_effect > check.tolerance, "a lost adapter would still fail the check"
    assert any("runs in bfloat16" in w for w in merged.plan.warnings)

    exported = export_gguf(merged.path, tmp_path / "gguf", "f16")
    assert exported.checks and all(c.passed for c in exported.checks)
    assert any("bfloat16" in w for w in exported.warnings)


def test_with_too_little_ram_the_checks_are_skipped_and_the_output_delivered(
    adapters: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    _report_ram(monkeypatch, GIB)  # less than the runtime itself
    merged = merge_adapter(adapters["llama"], tmp_path / "merged")
    assert merged.checks == [] and merged.plan.check.dtype is None
    assert any("logits check was skipped" in w for w in merged.plan.warnings)
    assert (merged.path / "model.safetensors").is_file()

    exported = export_gguf(merged.path, tmp_path / "gguf", "q8_0")
    assert not any("transformers" in c.what for c in exported.checks)
    assert any("comparison with the source model's logits was skipped" in w for w in exported.warnings)
    assert exported.gguf.is_file() and "skipped" in (exported.folder / "README.md").read_text()


@pytest.mark.llama_cpp
@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_gguf_lora_checked_in_bfloat16_through_llama_cpp(
    arch: str, adapters: dict[str, Path], tiny_model_dirs: dict[str, Path], tmp_path: Path, monkeypatch, llama_cpp
) -> None:
    _report_ram(monkeypatch, _between_bfloat16_and_float32(tiny_model_dirs[arch]))
    exported = export_gguf_lora(adapters[arch], tmp_path / "lora")
    (check,) = exported.checks
    assert check.passed and check.adapter_effect > check.tolerance
    assert any("runs in bfloat16" in w for w in exported.warnings)


@pytest.mark.llama_cpp
def test_gguf_lora_without_ram_for_peft_skips_the_base_gguf(
    adapters: dict[str, Path], tmp_path: Path, monkeypatch, llama_cpp
) -> None:
    _report_ram(monkeypatch, GIB)
    exported = export_gguf_lora(adapters["llama"], tmp_path / "lora")
    assert exported.checks == [] and exported.gguf.is_file()
    assert any("was skipped" in w for w in exported.warnings)
    assert sorted(p.name for p in exported.folder.iterdir()) == sorted(["Modelfile", "README.md", exported.gguf.name])


def test_the_pre_flight_says_before_queueing(
    adapters: dict[str, Path], tiny_model_dirs: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    from backend.jobs.adapter_preflight import export_checks, merge_checks
    from backend.task_specs import ExportSpec, MergeSpec

    _report_ram(monkeypatch, _between_bfloat16_and_float32(tiny_model_dirs["llama"]) // 2)
    model = export_checks(ExportSpec(source=str(tiny_model_dirs["llama"]), target="gguf", gguf_type="f16"), tmp_path)
    ram = [c for c in model if c.topic == "ram"]
    assert ram and all(c.level == "warning" and "was skipped" in c.message for c in ram)
    unchecked = ExportSpec(source=str(tiny_model_dirs["llama"]), target="gguf", gguf_type="f16", verify=False)
    assert not any(c.topic == "ram" for c in export_checks(unchecked, tmp_path))
    merge = merge_checks(MergeSpec(adapter=str(adapters["llama"])), tmp_path)
    assert any("merge's logits check" in c.message for c in merge)


@pytest.mark.slow
@pytest.mark.llama_cpp
def test_smollm2_checks_pass_in_bfloat16(smollm2_store: dict, tmp_path: Path, monkeypatch, llama_cpp) -> None:
    """A real model: the bfloat16 checks' noise (5.8 % at most, measured) stays inside the widened limits."""
    record = smollm2_store["record"]
    adapter = make_adapter(record.path, tmp_path / "adapter", r=16, lora_alpha=32, base_ref="default")
    _report_ram(monkeypatch, _between_bfloat16_and_float32(record.path))
    merged = merge_adapter(adapter, tmp_path / "merged")
    exported = export_gguf(merged.path, tmp_path / "gguf", "f16")
    lora = export_gguf_lora(adapter, tmp_path / "lora")
    checks = [*merged.checks, *exported.checks, *lora.checks]
    assert len(checks) == 4 and merged.plan.check.dtype == "bfloat16"
    assert all(c.passed and c.relative_diff < c.tolerance * 0.8 for c in checks), [c.describe() for c in checks]
