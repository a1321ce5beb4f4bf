"""The tokenizer, written the way llama.cpp tokenizes.

Three sources, checked in this order:

* ``tokenizer.model`` (SentencePiece: Llama 2, Mistral v0.x, Gemma): ``tokenizer.ggml.model =
  "llama"``, pieces with their scores and types, pre-tokenizer ``default``.
* a ``tokenizer.json`` BPE with byte fallback and ``▁`` for spaces (Gemma-style, no ``.model``):
  also written as ``"llama"``; SentencePiece BPE models score a piece by how early it was
  merged, so score = -id, which makes llama.cpp's greedy highest-score merge follow the
  merge order (ids of merged pieces are in merge order).
* a byte-level BPE ``tokenizer.json`` (Llama 3, Qwen2, SmolLM): ``"gpt2"``, tokens in id order,
  merges, and ``tokenizer.ggml.pre`` naming the pre-tokenizer (see ``pre_tokenizer``).

Every path pads the list with UNUSED ``[PADn]`` tokens up to the model's vocabulary size, so
the token list and the embedding rows agree, as llama.cpp requires.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.export.errors import ExportError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")
_PREFERRED_PRE_NAMES = ("llama-bpe", "qwen2", "gpt-4o", "tekken", "qwen35")
"""When several llama.cpp pre-tokenizer names share one split regex, the canonical name to write."""


@dataclass
class Vocab:
    """Everything ``tokenizer.ggml.*`` says about the vocabulary itself."""

    model: str
    pre: str
    tokens: list[str]
    types: list[int]
    scores: list[float] | None = None
    add_space_prefix: bool | None = None
    notes: list[str] = field(default_factory=list)


def build_vocab(model_dir: Path, vocab_size: int, gemma: bool, family_hint: str) -> Vocab:
    """Read the folder's tokenizer into llama.cpp's form; ``family_hint`` is the model's name, for SmolLM."""
    if (model_dir / "tokenizer.model").is_file():
        vocab = _sentencepiece(model_dir, vocab_size)
        vocab.add_space_prefix = False if gemma else _adds_space_prefix(_tokenizer_json(model_dir))
        return vocab
    data = _tokenizer_json(model_dir)
    if data is None:
        raise ExportError(f"{model_dir} has neither tokenizer.json nor tokenizer.model; GGUF needs the tokenizer.")
    model = data["model"]
    if model.get("type") != "BPE":
        raise ExportError(f"A {model.get('type')} tokenizer.json cannot be written to GGUF by LoRA Studio yet.")
    if model.get("byte_fallback"):
        vocab = _metaspace_bpe(data, vocab_size)
        vocab.add_space_prefix = False if gemma else _adds_space_prefix(data)
        return vocab
    return _byte_level_bpe(data, vocab_size, family_hint)


def pre_tokenizer(data: dict[str, Any], family_hint: str) -> tuple[str, list[str]]:
    """llama.cpp's name for the tokenizer's pre-tokenizer, read from its structure, and notes.

    llama.cpp's converter hashes a test string's token ids instead; a LoRA leaves the
    tokenizer as the base had it, so the structure identifies the base family's name:
    the Qwen2 split regex is ``qwen2``, Llama 3's is ``llama-bpe``, digits split before
    GPT-2's byte-level regex is ``smollm``, GPT-2's alone is ``gpt-2`` (or ``smollm`` for a
    SmolLM whose tokenizer was rebuilt from its GGUF, which drops the digit split).
    """
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    pre = data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        regex = (steps[0].get("pattern") or {}).get("Regex")
        names = [name for name, split in GGUF_PRE_TOKENIZER_SPLITS.items() if split == regex]
        if names:
            return next((n for n in _PREFERRED_PRE_NAMES if n in names), names[0]), []
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex"):
        return "smollm", []
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return ("smollm" if "smollm" in family_hint.lower() else "gpt-2"), []
    return "gpt-2", [
        f"The tokenizer's pre-tokenizer ({', '.join(map(str, kinds))}) matches none llama.cpp names; wrote 'gpt-2' "
        "(GPT-2's byte-level split, the generic one). llama.cpp may tokenize some text differently."
    ]


