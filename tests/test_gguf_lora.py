"""GGUF LoRA adapter export (backend/export/gguf/lora.py, gguf_lora_export.py): file, refusals, llama.cpp.

The expected metadata, tensor names and shapes are written out from llama.cpp's adapter loader
(src/llama-adapter.cpp), not taken from the code under test: ``general.type = adapter``,
``adapter.type = lora``, ``adapter.lora.alpha``, the base's architecture, and per changed base
tensor ``<gguf name>.lora_a`` with ne = (in, r) and ``.lora_b`` with ne = (r, out). llama.cpp
scales ``B @ A`` by alpha / r. The ``llama_cpp`` tests load a base GGUF with the adapter in
llama.cpp and hold its logits to PEFT's base + adapter.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from backend.export.errors import ExportError, VerificationError
from backend.export.gguf.verify import GGUF_TOLERANCE
from backend.export.gguf_lora_export import export_gguf_lora
from tests.adapters import make_adapter
from tests.tiny_models import ARCHS, HEAD_DIM, NUM_HEADS, NUM_KV_HEADS, NUM_LAYERS

GGUF_ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "gemma": "gemma", "gemma2": "gemma2",
             "gemma3": "gemma3"}  # fmt: skip
GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
              "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}  # fmt: skip
MODULE_PATHS = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
                "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}  # fmt: skip


@pytest.fixture(scope="session")
def adapters(tiny_model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One adapter (r=8, alpha=16, every linear layer) per tiny architecture."""
    root = tmp_path_factory.mktemp("lora_adapters")
    return {arch: make_adapter(tiny_model_dirs[arch], root / arch, seed=20 + i) for i, arch in enumerate(ARCHS)}


