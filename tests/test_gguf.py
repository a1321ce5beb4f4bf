"""GGUF export (backend/export/gguf*): logits, metadata llama.cpp needs, tokenizer, packaging.

Each tiny architecture is merged once (bfloat16, like its base) and exported. The expected
keys and tensor facts below are written out per architecture from llama.cpp's loader and
converter, not taken from the converter under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend.export.errors import ExportError, VerificationError
from backend.export.gguf.verify import GGUF_TOLERANCE
from backend.export.gguf_export import export_gguf
from backend.export.merge import merge_adapter
from tests.adapters import make_adapter
from tests.tiny_models import ARCHS, GEMMA_ARCHS

GGUF_ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "gemma": "gemma", "gemma2": "gemma2",
             "gemma3": "gemma3"}  # fmt: skip
LLAMA_CPP_REQUIRED = (
    "{a}.context_length", "{a}.embedding_length", "{a}.block_count", "{a}.feed_forward_length",
    "{a}.attention.head_count", "{a}.attention.head_count_kv", "{a}.attention.layer_norm_rms_epsilon",
    "{a}.rope.freq_base", "general.architecture", "general.file_type", "general.quantization_version",
    "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id", "tokenizer.chat_template", "tokenizer.ggml.add_bos_token",
)  # fmt: skip
PER_ARCH_KEYS = {
    "llama": ("llama.rope.dimension_count", "llama.vocab_size", "tokenizer.ggml.merges", "tokenizer.ggml.pre"),
    "qwen2": ("tokenizer.ggml.merges", "tokenizer.ggml.pre"),
    "gemma": ("gemma.attention.key_length", "gemma.attention.value_length", "tokenizer.ggml.scores"),
    "gemma2": ("gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping", "gemma2.attention.sliding_window",
               "tokenizer.ggml.scores"),
    "gemma3": ("gemma3.attention.sliding_window", "gemma3.attention.key_length", "tokenizer.ggml.scores"),
}  # fmt: skip


@pytest.fixture(scope="session")
def merged(tiny_model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each tiny model with an adapter merged in (bfloat16)."""
    root = tmp_path_factory.mktemp("merged")
    out = {}
    for i, arch in enumerate(ARCHS):
        adapter = make_adapter(tiny_model_dirs[arch], root / f"{arch}-adapter", seed=10 + i)
        out[arch] = merge_adapter(adapter, root / arch, verify=False).path
    return out


@pytest.fixture(scope="session")
def exports(merged: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], object]:
    """F16 and Q8_0 exports of every merged tiny model, with their checks."""
    root = tmp_path_factory.mktemp("gguf")
    return {(arch, t): export_gguf(merged[arch], root, t, model_name=arch) for arch in ARCHS for t in ("f16", "q8_0")}


def read(path: Path) -> tuple[dict, dict]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    fields = {key: field.contents() for key, field in reader.fields.items()}
    tensors = {t.name: t for t in reader.tensors}
    return fields, tensors


def dequantized(tensor: object) -> np.ndarray:
    from gguf import dequantize

    return dequantize(tensor.data, tensor.tensor_type)


@pytest.mark.parametrize("arch", ARCHS)
def test_f16_reloaded_by_transformers_matches_merged_logits(arch: str, exports: dict) -> None:
    check = exports[(arch, "f16")].checks[0]

    assert check.passed and check.top1_agreement == 1.0
    assert check.relative_diff <= GGUF_TOLERANCE["f16"].relative


@pytest.mark.parametrize("arch", ARCHS)
def test_q8_0_within_its_looser_bound(arch: str, exports: dict) -> None:
    check = exports[(arch, "q8_0")].checks[0]

    assert check.passed
    assert check.relative_diff <= GGUF_TOLERANCE["q8_0"].relative
    assert check.top1_agreement >= GGUF_TOLERANCE["q8_0"].min_top1


