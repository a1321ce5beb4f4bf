"""The tiny models behave like real checkpoints of their families, so other tests can trust them."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from tests.tiny_models import (
    ARCHS,
    CORPUS,
    GEMMA_ARCHS,
    HEAD_DIM,
    NUM_HEADS,
    NUM_KV_HEADS,
    build_tiny_model,
    build_tiny_tokenizer,
    style_of,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

MODEL_CLASS = {
    "llama": ("llama", "LlamaForCausalLM"),
    "qwen2": ("qwen2", "Qwen2ForCausalLM"),
    "mistral": ("mistral", "MistralForCausalLM"),
    "gemma": ("gemma", "GemmaForCausalLM"),
    "gemma2": ("gemma2", "Gemma2ForCausalLM"),
    "gemma3": ("gemma3_text", "Gemma3ForCausalLM"),
}
TOKENIZER_CLASS = {
    "llama": "TokenizersBackend",
    "qwen2": "Qwen2Tokenizer",
    "mistral": "TokenizersBackend",
    "gemma": "GemmaTokenizer",
    "gemma2": "GemmaTokenizer",
    "gemma3": "GemmaTokenizer",
}
TIED = {"qwen2", "gemma", "gemma2", "gemma3"}

ENGLISH = (
    "Hello there! Fine-tuning a 7B model on 2 GPUs isn't hard; it's just slow.\n"
    "\tAn indented line,  with two spaces and a zebra-striped xylophone.\n\n"
    "Café, naïve, 東京 and 🤖 are not in the training corpus."
)
CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome, a city full of history."},
]


def arch_of(model_dir: Path) -> str:
    """conftest names each model folder after its architecture."""
    return model_dir.name


def expected_chat(arch: str, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """The text each family's official template writes, spelled out by hand."""
    if arch in GEMMA_ARCHS:
        system, *turns = messages
        text = "<bos>"
        for i, message in enumerate(turns):
            role = "model" if message["role"] == "assistant" else "user"
            prefix = system["content"] + "\n\n" if i == 0 else ""
            text += f"<start_of_turn>{role}\n{prefix}{message['content']}<end_of_turn>\n"
        return text + ("<start_of_turn>model\n" if add_generation_prompt else "")
    text = "<|begin_of_text|>" if style_of(arch).add_bos else ""
    for message in messages:
        text += f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n"
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def test_files_look_like_a_hub_checkpoint(tiny_model: Path) -> None:
    arch = arch_of(tiny_model)
    names = {path.name for path in tiny_model.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    } <= names
    assert not names & {"pytorch_model.bin", "vocab.json", "merges.txt", "tokenizer.model"}
    with safe_open(tiny_model / "model.safetensors", "pt") as weights:
        keys = set(weights.keys())
        assert {weights.get_slice(key).get_dtype() for key in keys} == {"BF16"}
    assert ("lm_head.weight" in keys) == (arch not in TIED)
    assert ("model.layers.0.self_attn.q_proj.bias" in keys) == (arch == "qwen2")


def test_config_fits_tokenizer_and_bnb_and_gguf(tiny_model: Path) -> None:
    arch = arch_of(tiny_model)
    config = AutoConfig.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert (config.model_type, config.architectures) == (MODEL_CLASS[arch][0], [MODEL_CLASS[arch][1]])
    assert config.vocab_size > len(tokenizer)  # padded like Qwen2 and Gemma 3 on the Hub
    assert config.bos_token_id == tokenizer.bos_token_id
    assert config.eos_token_id == tokenizer.eos_token_id
    assert config.pad_token_id == tokenizer.pad_token_id
    assert config.hidden_size % 64 == 0 and config.intermediate_size % 64 == 0
    assert config.head_dim == HEAD_DIM and HEAD_DIM >= 8 and HEAD_DIM % 2 == 0
    assert (config.num_attention_heads, config.num_key_value_heads) == (NUM_HEADS, NUM_KV_HEADS)


