"""Turn a conversation into token ids and loss labels with the model's own chat template.

What is learned comes from the message model (``backend.data.message``): each turn's role default,
the layout's ``trained`` flag, or its ``train_spans``. Loss needs to know where each learned turn
sits in the rendered text. trl's ``assistant_only_loss`` asks the template for ``{% generation %}``
markers, which almost no published template has; instead each turn's span is found by rendering the
conversation up to that turn with and without it, which works with any template that renders earlier
turns the same way (nearly all do). A reply's span runs to its end-of-turn, so the model learns to
stop; a learned prompt or tool result is its content alone. Tools, tool calls and tool results go to
the template as structure, so every model writes them in its own format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from backend.data.message import learned

IGNORE = -100
_TEMPLATE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")
_MARK = "LoRAStudioContentMark"
_PROBE_TOOL = "lora_studio_probe_tool"
_PROBE_CALL = "lora_studio_probe_call"


class TemplateError(ValueError):
    """The tokenizer cannot render conversations the way training needs."""


class RowRefused(TemplateError):
    """This conversation cannot be trained as its data says with this template: the row is left out, not changed."""


@dataclass(frozen=True)
class TokenizedChat:
    text: str
    input_ids: list[int]
    labels: list[int]
    spans: list[tuple[int, int]]  # character ranges of the text that carry loss

    @property
    def loss_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass(frozen=True)
class ToolSupport:
    """What a chat template renders, found by trying it: the tool list, and an assistant's tool calls."""

    tools: bool
    tool_calls: bool


@dataclass(frozen=True)
class TemplateSystemPrompt:
    """The system prompt a chat template writes into a conversation that has none (Qwen's, SmolLM2's)."""

    text: str
    suppressible: bool  # an empty system message removes it

    def notice(self) -> str:
        """What a person needs to know, and how to change it, in words."""
        said = f"This model's chat template adds its own system prompt to examples that have none: '{self.text}'."
        if self.suppressible:
            return f'{said} Set data.system_prompt to your own text, or to "" for none.'
        return f"{said} It adds it even when the system prompt is empty; set data.system_prompt to your own text."


_SUPPORT: dict[str, ToolSupport] = {}
_SYSTEM: dict[str, TemplateSystemPrompt | None] = {}
_SYSTEM_MARK = "LoRAStudioSystemMark"


def render_chat(
    tokenizer: Any,
    messages: list[Any],
    tools: list[dict[str, Any]] | None = None,
    generation_prompt: bool = False,
) -> str:
    """The conversation as the model reads it: roles, content, tool calls and results go to the template."""
    shown = [{k: m[k] for k in _TEMPLATE_KEYS if k in m} for m in messages]
    text: str = tokenizer.apply_chat_template(
        shown, tools=tools, tokenize=False, add_generation_prompt=generation_prompt
    )
    return text


def tool_support(tokenizer: Any) -> ToolSupport:
    """Whether the template shows a tool list and tool calls: a trial render looks for a dummy's name."""
    template = getattr(tokenizer, "chat_template", None)
    key = template if isinstance(template, str) else repr(template)
    if key not in _SUPPORT:
        schema = {"type": "function", "function": {"name": _PROBE_TOOL, "description": "probe", "parameters": {}}}
        call = {"id": "call_probe1", "type": "function", "function": {"name": _PROBE_CALL, "arguments": {"a": 1}}}
        hello = {"role": "user", "content": "hello"}
        _SUPPORT[key] = ToolSupport(
            tools=_shows(tokenizer, [hello], [schema], _PROBE_TOOL),
            tool_calls=_shows(
                tokenizer, [hello, {"role": "assistant", "content": "", "tool_calls": [call]}], None, _PROBE_CALL
            ),
        )
    return _SUPPORT[key]


def template_system_prompt(tokenizer: Any) -> TemplateSystemPrompt | None:
    """The system prompt the template adds to a conversation without one; None when it adds none.

    Found by rendering, so it works with any template: a user turn alone, and the same turn after a marked
    system prompt. Whatever the bare render holds where the marked one holds the mark is the template's own.
    """
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return None
    key = template if isinstance(template, str) else repr(template)
    if key not in _SYSTEM:
        _SYSTEM[key] = _find_system_prompt(tokenizer)
    return _SYSTEM[key]


def _find_system_prompt(tokenizer: Any) -> TemplateSystemPrompt | None:
    user = {"role": "user", "content": _MARK}
    try:
        bare = render_chat(tokenizer, [user])
        head, marked, tail = render_chat(tokenizer, [{"role": "system", "content": _SYSTEM_MARK}, user]).partition(
            _SYSTEM_MARK
        )
        empty = render_chat(tokenizer, [{"role": "system", "content": ""}, user])
    except Exception:  # noqa: BLE001 - a template without a system role (it raises) adds no system prompt
        return None
    if not marked or len(bare) <= len(head) + len(tail) or not (bare.startswith(head) and bare.endswith(tail)):
        return None
    text = bare[len(head) : len(bare) - len(tail)]
    if not text.strip():
        return None
    return TemplateSystemPrompt(text.strip(), suppressible=text not in empty)


