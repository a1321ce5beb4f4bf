"""Merging an adapter into its base (backend/export/merge.py): exactness, refusals, atomic output.

Every tiny architecture gets an adapter with non-zero B. A float32 merge must reproduce
PEFT's base + adapter logits to float32 noise; the default (bfloat16, like the base)
within the stated bfloat16 tolerance. The comparison here loads the models itself, so it
does not trust the merge's own check.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backend.export import staging
from backend.export.errors import ExportError
from backend.export.lora_weights import lora_alpha, lora_scale
from backend.export.merge import MERGE_RECORD, merge_adapter, plan_merge, required_ram
from backend.export.verify_merge import MERGE_TOLERANCE
from tests.adapters import make_adapter
from tests.tiny_models import ARCHS

FLOAT32_ATOL = 1e-4
"""Absolute logit difference allowed between a float32 merge and PEFT (summation order only)."""


@pytest.fixture(scope="session")
def adapters(tiny_model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One adapter per tiny architecture, built once."""
    root = tmp_path_factory.mktemp("adapters")
    return {arch: make_adapter(tiny_model_dirs[arch], root / arch, seed=i) for i, arch in enumerate(ARCHS)}


def peft_and_merged_logits(base: Path, adapter: Path, merged: Path) -> tuple[object, object]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ids = torch.tensor([AutoTokenizer.from_pretrained(merged)("The farmer watches the fox, 42 times.")["input_ids"]])
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter)
    merged_model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    with torch.no_grad():
        return reference.eval()(input_ids=ids).logits, merged_model.eval()(input_ids=ids).logits


