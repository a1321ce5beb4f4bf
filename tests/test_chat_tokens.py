"""Loss masks from the model's own chat template, for every tiny architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from backend.data.chat_tokens import IGNORE, RowRefused, TemplateError, tokenize_chat

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What colour is the sky?"},
    {"role": "assistant", "content": "The sky is blue."},
    {"role": "user", "content": "And grass?"},
    {"role": "assistant", "content": "Green."},
]


def _loss_text(tokenizer, tokens) -> str:
    return tokenizer.decode([i for i, label in zip(tokens.input_ids, tokens.labels, strict=True) if label != IGNORE])


def test_only_assistant_replies_carry_loss(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokens = tokenize_chat(tokenizer, CONVERSATION)
    loss_text = _loss_text(tokenizer, tokens)
    assert "The sky is blue." in loss_text and "Green." in loss_text
    for prompt_part in ("Be brief", "What colour", "And grass", "user"):
        assert prompt_part not in loss_text
    assert tokenizer.eos_token in loss_text or "<end_of_turn>" in loss_text  # the model learns to stop
    assert len(tokens.spans) == 2
    assert len(tokens.input_ids) == len(tokens.labels)
    assert [label for label in tokens.labels if label != IGNORE] == [
        i for i, label in zip(tokens.input_ids, tokens.labels, strict=True) if label != IGNORE
    ]


def test_mask_agrees_with_the_templates_generation_markers(tiny_model: Path) -> None:
    """The tiny templates mark replies with {% generation %}; our prefix method must find the same tokens."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ours = tokenize_chat(tokenizer, CONVERSATION)
    marked = tokenizer.apply_chat_template(CONVERSATION, return_assistant_tokens_mask=True, return_dict=True)
    assert marked["input_ids"] == ours.input_ids
    theirs = [bool(m) for m in marked["assistant_masks"]]
    ours_mask = [label != IGNORE for label in ours.labels]
    # Ours may also train the newline after the end-of-turn token; nothing else may differ.
    extra = [i for i, (a, b) in enumerate(zip(ours_mask, theirs, strict=True)) if a and not b]
    assert not [i for i, (a, b) in enumerate(zip(ours_mask, theirs, strict=True)) if b and not a]
    assert all(tokenizer.decode([ours.input_ids[i]]).strip() == "" for i in extra)


def test_loss_on_all_tokens(tiny_llama: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokens = tokenize_chat(tokenizer, CONVERSATION, loss_on="all")
    assert tokens.labels == tokens.input_ids


def test_a_tokenizer_without_template_is_explained(tiny_llama: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.chat_template = None
    with pytest.raises(TemplateError, match="no chat template"):
        tokenize_chat(tokenizer, CONVERSATION)


def test_template_that_rewrites_history_still_masks_the_last_reply(tiny_llama: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    # Like reasoning templates that drop earlier assistant turns: only the last one renders in full.
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}<|im_start|>assistant\n...<|im_end|>\n"
        "{% else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tokens = tokenize_chat(tokenizer, CONVERSATION)
    assert len(tokens.spans) == 1
    assert _loss_text(tokenizer, tokens).startswith("Green.")
    # A flag on an earlier turn cannot be honoured there: the row is refused, not trained without it.
    flagged = [*CONVERSATION[:3], {**CONVERSATION[3], "trained": True}, CONVERSATION[4]]
    with pytest.raises(RowRefused, match="message 4 is marked as learned"):
        tokenize_chat(tokenizer, flagged)