def test_model_loads_and_gives_logits_for_a_padded_batch(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert type(model).__name__ == MODEL_CLASS[arch_of(tiny_model)][1]
    assert model.dtype == torch.bfloat16
    batch = tokenizer(["The cat sat on the mat.", "Hi"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch["input_ids"].shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()


def test_generate_stops_on_configured_tokens(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    prompt = tokenizer.apply_chat_template(
        CONVERSATION[:2], add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    output = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert prompt["input_ids"].shape[1] < output.shape[1] <= prompt["input_ids"].shape[1] + 4
    stop_ids = model.generation_config.eos_token_id
    stop_ids = stop_ids if isinstance(stop_ids, list) else [stop_ids]
    end_of_turn = style_of(arch_of(tiny_model)).turn_tokens[1]
    assert {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(end_of_turn)} == set(stop_ids)


def test_tokenizer_class_and_special_tokens(tiny_model: Path) -> None:
    arch = arch_of(tiny_model)
    style = style_of(arch)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert type(tokenizer).__name__ == TOKENIZER_CLASS[arch]
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (style.bos, style.eos, style.pad)
    assert len({tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}) == 3
    for token in style.turn_tokens:
        assert tokenizer.tokenize(token) == [token]
    assert 300 <= len(tokenizer) <= 1000


def test_tokenizer_round_trips_english(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ids = tokenizer(ENGLISH, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == ENGLISH
    assert len(ids) < len(ENGLISH.encode()) * 0.8  # merges were learned: fewer tokens than bytes
    with_specials = tokenizer(ENGLISH)["input_ids"]
    assert tokenizer.decode(with_specials, skip_special_tokens=True) == ENGLISH


def test_only_some_families_prepend_bos(tiny_model: Path) -> None:
    """BOS lives in the saved post-processor; transformers 5 drops ``add_bos_token`` on save."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ids = tokenizer("Hello")["input_ids"]
    assert (ids[0] == tokenizer.bos_token_id) == style_of(arch_of(tiny_model)).add_bos
    chat_ids = tokenizer.apply_chat_template(CONVERSATION, return_dict=True)["input_ids"]
    assert chat_ids.count(tokenizer.bos_token_id) == int(style_of(arch_of(tiny_model)).add_bos)


def test_saved_tokenizer_encodes_like_the_built_one(tiny_model: Path) -> None:
    """Holds even where ``AutoTokenizer`` rebuilds the pipeline from vocab and merges (Qwen2, Gemma)."""
    loaded = AutoTokenizer.from_pretrained(tiny_model)
    built = build_tiny_tokenizer(arch_of(tiny_model))
    for text in [*CORPUS.splitlines(), ENGLISH]:
        assert loaded(text)["input_ids"] == built(text)["input_ids"]


def test_chat_template_renders_each_family_format(tiny_model: Path) -> None:
    arch = arch_of(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert tokenizer.apply_chat_template(CONVERSATION, tokenize=False) == expected_chat(arch, CONVERSATION, False)
    prompt = CONVERSATION[:2]
    rendered = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    assert rendered == expected_chat(arch, prompt, True)


def test_assistant_mask_covers_answers_and_end_of_turn_only(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    end_of_turn = style_of(arch_of(tiny_model)).turn_tokens[1]
    encoded = tokenizer.apply_chat_template(CONVERSATION, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    spans: list[list[int]] = []
    for i, (token_id, flag) in enumerate(zip(ids, mask, strict=True)):
        if flag:
            if i == 0 or not mask[i - 1]:
                spans.append([])
            spans[-1].append(token_id)
    answers = [m["content"] + end_of_turn for m in CONVERSATION if m["role"] == "assistant"]
    assert [tokenizer.decode(span) for span in spans] == answers
    first = mask.index(1)
    assert tokenizer.decode(ids[:first]).endswith(("<|im_start|>assistant\n", "<start_of_turn>model\n"))


def test_trl_accepts_the_template_for_assistant_only_loss(tiny_model: Path) -> None:
    from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert has_generation_markers(tokenizer.chat_template)
    assert is_chat_template_stop_token_trained(tokenizer)


def test_loads_in_4bit_nf4_on_cpu(tiny_model: Path) -> None:
    import bitsandbytes as bnb

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model, quantization_config=quantization, device_map={"": "cpu"})
    quantized = [module for module in model.modules() if isinstance(module, bnb.nn.Linear4bit)]
    assert len(quantized) == 7 * model.config.num_hidden_layers  # q, k, v, o, gate, up, down
    assert {module.weight.quant_state.quant_type for module in quantized} == {"nf4"}
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    with torch.no_grad():
        logits = model(**tokenizer("The capital of France is Paris.", return_tensors="pt")).logits
    assert logits.shape[-1] == model.config.vocab_size
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("tiny_model", ["gemma2"], indirect=True)
def test_tiny_model_can_be_narrowed_to_one_arch(tiny_model: Path, tiny_llama: Path) -> None:
    assert tiny_model.name == "gemma2"
    assert AutoConfig.from_pretrained(tiny_llama).model_type == "llama"


def test_builds_are_identical_across_processes(tiny_model_dirs: dict[str, Path], tmp_path: Path) -> None:
    """Same seed, same bytes: tokenizer training and weight init don't depend on the process."""
    script = (
        "import sys; from pathlib import Path; from tests.tiny_models import ARCHS, build_tiny_model\n"
        "for arch in ARCHS: build_tiny_model(arch, Path(sys.argv[1]) / arch)"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO_ROOT, check=True, capture_output=True)
    for arch, built in tiny_model_dirs.items():
        names = sorted(path.name for path in built.iterdir())
        _, mismatch, errors = filecmp.cmpfiles(built, tmp_path / arch, names, shallow=False)
        assert (mismatch, errors) == ([], []), arch


def test_another_seed_changes_weights_not_tokenizer(tiny_llama: Path, tmp_path: Path) -> None:
    other = build_tiny_model("llama", tmp_path / "llama", seed=1)
    assert filecmp.cmp(tiny_llama / "tokenizer.json", other / "tokenizer.json", shallow=False)
    assert not filecmp.cmp(tiny_llama / "model.safetensors", other / "model.safetensors", shallow=False)


def test_building_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_model("qwen2", tmp_path / "qwen2")
    assert torch.equal(torch.rand(3), expected)


def test_unknown_arch_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tiny architecture 'gpt2'"):
        build_tiny_model("gpt2", tmp_path / "gpt2")


def test_every_arch_has_a_fixture(tiny_model_dirs: dict[str, Path]) -> None:
    assert tuple(tiny_model_dirs) == ARCHS
    assert {"llama", "qwen2", "gemma2"} <= set(ARCHS)


def test_hub_is_offline_for_the_whole_suite() -> None:
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE
