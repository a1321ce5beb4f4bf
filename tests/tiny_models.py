"""Tiny causal LMs of real architectures, built locally so no test downloads anything.

Each model has random weights but real structure (grouped-query attention, 2 layers,
realistic per-family quirks such as Qwen2's q/k/v bias or Gemma's tied embeddings and
sliding-window layers) and ships with a tokenizer trained here on a small English corpus,
in the style its family uses on the Hub:

* ``llama``, ``qwen2``, ``mistral``: byte-level BPE (``tokenizer.json`` only, like
  Llama 3, Qwen2 and SmolLM) with a ChatML chat template.
* ``gemma``, ``gemma2``, ``gemma3``: SentencePiece-style BPE (``▁`` for spaces, byte
  fallback) with Gemma's ``<start_of_turn>`` chat template.

Both chat templates wrap assistant turns in ``{% generation %}`` so that
``apply_chat_template(..., return_assistant_tokens_mask=True)`` works, which trl's
``assistant_only_loss`` relies on. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

# torch and transformers are imported inside the functions that need them: conftest imports
# this module, and importing them costs seconds that tests without a model should not pay.

ARCHS: tuple[str, ...] = ("llama", "qwen2", "mistral", "gemma", "gemma2", "gemma3")
"""Architectures :func:`build_tiny_model` knows, by Hugging Face ``model_type`` family."""

GEMMA_ARCHS: frozenset[str] = frozenset({"gemma", "gemma2", "gemma3"})

HIDDEN_SIZE = 64
INTERMEDIATE_SIZE = 128
NUM_LAYERS = 2
NUM_HEADS = 4
NUM_KV_HEADS = 2
HEAD_DIM = HIDDEN_SIZE // NUM_HEADS
MAX_POSITIONS = 1024
SLIDING_WINDOW = 32
VECTOR_NOISE = 0.1
"""Standard deviation of the noise added to every 1-D parameter (norm scales, biases)."""
TOKENIZER_VOCAB = 512
"""Trained vocabulary size, the 256 byte tokens included; special tokens come on top."""
VOCAB_MULTIPLE = 64
"""Configs round the vocabulary up to this, so ``vocab_size > len(tokenizer)`` like Qwen2 and Gemma 3."""

CORPUS = """\
The quick brown fox jumps over the lazy dog while the farmer watches from the gate.
A small model can learn a surprising amount from a few thousand sentences of text.
Fine-tuning adapts a pretrained language model to a new task with far less data.
Low-rank adapters add two thin matrices next to each frozen weight of the network.
During training only the adapter weights change, so the saved checkpoint stays small.
After training, the adapter can be merged back into the base model for fast inference.
Quantization stores each weight in four bits instead of sixteen and saves a lot of memory.
The learning rate controls how far each step moves the weights along the gradient.
If the loss goes down on the training set but up on the validation set, the model overfits.
Please write a short poem about the sea, the wind and the light on the water.
What is the capital of France? The capital of France is Paris, a city on the Seine.
How many legs does a spider have? A spider has eight legs and most spiders spin webs.
Can you explain what a neural network is in simple words for a young student?
A neural network is a function with many numbers inside that are tuned by examples.
The weather today is sunny with a light breeze, and tomorrow it will probably rain.
She opened the window, took a deep breath, and started to write the first chapter.
He said that the meeting would start at nine o'clock, but it started at half past ten.
They're going to the market on Saturday to buy apples, bread, cheese and fresh flowers.
We've been working on this project for three months and it's finally ready to ship.
I'll send you the report tonight; let me know if you have any questions about it.
Numbers such as 1, 2, 3, 10, 42, 100, 2024 and 3.14 appear in many kinds of text.
Cooking pasta is easy: boil water, add salt, cook the pasta, then drain it well.
The library opens at eight in the morning and closes at six in the evening.
Every good story has a beginning, a middle and an end, and a reason to keep reading.
The assistant answered the question politely and then asked if anything else was needed.
You are a helpful assistant. Answer the user's questions clearly and briefly.
Thank you for your help! You're welcome, I'm happy to help with anything else.
Mountains, rivers, forests and deserts cover the surface of our beautiful planet.
The train to the city leaves every hour from the station near the old bridge.
Good software is tested, documented and simple enough for others to understand.
A function takes some input, does some work, and returns a value to the caller.
Errors should never pass silently, unless they are explicitly silenced on purpose.
Reading every day improves vocabulary, focus and the ability to explain ideas.
The children played in the garden until the sun went down behind the hills.
Data sets for instruction tuning contain pairs of prompts and helpful responses.
Each conversation has a system message, a user message and an assistant reply.
The tokenizer splits text into pieces, and each piece is mapped to a number.
Common words become single tokens, while rare words are split into smaller parts.
Music, painting and dance are forms of art that people have enjoyed for centuries.
The doctor told him to drink more water, sleep well and walk for an hour a day.
Our team will review the results next week and decide what to do after that.
Summer is warm, autumn is windy, winter is cold and spring brings new flowers.
The cat sat on the mat, looked at the bird, and then went back to sleep.
Write a list of three things you are grateful for and why they matter to you.
Translate the sentence into French: I would like a cup of coffee, please.
Summarize the following paragraph in one sentence that keeps the main idea.
The answer is correct because the sum of the angles of a triangle is always 180 degrees.
History teaches us that small changes, repeated over time, can have large effects.
If you have any questions, feel free to ask; there are no stupid questions here.
Open the settings, choose a model, pick a data set, and press the start button.
"""
"""A few KB of plain English to train the tiny tokenizers on; kept in code so builds need no files."""

BYTE_LEVEL_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""Qwen2's pre-tokenizer regex. ``AutoTokenizer`` rebuilds every qwen2 tokenizer around it,
ignoring the pipeline in ``tokenizer.json``, so the byte-level BPE is trained with exactly it."""

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""ChatML (Qwen2, SmolLM); the assistant content and its ``<|im_end|>`` are the trained part."""

GEMMA_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}"
    "{%- set first_user_prefix = '' %}"
    "{%- set loop_messages = messages %}"
    "{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<start_of_turn>model\\n' }}"
    "{%- generation %}{{- message['content'] | trim + '<end_of_turn>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<start_of_turn>' + message['role'] + '\\n' + (first_user_prefix if loop.first else '') }}"
    "{{- message['content'] | trim + '<end_of_turn>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}"
)
"""Gemma 3's template: Gemma has no system role, so system text opens the first user turn;
the model's content and its ``<end_of_turn>`` are the trained part."""