def _tokenizer_json(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / "tokenizer.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _by_id(data: dict[str, Any], vocab_size: int) -> tuple[list[str | None], dict[int, dict[str, Any]]]:
    """Token text by id (holes as None) and the added tokens by id; refuses ids past the embedding."""
    added = {token["id"]: token for token in data.get("added_tokens", [])}
    pieces: dict[int, str] = {i: t for t, i in data["model"]["vocab"].items()}
    pieces.update({i: token["content"] for i, token in added.items()})
    if pieces and max(pieces) >= vocab_size:
        raise ExportError(
            f"The tokenizer has token id {max(pieces)} but the model's embedding has only {vocab_size} rows; "
            "the tokenizer does not belong to this model."
        )
    return [pieces.get(i) for i in range(vocab_size)], added


def _padded(tokens: list[str | None], types: list[int]) -> tuple[list[str], list[int]]:
    out_tokens, out_types = [], []
    for i, (token, kind) in enumerate(zip(tokens, types, strict=True)):
        out_tokens.append(token if token is not None else f"[PAD{i}]")
        out_types.append(kind if token is not None else UNUSED)
    return out_tokens, out_types


def _added_type(token: dict[str, Any]) -> int:
    return CONTROL if token.get("special") else USER_DEFINED


def _byte_level_bpe(data: dict[str, Any], vocab_size: int, family_hint: str) -> Vocab:
    tokens, added = _by_id(data, vocab_size)
    types = [_added_type(added[i]) if i in added else NORMAL for i in range(vocab_size)]
    pre, notes = pre_tokenizer(data, family_hint)
    tokens_out, types_out = _padded(tokens, types)
    return Vocab(model="gpt2", pre=pre, tokens=tokens_out, types=types_out, notes=notes)


def _metaspace_bpe(data: dict[str, Any], vocab_size: int) -> Vocab:
    tokens, added = _by_id(data, vocab_size)
    unk = data["model"].get("unk_token")
    types, scores = [], []
    for i, token in enumerate(tokens):
        if i in added:
            kind = UNKNOWN if token == unk else _added_type(added[i])
        elif token is not None and _BYTE_TOKEN.fullmatch(token):
            kind = BYTE
        else:
            kind = NORMAL
        types.append(kind)
        scores.append(-float(i) if kind == NORMAL else 0.0)
    tokens_out, types_out = _padded(tokens, types)
    return Vocab(model="llama", pre="default", tokens=tokens_out, types=types_out, scores=scores)


def _sentencepiece(model_dir: Path, vocab_size: int) -> Vocab:
    from sentencepiece import SentencePieceProcessor

    processor = SentencePieceProcessor()
    processor.LoadFromFile(str(model_dir / "tokenizer.model"))
    tokens: list[str | None] = [None] * vocab_size
    types, scores = [UNUSED] * vocab_size, [-10000.0] * vocab_size
    if processor.vocab_size() > vocab_size:
        raise ExportError(f"tokenizer.model has {processor.vocab_size()} pieces but the model only {vocab_size} rows.")
    for i in range(processor.vocab_size()):
        tokens[i], scores[i] = processor.IdToPiece(i), processor.GetScore(i)
        types[i] = (
            UNKNOWN if processor.IsUnknown(i)
            else CONTROL if processor.IsControl(i)
            else UNUSED if processor.IsUnused(i)
            else BYTE if processor.IsByte(i)
            else NORMAL
        )  # fmt: skip
    data = _tokenizer_json(model_dir) or {}
    for token in data.get("added_tokens", []):
        if token["id"] < vocab_size:
            tokens[token["id"]], scores[token["id"]] = token["content"], -1000.0
            types[token["id"]] = _added_type(token)
    tokens_out, types_out = _padded(tokens, types)
    return Vocab(model="llama", pre="default", tokens=tokens_out, types=types_out, scores=scores)


def _adds_space_prefix(data: dict[str, Any] | None) -> bool:
    """Whether the tokenizer puts ``▁`` before the first word (Llama 2 yes, Gemma no)."""
    if data is None:
        return True
    text = json.dumps([data.get("normalizer"), data.get("pre_tokenizer")])
    return '"Prepend"' in text or '"prepend_scheme": "always"' in text or '"prepend_scheme": "first"' in text