@pytest.mark.parametrize("arch", ARCHS)
def test_metadata_and_tokenizer_are_what_llama_cpp_reads(arch: str, exports: dict, merged: dict[str, Path]) -> None:
    from transformers import AutoConfig, AutoTokenizer

    fields, tensors = read(exports[(arch, "f16")].gguf)
    config = AutoConfig.from_pretrained(merged[arch])
    tokenizer = AutoTokenizer.from_pretrained(merged[arch])
    a = GGUF_ARCH[arch]

    for key in (*LLAMA_CPP_REQUIRED, *PER_ARCH_KEYS.get(arch, ())):
        assert key.format(a=a) in fields, key
    assert fields["general.architecture"] == a and fields["general.file_type"] == 1
    assert fields[f"{a}.block_count"] == config.num_hidden_layers
    assert fields[f"{a}.attention.head_count_kv"] == config.num_key_value_heads
    assert fields["tokenizer.chat_template"] == tokenizer.chat_template
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens) == config.vocab_size == int(tensors["token_embd.weight"].shape[1])
    assert tokens[len(tokenizer)] == f"[PAD{len(tokenizer)}]"
    assert fields["tokenizer.ggml.token_type"][len(tokenizer)] == 5  # UNUSED
    assert fields["tokenizer.ggml.token_type"][tokenizer.convert_tokens_to_ids(tokenizer.eos_token)] == 3  # CONTROL
    if arch in GEMMA_ARCHS:
        # SentencePiece-style vocabulary: ▁ kept, byte tokens typed BYTE, no space prefix, tied head.
        assert fields["tokenizer.ggml.model"] == "llama" and fields["tokenizer.ggml.add_space_prefix"] is False
        assert fields["tokenizer.ggml.token_type"][tokens.index("<0x41>")] == 6
        assert "output.weight" not in tensors
    else:
        # Byte-level BPE; the tiny tokenizers split text with Qwen2's regex, llama.cpp's "qwen2" pre-tokenizer.
        assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "qwen2"
        assert ("output.weight" in tensors) == (not config.tie_word_embeddings)


@pytest.mark.parametrize("arch", ARCHS)
def test_tensor_layout_per_architecture(arch: str, exports: dict, merged: dict[str, Path]) -> None:
    from safetensors import safe_open

    _, tensors = read(exports[(arch, "f16")].gguf)
    with safe_open(merged[arch] / "model.safetensors", "pt") as source:
        q = source.get_tensor("model.layers.0.self_attn.q_proj.weight").float().numpy()
        norm = source.get_tensor("model.layers.0.input_layernorm.weight").float().numpy()
        if arch == "qwen2":
            bias = source.get_tensor("model.layers.0.self_attn.q_proj.bias").float().numpy()
    written_q = dequantized(tensors["blk.0.attn_q.weight"]).reshape(q.shape)
    written_norm = dequantized(tensors["blk.0.attn_norm.weight"])

    assert tensors["blk.0.attn_norm.weight"].tensor_type.name == "F32"
    if GGUF_ARCH[arch] == "llama":  # rotate-half → interleaved: row (h, i, j) comes from (h, j, i)
        heads, half = 4, q.shape[0] // 8
        expected = q.reshape(heads, 2, half, -1).transpose(0, 2, 1, 3).reshape(q.shape)
        np.testing.assert_allclose(written_q, expected, rtol=1e-3)
        assert not np.allclose(written_q, q, rtol=1e-3)
    else:  # NEOX RoPE: as stored
        np.testing.assert_allclose(written_q, q, rtol=1e-3)
    shift = 1.0 if arch in GEMMA_ARCHS else 0.0
    np.testing.assert_allclose(written_norm, norm + shift, rtol=1e-6)
    if arch == "qwen2":
        np.testing.assert_allclose(dequantized(tensors["blk.0.attn_q.bias"]), bias, rtol=1e-6)
    if arch in ("gemma2", "gemma3"):
        assert {"blk.0.post_attention_norm.weight", "blk.0.post_ffw_norm.weight", "blk.0.ffn_norm.weight"} <= set(
            tensors
        )
    if arch == "gemma3":
        assert {"blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight"} <= set(tensors)


