"""Turn a conversation into token ids and loss labels with the model's own chat template.

Loss on assistant tokens only needs to know where each reply sits in the rendered
text. trl's ``assistant_only_loss`` asks the template for ``{% generation %}``
markers, which almost no published template has; instead each reply's span is
found by rendering the conversation up to that reply with and without it, which
works with any template that renders earlier turns the same way (nearly all do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

IGNORE = -100


class TemplateError(ValueError):
    """The tokenizer cannot render conversations the way training needs."""


@dataclass(frozen=True)
class TokenizedChat:
    text: str
    input_ids: list[int]
    labels: list[int]
    spans: list[tuple[int, int]]  # character ranges of the text that carry loss

    @property
    def loss_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def render_chat(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    generation_prompt: bool = False,
) -> str:
    """The conversation as the model reads it: only role and content go to the template."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    text: str = tokenizer.apply_chat_template(
        plain, tools=tools, tokenize=False, add_generation_prompt=generation_prompt
    )
    return text


def assistant_spans(
    tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant reply (with its end-of-turn)."""
    if not getattr(tokenizer, "chat_template", None):
        raise TemplateError(
            "this model's tokenizer has no chat template, so conversations cannot be formatted; "
            "use an instruct/chat model or a base model folder that ships chat_template.jinja"
        )
    full = render_chat(tokenizer, messages, tools)
    spans: list[tuple[int, int]] = []
    consistent = True
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render_chat(tokenizer, messages[:i], tools, generation_prompt=True)
        upto = render_chat(tokenizer, messages[: i + 1], tools)
        if not (full.startswith(upto) and upto.startswith(prompt)):
            consistent = False
            break
        spans.append((len(prompt), len(upto)))
    if consistent:
        return full, spans
    # Templates that rewrite earlier turns (e.g. dropping past reasoning) still render the last reply in place.
    prompt = render_chat(tokenizer, messages[:-1], tools, generation_prompt=True)
    if not full.startswith(prompt):
        raise TemplateError(
            "the chat template renders the prompt differently from the whole conversation, "
            "so the assistant's reply cannot be located; choose 'loss_on: all' for this model"
        )
    return full, [(len(prompt), len(full))]


def tokenize_chat(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    loss_on: Literal["assistant", "all"] = "assistant",
    tools: list[dict[str, Any]] | None = None,
) -> TokenizedChat:
    """Token ids of the rendered conversation, with labels masked outside the loss-bearing spans.

    A reply with ``"weight": 0`` (OpenAI's fine-tuning format) is shown to the model but carries no loss.
    """
    text, spans = assistant_spans(tokenizer, messages, tools)
    if loss_on == "all":
        spans = [(0, len(text))]
    else:
        trained = [m.get("weight") != 0 for m in messages if m["role"] == "assistant"]
        if len(spans) == len(trained):
            spans = [span for span, keep in zip(spans, trained, strict=True) if keep]
        elif not trained[-1]:  # the fallback span is the last reply alone
            spans = []
    # The template already holds BOS and other specials where the model expects them.
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoding["input_ids"]
    labels = [IGNORE] * len(ids)
    for index, (start, end) in enumerate(encoding["offset_mapping"]):
        if any(start < span_end and end > span_start for span_start, span_end in spans):
            labels[index] = ids[index]
    return TokenizedChat(text=text, input_ids=ids, labels=labels, spans=spans)


def tokenize_text(tokenizer: Any, text: str) -> TokenizedChat:
    """Plain text for continued pre-training: the tokenizer's own start tokens, the text, end of text; all loss."""
    ids: list[int] = tokenizer(text)["input_ids"]
    if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
        ids = [*ids, tokenizer.eos_token_id]
    return TokenizedChat(text=text, input_ids=ids, labels=list(ids), spans=[(0, len(text))])