_NL = "{{ '\\n' }}"
TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n{% if messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif %}"
    "# Tools\n<tools>{% for tool in tools %}\n{{ tool | tojson }}{% endfor %}\n</tools><|im_end|>" + _NL + ""
    "{% elif messages[0].role == 'system' %}<|im_start|>system\n{{ messages[0].content }}<|im_end|>" + _NL + ""
    "{% endif %}{% for message in messages %}"
    "{% if message.role == 'user' %}<|im_start|>user\n{{ message.content }}<|im_end|>" + _NL + ""
    "{% elif message.role == 'assistant' %}<|im_start|>assistant\n{% generation %}{{ message.content }}"
    "{% for call in message.tool_calls or [] %}{% if message.content or not loop.first %}" + _NL + "{% endif %}"
    '<tool_call>\n{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}\n'
    "</tool_call>{% endfor %}<|im_end|>{% endgeneration %}" + _NL + ""
    "{% elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}\n</tool_response>"
    "<|im_end|>" + _NL + "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen2.5/Hermes-style ChatML with tools: a tool list in the system turn, calls as ``<tool_call>`` JSON,
results as ``<tool_response>``; for the byte-level (ChatML) families, given to :func:`build_tiny_model`."""


@dataclass(frozen=True)
class TokenizerStyle:
    """A family's special tokens, BOS habit and chat template."""

    bos: str
    eos: str
    pad: str
    unk: str | None
    turn_tokens: tuple[str, str]
    """Start-of-turn and end-of-turn tokens of the chat template."""
    add_bos: bool
    """Whether the tokenizer itself prepends BOS to every encoding."""
    chat_template: str

    def specials(self) -> list[str]:
        """Special tokens in vocabulary order: Gemma's (pad, eos, bos, unk, mask) or Qwen2's (endoftext first)."""
        if self.unk is not None:
            ordered = [self.pad, self.eos, self.bos, self.unk, "<mask>", *self.turn_tokens]
        else:
            ordered = [self.pad, *self.turn_tokens, self.bos]
        return list(dict.fromkeys(ordered))


CHATML_STYLE = TokenizerStyle(
    bos="<|begin_of_text|>",
    eos="<|im_end|>",
    pad="<|endoftext|>",
    unk=None,
    turn_tokens=("<|im_start|>", "<|im_end|>"),
    add_bos=False,
    chat_template=CHATML_TEMPLATE,
)
"""Qwen2 style: BOS exists but never appears in the token stream; EOS ends a turn."""