@pytest.mark.parametrize("arch", ARCHS)
def test_float32_merge_equals_adapter_on_base(
    arch: str, adapters: dict[str, Path], tiny_model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    result = merge_adapter(adapters[arch], tmp_path / "merged", dtype="float32")

    reference, merged = peft_and_merged_logits(tiny_model_dirs[arch], adapters[arch], result.path)
    assert float((reference - merged).abs().max()) < FLOAT32_ATOL
    assert result.checks[0].passed and result.checks[0].relative_diff <= MERGE_TOLERANCE["float32"].relative
    # The adapter matters: without it the logits are far away.
    assert result.checks[0].adapter_effect > 100 * result.checks[0].relative_diff


@pytest.mark.parametrize("arch", ARCHS)
def test_default_merge_keeps_bfloat16_within_tolerance(arch: str, adapters: dict[str, Path], tmp_path: Path) -> None:
    result = merge_adapter(adapters[arch], tmp_path / "merged")

    check = result.checks[0]
    assert result.plan.dtype == "bfloat16"
    assert check.passed and check.relative_diff <= MERGE_TOLERANCE["bfloat16"].relative
    config = json.loads((result.path / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and "quantization_config" not in config


def test_output_folder_has_everything_a_model_needs(adapters: dict[str, Path], tmp_path: Path) -> None:
    out = merge_adapter(adapters["gemma3"], tmp_path / "merged", verify=False).path

    names = {path.name for path in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "chat_template.jinja", "README.md", MERGE_RECORD} <= names  # fmt: skip
    card = (out / "README.md").read_text()
    for expected in ("base_model:", "Fingerprint", "d" * 64, "learning_rate", "lora.r", "eval_loss", "2.75"):
        assert expected in card
    record = json.loads((out / MERGE_RECORD).read_text())
    assert record["adapter_record"]["name"] == "gemma3"


def test_dora_rslora_alpha_pattern_and_trained_head_merge_exactly(tiny_llama: Path, tmp_path: Path) -> None:
    adapter = make_adapter(
        tiny_llama, tmp_path / "adapter", use_dora=True, use_rslora=True, alpha_pattern={"v_proj": 4},
        rank_pattern={"o_proj": 2}, modules_to_save=["lm_head"],
    )  # fmt: skip
    result = merge_adapter(adapter, tmp_path / "merged", dtype="float32")

    reference, merged = peft_and_merged_logits(tiny_llama, adapter, result.path)
    assert float((reference - merged).abs().max()) < FLOAT32_ATOL


@pytest.mark.filterwarnings("ignore:Careful, disabling adapter layers with bias:UserWarning")
def test_trained_biases_are_merged(tiny_model_dirs: dict[str, Path], tmp_path: Path) -> None:
    """bias="lora_only": PEFT saves a LoRA layer's trained bias as ``<module>.base_layer.bias``."""
    adapter = make_adapter(tiny_model_dirs["qwen2"], tmp_path / "adapter", bias="lora_only")
    result = merge_adapter(adapter, tmp_path / "merged", dtype="float32")

    reference, merged = peft_and_merged_logits(tiny_model_dirs["qwen2"], adapter, result.path)
    assert float((reference - merged).abs().max()) < FLOAT32_ATOL


@pytest.mark.filterwarnings("ignore:Model has `tie_word_embeddings=True`:UserWarning")
def test_trained_head_of_a_tied_model_is_untied(tiny_model_dirs: dict[str, Path], tmp_path: Path) -> None:
    adapter = make_adapter(tiny_model_dirs["qwen2"], tmp_path / "adapter", modules_to_save=["lm_head"])
    result = merge_adapter(adapter, tmp_path / "merged", dtype="float32")

    assert json.loads((result.path / "config.json").read_text())["tie_word_embeddings"] is False
    reference, merged = peft_and_merged_logits(tiny_model_dirs["qwen2"], adapter, result.path)
    assert float((reference - merged).abs().max()) < FLOAT32_ATOL


def test_sharded_output_loads(adapters: dict[str, Path], tiny_llama: Path, tmp_path: Path) -> None:
    result = merge_adapter(adapters["llama"], tmp_path / "merged", dtype="float32", max_shard_bytes=64 * 1024)

    shards = sorted(result.path.glob("model-*.safetensors"))
    assert len(shards) > 2 and (result.path / "model.safetensors.index.json").is_file()
    reference, merged = peft_and_merged_logits(tiny_llama, adapters["llama"], result.path)
    assert float((reference - merged).abs().max()) < FLOAT32_ATOL


def test_fingerprint_mismatch_is_refused(adapters: dict[str, Path], tiny_llama: Path, tmp_path: Path) -> None:
    other = shutil.copytree(tiny_llama, tmp_path / "llama-other")
    config = json.loads((other / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5  # same shapes, different model
    (other / "config.json").write_text(json.dumps(config))

    with pytest.raises(ExportError, match="fingerprint") as caught:
        merge_adapter(adapters["llama"], tmp_path / "merged", base=other)
    assert "silently degrade" in str(caught.value) and caught.value.hint
    assert not (tmp_path / "merged").exists()


def test_quantized_base_is_refused(tiny_llama: Path, tmp_path: Path) -> None:
    base = shutil.copytree(tiny_llama, tmp_path / "llama-4bit")
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(config))
    adapter = make_adapter(tiny_llama, tmp_path / "adapter", record=False)

    with pytest.raises(ExportError, match="quantized"):
        merge_adapter(adapter, tmp_path / "merged", base=base)


def test_adapter_without_record_needs_and_warns_about_its_base(tiny_llama: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_llama, tmp_path / "adapter", record=False)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = None
    (adapter / "adapter_config.json").write_text(json.dumps(config))

    with pytest.raises(ExportError, match="does not say which base"):
        plan_merge(adapter)
    assert any("cannot be checked" in warning for warning in plan_merge(adapter, tiny_llama).warnings)


def test_interrupted_merge_leaves_no_folder(adapters: dict[str, Path], tmp_path: Path) -> None:
    def interrupt(stage: str, done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        merge_adapter(adapters["llama"], tmp_path / "merged", progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_is_refused_before_writing(
    adapters: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(staging.shutil, "disk_usage", lambda _: usage._replace(free=1024))

    with pytest.raises(ExportError, match="free disk"):
        merge_adapter(adapters["llama"], tmp_path / "merged")
    assert list(tmp_path.iterdir()) == []


def test_needed_ram_is_reported_before_merging(adapters: dict[str, Path]) -> None:
    plan = plan_merge(adapters["llama"])

    assert plan.check.precision == "float32", "a tiny model's check fits in any RAM"
    assert plan.ram_bytes == max(plan.merge_ram_bytes, plan.check.ram_bytes) == required_ram(adapters["llama"])
    assert plan.merge_ram_bytes < plan.output_bytes + plan.largest_tensor * 32 + plan.adapter_bytes + 2**30 + 1
    small = plan_merge(adapters["llama"], max_shard_bytes=1024)
    assert small.merge_ram_bytes < plan.merge_ram_bytes


def test_cli_merge(adapters: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from backend.cli.common import EXIT_FAILED, EXIT_OK
    from backend.cli.main import main

    assert main(["merge", str(adapters["qwen2"]), "--out", str(tmp_path / "merged")]) == EXIT_OK
    assert "needs about" in capsys.readouterr().out
    assert main(["merge", str(adapters["qwen2"]), "--out", str(tmp_path / "merged")]) == EXIT_FAILED
    assert "already exists" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Model has `tie_word_embeddings=True`:UserWarning")
@pytest.mark.filterwarnings("ignore:Setting `save_embedding_layers`:UserWarning")
def test_lora_on_embeddings_shared_with_the_head_is_refused(tiny_model_dirs: dict[str, Path], tmp_path: Path) -> None:
    adapter = make_adapter(tiny_model_dirs["qwen2"], tmp_path / "adapter", target_modules=["q_proj", "embed_tokens"])

    with pytest.raises(ExportError, match="output head shares them"):
        merge_adapter(adapter, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


@pytest.mark.filterwarnings("ignore:Setting `save_embedding_layers`:UserWarning")
def test_lora_on_embeddings_merges_when_the_head_is_separate(tiny_llama: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_llama, tmp_path / "adapter", target_modules=["q_proj", "embed_tokens"])
    result = merge_adapter(adapter, tmp_path / "merged", dtype="float32")

    reference, merged = peft_and_merged_logits(tiny_llama, adapter, result.path)
    assert float((reference - merged).abs().max()) < FLOAT32_ATOL


def test_lora_scale_is_peft_s_for_every_exporter() -> None:
    """Merge, the vLLM adapter export and the GGUF LoRA export all take B @ A's scale from ``lora_scale``."""
    config = {"lora_alpha": 16, "alpha_pattern": {"v_proj": 4}}
    assert lora_scale(config, 8) == 2.0
    assert lora_scale(config, 8, "model.layers.0.self_attn.v_proj") == 0.5
    assert lora_scale(config, 8, "model.layers.0.self_attn.q_proj") == 2.0
    assert lora_scale({**config, "use_rslora": True}, 16, "model.layers.0.self_attn.v_proj") == 1.0
    assert lora_scale({}, 4) == 2.0  # PEFT's default alpha of 8
    assert lora_alpha(config) == 16.0 and lora_alpha(config, "layers.3.v_proj") == 4.0