def test_gemma2_and_gemma3_specifics(exports: dict, merged: dict[str, Path]) -> None:
    from transformers import AutoConfig

    fields, _ = read(exports[("gemma2", "f16")].gguf)
    config = AutoConfig.from_pretrained(merged["gemma2"])
    assert fields["gemma2.attn_logit_softcapping"] == pytest.approx(config.attn_logit_softcapping)
    assert fields["gemma2.final_logit_softcapping"] == pytest.approx(config.final_logit_softcapping)
    assert fields["gemma2.attention.sliding_window"] == config.sliding_window
    fields, _ = read(exports[("gemma3", "f16")].gguf)
    assert fields["gemma3.rope.freq_base"] == pytest.approx(1_000_000.0)
    assert fields["gemma3.rope.freq_base_swa"] == pytest.approx(10_000.0)
    assert fields["gemma3.attention.sliding_window_pattern"] == [True, False]
    # The tiny Gemma 3 alternates every 2nd layer; llama.cpp assumes every 6th: the user is told.
    assert any("every 6th" in warning for warning in exports[("gemma3", "f16")].warnings)


def test_q8_0_keeps_norms_f32_and_falls_back_to_f16_for_odd_rows() -> None:
    from types import SimpleNamespace

    from backend.export.gguf.arch import ARCHS as SPECS
    from backend.export.gguf.tensors import plan_tensors
    from backend.export.safetensors_io import TensorEntry

    config = SimpleNamespace(num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2, rope_parameters={},
                             tie_word_embeddings=False)  # fmt: skip
    entries = [
        TensorEntry("model.layers.0.mlp.up_proj.weight", Path("x"), "BF16", (100, 64)),
        TensorEntry("model.layers.0.mlp.down_proj.weight", Path("x"), "BF16", (64, 100)),
        TensorEntry("model.layers.0.input_layernorm.weight", Path("x"), "BF16", (64,)),
    ]
    types = {plan.name: plan.qtype.name for plan in plan_tensors(entries, SPECS["llama"], config, "q8_0")}

    assert types == {"blk.0.ffn_up.weight": "Q8_0", "blk.0.ffn_down.weight": "F16", "blk.0.attn_norm.weight": "F32"}


def test_missing_q_k_permutation_is_caught(
    merged: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from backend.export.gguf import arch

    monkeypatch.setitem(arch.ARCHS, "llama", replace(arch.ARCHS["llama"], permute_qk=False))
    with pytest.raises(VerificationError, match="MISMATCH"):
        export_gguf(merged["llama"], tmp_path, "f16")
    assert not (tmp_path / "lora-studio" / "llama-F16").exists()


def test_interrupted_export_leaves_no_folder(merged: dict[str, Path], tmp_path: Path) -> None:
    def interrupt(stage: str, done: int, total: int) -> None:
        if stage == "writing" and done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_gguf(merged["qwen2"], tmp_path, "q8_0", progress=interrupt)
    assert list((tmp_path / "lora-studio").iterdir()) == []


def test_lm_studio_layout_and_modelfile(exports: dict) -> None:
    result = exports[("gemma3", "q8_0")]

    assert result.gguf == result.folder / "gemma3-Q8_0.gguf"
    assert result.folder.parent.name == "lora-studio"  # <publisher>/<model>/<file>.gguf
    modelfile = result.modelfile.read_text()
    assert modelfile.startswith("FROM ./gemma3-Q8_0.gguf\n")
    assert 'TEMPLATE """' in modelfile and "{{ range $i, $_ := .Messages }}" in modelfile
    assert 'PARAMETER stop "<end_of_turn>"' in modelfile
    assert "<start_of_turn>model\n" in modelfile


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3"])
def test_ollama_turn_format_reproduces_the_chat_template(arch: str, merged: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    from backend.export.ollama import turn_format

    tokenizer = AutoTokenizer.from_pretrained(merged[arch])
    fmt = turn_format(tokenizer, runtime_adds_bos=True)
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]  # fmt: skip
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    assert fmt is not None
    assert fmt.render(messages, add_generation_prompt=True) == expected.removeprefix(tokenizer.bos_token)
    assert fmt.system_folded == (arch == "gemma3")


def test_smollm_default_system_prompt_becomes_modelfile_system() -> None:
    from types import SimpleNamespace

    from backend.export.ollama import TurnFormat, modelfile

    chatml = {"system": "<|im_start|>system\n", "user": "<|im_start|>user\n", "assistant": "<|im_start|>assistant\n"}
    fmt = TurnFormat("", chatml, dict.fromkeys(chatml, "<|im_end|>\n"), chatml["assistant"], False, "You are Smol.")
    text = modelfile("m.gguf", fmt, ["<|im_end|>"], None)

    assert 'SYSTEM """You are Smol."""' in text
    assert fmt.render([{"role": "user", "content": "x"}], True).startswith("<|im_start|>system\nYou are Smol.")
    assert SimpleNamespace


def test_pre_tokenizer_names() -> None:
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    from backend.export.gguf.vocab import pre_tokenizer

    def split(regex: str) -> dict:
        return {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}}, {"type": "ByteLevel", "use_regex": False}]}}  # fmt: skip

    gpt2 = {"pre_tokenizer": {"type": "ByteLevel", "use_regex": True}}
    digits = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, {"type": "ByteLevel", "use_regex": True}]}}  # fmt: skip
    assert pre_tokenizer(split(GGUF_PRE_TOKENIZER_SPLITS["qwen2"]), "")[0] == "qwen2"
    assert pre_tokenizer(split(GGUF_PRE_TOKENIZER_SPLITS["llama-bpe"]), "")[0] == "llama-bpe"
    assert pre_tokenizer(digits, "")[0] == "smollm"
    assert pre_tokenizer(gpt2, "SmolLM2 135M")[0] == "smollm"
    assert pre_tokenizer(gpt2, "my-model")[0] == "gpt-2"
    name, notes = pre_tokenizer(split(r"\w+"), "")
    assert name == "gpt-2" and notes