CHATML_STYLE_WITH_BOS = TokenizerStyle(
    bos="<|begin_of_text|>",
    eos="<|im_end|>",
    pad="<|endoftext|>",
    unk=None,
    turn_tokens=("<|im_start|>", "<|im_end|>"),
    add_bos=True,
    chat_template="{{- bos_token }}" + CHATML_TEMPLATE,
)
"""Llama 3 style BOS (prepended by the tokenizer and written by the template) with ChatML turns."""

GEMMA_STYLE = TokenizerStyle(
    bos="<bos>",
    eos="<eos>",
    pad="<pad>",
    unk="<unk>",
    turn_tokens=("<start_of_turn>", "<end_of_turn>"),
    add_bos=True,
    chat_template=GEMMA_TEMPLATE,
)
"""Gemma style: BOS prepended, ``<end_of_turn>`` (not EOS) ends a turn."""

STYLES: dict[str, TokenizerStyle] = {
    "llama": CHATML_STYLE_WITH_BOS,
    "mistral": CHATML_STYLE_WITH_BOS,
    "qwen2": CHATML_STYLE,
    "gemma": GEMMA_STYLE,
    "gemma2": GEMMA_STYLE,
    "gemma3": GEMMA_STYLE,
}


def style_of(arch: str) -> TokenizerStyle:
    """The tokenizer style of ``arch``; raises ``ValueError`` for an unknown architecture."""
    if arch not in STYLES:
        raise _unknown_arch(arch)
    return STYLES[arch]


def _unknown_arch(arch: str) -> ValueError:
    return ValueError(f"unknown tiny architecture {arch!r}; choose one of {', '.join(ARCHS)}")


@cache
def _train_byte_level_bpe() -> str:
    """A byte-level BPE in Qwen2's pipeline, without special tokens, as ``tokenizer.json`` text.

    Cached because every byte-level family shares it; returning text keeps callers from
    sharing one mutable ``Tokenizer``.
    """
    tokenizer = Tokenizer(BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(BYTE_LEVEL_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS.splitlines(), trainer)
    return tokenizer.to_str()


@cache
def _train_sentencepiece_bpe() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    """Pieces (with ids) and merges of a SentencePiece-style BPE where ``▁`` stands for a space.

    Training splits before every ``▁`` and around newlines, as SentencePiece does, so no
    merge crosses a word boundary and Gemma's runtime pipeline needs no pre-tokenizer.
    Room is left for the 256 byte-fallback tokens.
    """
    tokenizer = Tokenizer(BPE())
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("▁", behavior="merged_with_next"),
            pre_tokenizers.Split(Regex(r"\n+"), behavior="isolated"),
        ]
    )
    tokenizer.train_from_iterator(
        CORPUS.splitlines(), BpeTrainer(vocab_size=TOKENIZER_VOCAB - 256, show_progress=False)
    )
    model = json.loads(tokenizer.to_str())["model"]
    return tuple(model["vocab"].items()), tuple(tuple(merge) for merge in model["merges"])