@pytest.fixture(scope="session")
def unverified(adapters: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every adapter written as a GGUF LoRA without the checks, so the tests below judge the file alone."""
    root = tmp_path_factory.mktemp("gguf_lora")
    return {arch: export_gguf_lora(adapters[arch], root, name=arch, verify=False) for arch in ARCHS}


def read(path: Path) -> tuple[dict, dict]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    return {key: field.contents() for key, field in reader.fields.items()}, {t.name: t for t in reader.tensors}


def peft_pair(adapter: Path, layer: int, module: str) -> tuple[np.ndarray, np.ndarray]:
    from safetensors.numpy import load_file

    stored = load_file(adapter / "adapter_model.safetensors")
    prefix = f"base_model.model.model.layers.{layer}.{MODULE_PATHS[module]}.{module}"
    return stored[f"{prefix}.lora_A.weight"], stored[f"{prefix}.lora_B.weight"]


def values(tensor: object) -> np.ndarray:
    """A tensor's data in numpy (row-major) order: (r, in) for lora_a, (out, r) for lora_b."""
    return np.asarray(tensor.data, dtype=np.float32).reshape([int(d) for d in reversed(tensor.shape)])


@pytest.mark.parametrize("arch", ARCHS)
def test_metadata_names_and_shapes_are_what_llama_cpp_loads(
    arch: str, unverified: dict, tiny_model_dirs: dict[str, Path]
) -> None:
    from safetensors import safe_open

    fields, tensors = read(unverified[arch].gguf)

    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(16.0)
    assert fields["general.architecture"] == GGUF_ARCH[arch]
    expected = {f"blk.{i}.{name}.weight.lora_{part}" for i in range(NUM_LAYERS) for name in GGUF_NAMES.values()
                for part in "ab"}  # fmt: skip
    assert set(tensors) == expected
    with safe_open(tiny_model_dirs[arch] / "model.safetensors", "pt") as base:
        for module, name in GGUF_NAMES.items():
            out, inp = base.get_slice(f"model.layers.1.{MODULE_PATHS[module]}.{module}.weight").get_shape()
            a, b = tensors[f"blk.1.{name}.weight.lora_a"], tensors[f"blk.1.{name}.weight.lora_b"]
            assert (list(a.shape), list(b.shape)) == ([inp, 8], [8, out]), module  # ggml order: ne0 first
            assert a.tensor_type.name == b.tensor_type.name == "F16"


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3"])
def test_values_follow_the_base_layout(arch: str, unverified: dict, adapters: dict[str, Path]) -> None:
    _, tensors = read(unverified[arch].gguf)
    a_v, b_v = peft_pair(adapters[arch], 0, "v_proj")
    _, b_q = peft_pair(adapters[arch], 0, "q_proj")
    _, b_k = peft_pair(adapters[arch], 0, "k_proj")

    np.testing.assert_allclose(values(tensors["blk.0.attn_v.weight.lora_a"]), a_v, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(values(tensors["blk.0.attn_v.weight.lora_b"]), b_v, rtol=1e-3, atol=1e-6)
    written_q, written_k = values(tensors["blk.0.attn_q.weight.lora_b"]), values(tensors["blk.0.attn_k.weight.lora_b"])
    if GGUF_ARCH[arch] == "llama":  # B's rows move with the base weight's rows: rotate-half → interleaved pairs
        for written, b, heads in ((written_q, b_q, NUM_HEADS), (written_k, b_k, NUM_KV_HEADS)):
            expected = b.reshape(heads, 2, HEAD_DIM // 2, -1).transpose(0, 2, 1, 3).reshape(b.shape)
            np.testing.assert_allclose(written, expected, rtol=1e-3, atol=1e-6)
    else:  # NEOX RoPE: as stored
        np.testing.assert_allclose(written_q, b_q, rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(written_k, b_k, rtol=1e-3, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Setting `save_embedding_layers`:UserWarning")
def test_rslora_alpha_pattern_and_rank_pattern_are_folded_into_b(tiny_llama: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_llama, tmp_path / "adapter", use_rslora=True, alpha_pattern={"v_proj": 4},
                           rank_pattern={"o_proj": 4}, target_modules=["v_proj", "o_proj", "up_proj", "lm_head"])  # fmt: skip
    result = export_gguf_lora(adapter, tmp_path / "out", "f32", verify=False)

    fields, tensors = read(result.gguf)
    alpha = fields["adapter.lora.alpha"]
    assert alpha == 16.0 and "output.weight.lora_a" in tensors, "an untied lm_head is output.weight"
    for module, peft_alpha, rank in (("v_proj", 4, 8), ("o_proj", 16, 4), ("up_proj", 16, 8)):
        a, b = peft_pair(adapter, 0, module)
        written = tensors[f"blk.0.{GGUF_NAMES[module]}.weight.lora_b"]
        assert written.tensor_type.name == "F32" and int(written.shape[0]) == rank
        # llama.cpp applies alpha / r; PEFT applied alpha_module / sqrt(r): B carries the ratio.
        np.testing.assert_allclose(values(written) * alpha / rank, b * peft_alpha / math.sqrt(rank), rtol=1e-6)
        np.testing.assert_array_equal(values(tensors[f"blk.0.{GGUF_NAMES[module]}.weight.lora_a"]), a)


@pytest.mark.filterwarnings("ignore:Setting `save_embedding_layers`:UserWarning")
@pytest.mark.filterwarnings("ignore:Model has `tie_word_embeddings=True`:UserWarning")
@pytest.mark.filterwarnings("ignore:Careful, disabling adapter layers with bias:UserWarning")
@pytest.mark.parametrize(
    ("arch", "lora", "reason"),
    [
        ("llama", {"use_dora": True}, "DoRA"),
        ("llama", {"modules_to_save": ["lm_head"]}, "whole trained tensors (lm_head.weight"),
        ("qwen2", {"bias": "lora_only"}, "bias training (bias=lora_only)"),
        ("llama", {"target_modules": ["q_proj", "embed_tokens"]}, "LoRA on the embeddings"),
        ("qwen2", {"target_modules": ["q_proj", "lm_head"]}, "shares with its embeddings"),
    ],
)
def test_what_llama_cpp_cannot_load_is_refused_with_the_way_out(
    arch: str, lora: dict, reason: str, tiny_model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    from backend.core.task_specs import ExportSpec
    from backend.jobs.adapter_preflight import export_checks

    adapter = make_adapter(tiny_model_dirs[arch], tmp_path / "adapter", **lora)
    with pytest.raises(ExportError) as caught:
        export_gguf_lora(adapter, tmp_path / "out")
    assert reason in str(caught.value) and "target gguf" in caught.value.hint
    assert not (tmp_path / "out").exists()

    checks = export_checks(ExportSpec(source=str(adapter), target="gguf_lora"), tmp_path / "jobs")
    (error,) = [check for check in checks if check.level == "error"]
    assert reason in error.message and "Merge the adapter" in error.message, "refused before it is queued"


@pytest.mark.filterwarnings("ignore:Setting `save_embedding_layers`:UserWarning")
@pytest.mark.parametrize(
    ("lora", "reason"),
    [
        ({"target_modules": ["q_proj", "embed_tokens"]}, "LoRA on the embeddings (model.embed_tokens.weight)"),
        ({"modules_to_save": ["lm_head"]}, "whole trained tensors (lm_head.weight"),
    ],
)
def test_the_job_refuses_a_bin_adapter_by_its_tensors(
    lora: dict, reason: str, tiny_llama: Path, tmp_path: Path
) -> None:
    """Only torch reads a .bin adapter's tensor names, so the pre-flight sees its config alone: the job must look
    at the tensors, even when the config does not list them."""
    import json

    adapter = make_adapter(tiny_llama, tmp_path / "adapter", safetensors=False, **lora)
    config_file = adapter / "adapter_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "modules_to_save": None}))
    assert (adapter / "adapter_model.bin").is_file()

    with pytest.raises(ExportError) as caught:
        export_gguf_lora(adapter, tmp_path / "out", verify=False)
    assert reason in str(caught.value) and "target gguf" in caught.value.hint
    assert not (tmp_path / "out").exists()


def test_preflight_refuses_a_base_the_adapter_was_not_trained_on(
    adapters: dict[str, Path], tiny_model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    from backend.core.task_specs import ExportSpec
    from backend.jobs.adapter_preflight import export_checks

    spec = ExportSpec(source=str(adapters["llama"]), target="gguf_lora", base_model=str(tiny_model_dirs["mistral"]))
    (error,) = [check for check in export_checks(spec, tmp_path) if check.level == "error"]
    assert "The adapter was trained on" in error.message and "fingerprint" in error.message


def test_preflight_passes_a_plain_adapter_and_refuses_a_model_folder(adapters: dict[str, Path], tmp_path: Path) -> None:
    from backend.core.task_specs import ExportSpec
    from backend.jobs.adapter_preflight import export_checks

    checks = export_checks(ExportSpec(source=str(adapters["gemma"]), target="gguf_lora", lora_type="f32"), tmp_path)
    assert not [check for check in checks if check.level == "error"], checks

    (error,) = export_checks(ExportSpec(source=str(adapters["gemma"].parent), target="gguf_lora"), tmp_path)
    assert error.level == "error" and "is not an adapter; target gguf_lora" in error.message


def test_a_file_that_breaks_llama_cpps_rules_fails_the_check(adapters: dict[str, Path], tmp_path: Path) -> None:
    from backend.export.gguf.lora import check_lora_file, plan_lora_gguf, write_lora_gguf

    plan = plan_lora_gguf(adapters["llama"])
    write_lora_gguf(plan, tmp_path / "good.gguf")
    check_lora_file(tmp_path / "good.gguf", plan)
    # The q_proj pair filed under attn_k: llama.cpp refuses it ("has incorrect shape"), and so does the check.
    q = next(t for t in plan.tensors if t.name == "blk.0.attn_q.weight")
    plan.tensors = [replace(q, name="blk.0.attn_k.weight")] + [
        t for t in plan.tensors if t.name not in ("blk.0.attn_q.weight", "blk.0.attn_k.weight")
    ]
    write_lora_gguf(plan, tmp_path / "bad.gguf")
    with pytest.raises(VerificationError, match=r"blk\.0\.attn_k\.weight: lora_a .* do not fit the base tensor"):
        check_lora_file(tmp_path / "bad.gguf", plan)


def test_modelfile_names_the_adapter_and_asks_for_the_base(unverified: dict) -> None:
    result = unverified["gemma2"]
    text = result.modelfile.read_text()

    assert result.gguf == result.folder / "gemma2-LoRA-F16.gguf" and result.folder.name == "gemma2-LoRA-F16"
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert comments and "Point FROM at the base model's GGUF" in comments[0] and "export gguf" in comments[0]
    assert "FROM ./BASE-MODEL.gguf\nADAPTER ./gemma2-LoRA-F16.gguf\nTEMPLATE" in text
    assert 'PARAMETER stop "<end_of_turn>"' in text
    readme = (result.folder / "README.md").read_text()
    assert "--lora gemma2-LoRA-F16.gguf" in readme and "LM Studio" in readme


def test_without_llama_cpp_the_check_is_structural_and_says_so(
    adapters: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.export import gguf_lora_export

    monkeypatch.setattr(gguf_lora_export, "llama_cpp_installed", lambda: False)
    result = export_gguf_lora(adapters["qwen2"], tmp_path)

    assert result.checks == [] and result.llama_cpp_sample is None
    assert any("checked for structure only" in warning for warning in result.warnings)
    assert sorted(path.name for path in result.folder.iterdir()) == ["Modelfile", "README.md", "qwen2-LoRA-F16.gguf"]


def test_interrupted_export_leaves_no_folder(adapters: dict[str, Path], tmp_path: Path) -> None:
    def interrupt(stage: str, done: int, total: int) -> None:
        if stage == "writing" and done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_gguf_lora(adapters["mistral"], tmp_path, progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_cli_export_gguf_lora(
    adapters: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from backend.cli.common import EXIT_OK, EXIT_USAGE
    from backend.cli.main import main
    from backend.core.task_specs import load_spec

    assert main(["export", "gguf-lora", str(adapters["llama"]), "--out", str(tmp_path), "--no-verify"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "GGUF LoRA adapter -> " in out and "--lora" in out and "set FROM in" in out
    assert (tmp_path / "llama-LoRA-F16" / "llama-LoRA-F16.gguf").is_file()
    assert main(["export", "gguf-lora", str(adapters["llama"])]) == EXIT_USAGE

    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    assert main(["export", "gguf-lora", str(adapters["llama"]), "--type", "f32", "--queue", "--json"]) == EXIT_OK
    queued = json.loads(capsys.readouterr().out)["job"]
    spec = load_spec(Path(queued["folder"]) / "spec.yaml")
    assert (spec.target, spec.lora_type, spec.name, spec.source) == (
        "gguf_lora",
        "f32",
        "llama",
        str(adapters["llama"]),
    )


# -- llama.cpp itself: base GGUF + adapter GGUF against transformers' base + adapter ---------------


@pytest.mark.llama_cpp
@pytest.mark.parametrize("arch", ARCHS)
def test_llama_cpp_applies_the_adapter_as_peft_does(
    arch: str, adapters: dict[str, Path], tmp_path: Path, llama_cpp: object
) -> None:
    result = export_gguf_lora(adapters[arch], tmp_path, name=arch)

    (check,) = result.checks
    assert check.passed and check.top1_agreement == 1.0
    assert check.relative_diff <= GGUF_TOLERANCE["f16"].relative
    assert check.adapter_effect > 10 * check.relative_diff, "llama.cpp applied the adapter, not the base alone"
    assert result.llama_cpp_sample is not None
    assert not list(result.folder.glob(".*")), "the base GGUF written for the check is gone"


@pytest.mark.llama_cpp
@pytest.mark.filterwarnings("ignore:Setting `save_embedding_layers`:UserWarning")
def test_llama_cpp_agrees_on_folded_scales_in_f32(tiny_llama: Path, tmp_path: Path, llama_cpp: object) -> None:
    adapter = make_adapter(tiny_llama, tmp_path / "adapter", use_rslora=True, alpha_pattern={"v_proj": 4},
                           rank_pattern={"o_proj": 4}, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                       "down_proj", "lm_head"])  # fmt: skip
    (check,) = export_gguf_lora(adapter, tmp_path / "out", "f32").checks

    assert check.passed and check.adapter_effect > 10 * check.relative_diff


@pytest.mark.llama_cpp
def test_llama_cpp_catches_b_rows_left_unpermuted(
    adapters: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llama_cpp: object
) -> None:
    from backend.export import gguf_lora_export
    from backend.export.gguf.lora import plan_lora_gguf

    def unpermuted(*args: object) -> object:
        plan = plan_lora_gguf(*args)
        plan.tensors = [replace(tensor, permute_heads=None) for tensor in plan.tensors]
        return plan

    monkeypatch.setattr(gguf_lora_export, "plan_lora_gguf", unpermuted)
    with pytest.raises(VerificationError, match="MISMATCH"):
        export_gguf_lora(adapters["llama"], tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.llama_cpp
def test_smollm2_adapter_in_llama_cpp(smollm2_store: dict, tmp_path: Path, llama_cpp: object) -> None:
    record = smollm2_store["record"]
    adapter = make_adapter(record.path, tmp_path / "adapter", r=16, lora_alpha=32, base_ref="default")
    result = export_gguf_lora(adapter, tmp_path / "out", name="smollm2-test")

    (check,) = result.checks
    assert check.passed and check.adapter_effect > 10 * check.relative_diff
    fields, _ = read(result.gguf)
    assert fields["general.architecture"] == "llama" and result.llama_cpp_sample