def test_sentencepiece_tokenizer_model(tmp_path: Path) -> None:
    import sentencepiece

    from backend.export.gguf.vocab import BYTE, CONTROL, UNKNOWN, UNUSED, build_vocab
    from tests.tiny_models import CORPUS

    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS.splitlines()), model_prefix=str(tmp_path / "tokenizer"), vocab_size=400,
        model_type="bpe", byte_fallback=True, minloglevel=2,
    )  # fmt: skip
    vocab = build_vocab(tmp_path, 448, gemma=False, family_hint="")

    assert vocab.model == "llama" and vocab.pre == "default" and len(vocab.tokens) == len(vocab.scores) == 448
    assert vocab.types[0] == UNKNOWN and vocab.types[1] == CONTROL and vocab.types[vocab.tokens.index("<0x41>")] == BYTE
    assert vocab.tokens[447] == "[PAD447]" and vocab.types[447] == UNUSED
    assert vocab.add_space_prefix is True


def test_k_quant_without_llama_cpp_says_how_to_get_it(merged: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("llama-cpp-python is installed")
    with pytest.raises(ExportError, match="llama-cpp-python is not installed") as caught:
        export_gguf(merged["llama"], tmp_path, "q4_k_m")
    assert caught.value.error_type == "dependency" and "gguf-quant" in caught.value.hint
    assert not tmp_path.joinpath("lora-studio").exists()


@pytest.mark.llama_cpp
@pytest.mark.parametrize("file_type", ["q4_k_m", "q6_k"])
def test_k_quants_through_llama_cpp(file_type: str, merged: dict[str, Path], tmp_path: Path, llama_cpp: object) -> None:
    result = export_gguf(merged["llama"], tmp_path, file_type)

    fields, _ = read(result.gguf)
    assert fields["general.file_type"] == {"q4_k_m": 15, "q6_k": 18}[file_type]
    assert all(check.passed for check in result.checks) and len(result.checks) == 2
    assert result.llama_cpp_sample is not None


def test_adapter_export_for_vllm(tiny_llama: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from backend.export.adapter_export import export_adapter

    adapter = make_adapter(tiny_llama, tmp_path / "adapter", alpha_pattern={"v_proj": 4}, rank_pattern={"o_proj": 4})
    result = export_adapter(adapter, tmp_path / "vllm")

    config = json.loads((result.path / "adapter_config.json").read_text())
    assert config["rank_pattern"] == {} and config["alpha_pattern"] == {} and config["r"] == 8
    assert not config["use_dora"] and not config["modules_to_save"]
    ids = torch.tensor([[3, 10, 20, 30, 40]])
    logits = []
    for folder in (adapter, result.path):
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32), folder)
        with torch.no_grad():
            logits.append(model.eval()(input_ids=ids).logits)
    assert float((logits[0] - logits[1]).abs().max()) < 1e-4