def _byte_level_tokenizer(style: TokenizerStyle) -> Tokenizer:
    """The trained byte-level BPE with the style's special tokens at the front of the vocabulary."""
    trained = json.loads(_train_byte_level_bpe())
    pieces = trained["model"]["vocab"]
    vocab = {token: i for i, token in enumerate(style.specials())}
    for token in sorted(pieces, key=pieces.__getitem__):
        vocab.setdefault(token, len(vocab))
    trained["model"]["vocab"] = vocab
    tokenizer = Tokenizer.from_str(json.dumps(trained))
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def _gemma_vocab(style: TokenizerStyle) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Gemma's layout: special tokens, then the 256 ``<0xNN>`` byte-fallback tokens, then pieces."""
    pieces, merges = _train_sentencepiece_bpe()
    vocab = {token: i for i, token in enumerate(style.specials())}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for token, _ in sorted(pieces, key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    return vocab, list(merges)


def build_tiny_tokenizer(arch: str, chat_template: str | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer :func:`build_tiny_model` saves for ``arch``: special tokens, chat template and all.

    ``chat_template`` replaces the family's (``TOOLS_TEMPLATE`` for a model that calls tools).

    Gemma and Qwen2 get their own transformers classes, as on the Hub. ``AutoTokenizer``
    rebuilds those from vocab and merges with a hard-coded pipeline, which is why the
    tokenizers here are trained in exactly that pipeline: what loads encodes like what was saved.
    """
    from transformers import GemmaTokenizer, Qwen2Tokenizer, TokenizersBackend

    style = style_of(arch)
    common = {
        "bos_token": style.bos,
        "eos_token": style.eos,
        "pad_token": style.pad,
        "extra_special_tokens": [t for t in style.turn_tokens if t not in (style.bos, style.eos, style.pad)],
        "add_bos_token": style.add_bos,
        "add_eos_token": False,
        "chat_template": chat_template or style.chat_template,
        "model_max_length": MAX_POSITIONS,
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
    }
    if arch in GEMMA_ARCHS:
        vocab, merges = _gemma_vocab(style)
        return GemmaTokenizer(vocab=vocab, merges=merges, unk_token=style.unk, mask_token="<mask>", **common)
    backend = _byte_level_tokenizer(style)
    if arch == "qwen2":
        model = json.loads(backend.to_str())["model"]
        merges = [tuple(merge) for merge in model["merges"]]
        return Qwen2Tokenizer(vocab=model["vocab"], merges=merges, unk_token=None, **common)
    return TokenizersBackend(tokenizer_object=backend, **common)


def tiny_config(arch: str, tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """A 2-layer GQA config for ``arch`` whose vocabulary and special-token ids fit ``tokenizer``.

    Per-family choices follow the Hub: Llama and Mistral keep a separate ``lm_head``,
    small Qwen2 and all Gemmas tie it to the embeddings; Gemma 2 and 3 alternate sliding
    and full attention with a window short enough for test sequences to reach.
    """
    from transformers import (
        Gemma2Config,
        Gemma3TextConfig,
        GemmaConfig,
        LlamaConfig,
        MistralConfig,
        Qwen2Config,
    )

    common = {
        "vocab_size": math.ceil((len(tokenizer) + 1) / VOCAB_MULTIPLE) * VOCAB_MULTIPLE,
        "hidden_size": HIDDEN_SIZE,
        "intermediate_size": INTERMEDIATE_SIZE,
        "num_hidden_layers": NUM_LAYERS,
        "num_attention_heads": NUM_HEADS,
        "num_key_value_heads": NUM_KV_HEADS,
        "head_dim": HEAD_DIM,
        "max_position_embeddings": MAX_POSITIONS,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        # Ten times the usual 0.02: at width 64 the default gives near-uniform logits that a LoRA
        # (which cannot rescale the frozen head) moves only slowly, and tests need a loss that falls.
        "initializer_range": 0.2,
    }
    alternating = {
        "query_pre_attn_scalar": HEAD_DIM,
        "sliding_window": SLIDING_WINDOW,
        "layer_types": ["sliding_attention", "full_attention"],
    }
    match arch:
        case "llama":
            return LlamaConfig(**common, tie_word_embeddings=False)
        case "mistral":
            return MistralConfig(**common, sliding_window=None, tie_word_embeddings=False)
        case "qwen2":
            return Qwen2Config(**common, tie_word_embeddings=True)
        case "gemma":
            return GemmaConfig(**common)
        case "gemma2":
            return Gemma2Config(**common, **alternating)
        case "gemma3":
            # Keep the legacy pattern field in line with layer_types (it defaults to 6).
            return Gemma3TextConfig(**common, **alternating, sliding_window_pattern=2)
        case _:
            raise _unknown_arch(arch)


def build_tiny_model(
    arch: str, out_dir: Path, *, seed: int = 0, dtype: str = "bfloat16", chat_template: str | None = None
) -> Path:
    """Save a random-weight ``arch`` model and its tokenizer into ``out_dir``, and return ``out_dir``.

    Weights are random (norm scales and biases included) and stored as safetensors in
    ``dtype`` (a torch dtype name; bfloat16 like most Hub checkpoints). The global torch RNG
    is left untouched, so building never changes the randomness of the test that asked for a
    model. ``generation_config.json`` stops on the end-of-turn token as well as EOS where
    they differ, as Gemma's instruct models do.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    tokenizer = build_tiny_tokenizer(arch, chat_template)
    config = tiny_config(arch, tokenizer)
    with torch.random.fork_rng(devices=[]):
        # Mixing in the architecture keeps same-shaped families (Llama, Mistral) apart.
        torch.manual_seed(zlib.crc32(f"{arch}:{seed}".encode()))
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
        # Norm scales and biases start as constants (1 or 0); noise on top of them makes a
        # conversion that drops, permutes or mis-shifts them change the outputs.
        with torch.no_grad():
            for param in model.parameters():
                if param.dim() == 1:
                    param.add_(torch.randn_like(param), alpha=VECTOR_NOISE)
    end_of_turn_id = tokenizer.convert_tokens_to_ids(style_of(arch).turn_tokens[1])
    stop_ids = list(dict.fromkeys([tokenizer.eos_token_id, end_of_turn_id]))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_ids if len(stop_ids) > 1 else stop_ids[0],
        pad_token_id=tokenizer.pad_token_id,
    )
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