def with_system_prompt(messages: list[Any], system_prompt: str | None) -> list[Any]:
    """``messages`` with ``system_prompt`` first where they have no system message (``data.system_prompt``):
    None leaves them to the template, "" asks it for none, text sets it."""
    if system_prompt is None or not messages or messages[0]["role"] == "system":
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


def _shows(tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, name: str) -> bool:
    try:
        return name in render_chat(tokenizer, messages, tools)
    except Exception:  # noqa: BLE001 - a template that raises on tools does not render them
        return False


def learned_spans(
    tokenizer: Any, messages: list[Any], tools: list[dict[str, Any]] | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans that carry loss, turn by turn."""
    _require_template(tokenizer)
    full = render_chat(tokenizer, messages, tools)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if not learned(message):
            continue
        region = _region(tokenizer, messages, i, tools, full)
        if region is None:
            break
        spans += _spans_in(tokenizer, messages, i, tools, full, region)
    else:
        return full, spans
    # Templates that rewrite earlier turns (e.g. dropping past reasoning) still render the last turn in place.
    prompt = render_chat(tokenizer, messages[:-1], tools, generation_prompt=True)
    if not full.startswith(prompt):
        raise TemplateError(
            "the chat template renders the prompt differently from the whole conversation, "
            "so the assistant's reply cannot be located; choose 'loss_on: all' for this model"
        )
    last = len(messages) - 1
    for number, message in enumerate(messages[:last], start=1):
        if message.get("trained") or message.get("train_spans"):
            raise RowRefused(
                f"message {number} is marked as learned, but this model's chat template renders earlier turns "
                "differently from the whole conversation, so only the last turn can be located"
            )
    if not learned(messages[last]):
        return full, []
    return full, _spans_in(tokenizer, messages, last, tools, full, (len(prompt), len(full)))


def _region(
    tokenizer: Any, messages: list[Any], i: int, tools: list[dict[str, Any]] | None, full: str
) -> tuple[int, int] | None:
    """Where turn ``i`` sits in ``full``: from after the text before it (a reply: after its generation prompt)
    to the end of its own render; None when the template renders the earlier turns differently."""
    if messages[i]["role"] == "assistant":
        before = render_chat(tokenizer, messages[:i], tools, generation_prompt=True)
    else:
        before = render_chat(tokenizer, messages[:i], tools) if i else ""
    upto = render_chat(tokenizer, messages[: i + 1], tools)
    if not (full.startswith(upto) and upto.startswith(before)):
        return None
    return len(before), len(upto)


def _spans_in(
    tokenizer: Any,
    messages: list[Any],
    i: int,
    tools: list[dict[str, Any]] | None,
    full: str,
    region: tuple[int, int],
) -> list[tuple[int, int]]:
    """The learned spans of turn ``i`` inside its region: a whole reply with its end-of-turn, or content."""
    message = messages[i]
    low, high = region
    for call in message.get("tool_calls") or []:
        if call["function"]["name"] not in full[low:high]:
            raise RowRefused(
                f"message {i + 1} is a learned reply with a call to {call['function']['name']}, but this model's "
                "chat template does not show tool calls, so the reply would be learned without its call; "
                "choose a model whose template renders tool calls"
            )
    parts = message.get("train_spans")
    if message["role"] == "assistant" and not parts:
        return [(low, high)]
    content = message["content"]
    at = _content_at(tokenizer, messages, i, tools, full, region)
    ranges = [(at + start, at + end) for start, end in parts] if parts else [(at, at + len(content))]
    if message["role"] == "assistant":  # the end-of-turn (and any call rendered after the text) is learned too
        ranges.append((at + len(content), high))
    return ranges


def _content_at(
    tokenizer: Any,
    messages: list[Any],
    i: int,
    tools: list[dict[str, Any]] | None,
    full: str,
    region: tuple[int, int],
) -> int:
    """Where turn ``i``'s content starts in ``full``, found by rendering a marker in its place."""
    content = messages[i]["content"]
    marked = render_chat(tokenizer, [*messages[:i], {**messages[i], "content": _MARK}], tools)
    at = marked.find(_MARK)
    if at < region[0] or not full.startswith(marked[:at]) or full[at : at + len(content)] != content:
        raise RowRefused(
            f"this model's chat template changes the text of message {i + 1} ({messages[i]['role']}), e.g. trims "
            "it, so the part its data marks as learned cannot be located; remove the marks or the extra spaces"
        )
    return at


def _require_template(tokenizer: Any) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise TemplateError(
            "this model's tokenizer has no chat template, so conversations cannot be formatted; "
            "use an instruct/chat model or a base model folder that ships chat_template.jinja"
        )


def tokenize_chat(
    tokenizer: Any,
    messages: list[Any],
    loss_on: Literal["assistant", "all"] = "assistant",
    tools: list[dict[str, Any]] | None = None,
) -> TokenizedChat:
    """Token ids of the rendered conversation, with labels masked outside the learned spans.

    ``loss_on="assistant"`` learns what the data says (replies by default; see ``learned_spans``);
    ``"all"`` learns every token.
    """
    if loss_on == "all":
        _require_template(tokenizer)
        text = render_chat(tokenizer, messages, tools)
        spans = [(0, len(text))]
    else:
        text, spans = learned_spans(tokenizer, messages, tools)
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