def test_adapter_export_refuses_what_vllm_cannot_serve(tiny_llama: Path, tmp_path: Path) -> None:
    from backend.export.adapter_export import export_adapter

    adapter = make_adapter(tiny_llama, tmp_path / "adapter", use_dora=True)
    with pytest.raises(ExportError, match="DoRA"):
        export_adapter(adapter, tmp_path / "vllm")
    assert not (tmp_path / "vllm").exists()


def test_cli_export_gguf(merged: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from backend.cli.common import EXIT_OK
    from backend.cli.main import main

    assert main(["export", "gguf", str(merged["qwen2"]), "--type", "f16", "--out", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "GGUF -> " in out and "ollama create" in out


@pytest.mark.slow
@pytest.mark.llama_cpp
def test_smollm2_merge_and_gguf_export(smollm2_store: dict, tmp_path: Path, llama_cpp: object) -> None:
    record = smollm2_store["record"]
    adapter = make_adapter(record.path, tmp_path / "adapter", r=4, lora_alpha=8, base_ref="default")

    merged_model = merge_adapter(adapter, tmp_path / "merged")
    assert merged_model.checks[0].passed and merged_model.plan.base_path == record.path
    for file_type in ("f16", "q8_0"):
        result = export_gguf(merged_model.path, tmp_path / "gguf", file_type, model_name="smollm2-test")
        assert all(check.passed for check in result.checks)
        fields, _ = read(result.gguf)
        assert fields["tokenizer.ggml.pre"] == "smollm" and fields["general.architecture"] == "llama"
        assert 'SYSTEM """You are a helpful AI assistant named SmolLM' in result.modelfile.read_text()
        assert result.llama_cpp_sample, "llama.cpp loaded the file and generated text"


def build_tiny_qwen3(out: Path) -> Path:
    """A Qwen3 like the tiny models (tests/tiny_models.py has no Qwen3): Qwen2's tokenizer, q/k norms, no biases."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from tests.tiny_models import HEAD_DIM, build_tiny_tokenizer, tiny_config

    tokenizer = build_tiny_tokenizer("qwen2")
    qwen2 = tiny_config("qwen2", tokenizer)
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id",
            "initializer_range", "tie_word_embeddings")  # fmt: skip
    config = Qwen3Config(head_dim=HEAD_DIM, **{key: getattr(qwen2, key) for key in keys})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        with torch.no_grad():
            for param in model.parameters():
                if param.dim() == 1:
                    param.add_(torch.randn_like(param), alpha=0.1)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_qwen3(tmp_path: Path) -> None:
    result = export_gguf(build_tiny_qwen3(tmp_path / "qwen3"), tmp_path / "out", "f16")

    fields, tensors = read(result.gguf)
    assert result.checks[0].passed and result.checks[0].relative_diff <= GGUF_TOLERANCE["f16"].relative
    assert fields["general.architecture"] == "qwen3" and fields["qwen3.attention.key_length"] == 16
    assert {"blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight"} <= set(tensors)
    assert "blk.0.attn_q.bias" not in tensors and "output.weight" not in tensors


def test_llama3_rope_factors_match_transformers() -> None:
    import torch
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from backend.export.gguf.arch import llama3_rope_factors

    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}  # fmt: skip
    config = LlamaConfig(hidden_size=2048, num_attention_heads=32, head_dim=64, rope_parameters=rope)
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, torch.device("cpu"))
    plain = 1.0 / (500000.0 ** (torch.arange(0, 64, 2, dtype=torch.float64) / 64))

    np.testing.assert_allclose(llama3_rope_factors(config), (plain / scaled.double()).numpy(), rtol=1e-5)
