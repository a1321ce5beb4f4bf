"""A dataset measured in the chosen model's tokens, and any example shown as that model sees it.

Counting renders each conversation once with the model's chat template and
tokenizes a whole batch at a time, so a million rows take minutes, not hours.
Which tokens carry loss needs each reply located (``tokenize_chat`` renders a
conversation once per reply), so that share is measured exactly on a seeded
random sample of examples. transformers is imported only by the functions that
load a tokenizer; the GUI imports this module without the ML stack.
"""

from __future__ import annotations

import json
import math
import random
import sys
from array import array
from dataclasses import dataclass, replace
from typing import Any, Literal

from backend.core.progress import ProgressFn
from backend.data.chat_tokens import (
    IGNORE,
    TemplateError,
    TemplateSystemPrompt,
    TokenizedChat,
    render_chat,
    template_system_prompt,
    tokenize_chat,
    tokenize_text,
    tool_support,
    with_system_prompt,
)
from backend.data.examples import Batch, Example
from backend.data.message import learned
from backend.data.problems import ProblemLog, RowProblem
from backend.data.report import DataReport, TokenStats
from backend.data.split import split_indices

LOSS_SAMPLE = 1000
_BINS = 24


def load_tokenizer(model: str, progress: ProgressFn | None = None) -> Any:
    """The tokenizer of a model a spec may name: the store's name, a folder, 'default' or a hub id."""
    from transformers import AutoTokenizer

    from backend.models.store import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model, progress=progress))
    # Measuring, not running the model: lengths past its context are reported against max_length instead of
    # as a tokenizer warning on stderr.
    tokenizer.model_max_length = sys.maxsize
    return tokenizer


def tokenize_example(
    tokenizer: Any, example: Example, loss_on: Literal["assistant", "all"] = "assistant"
) -> TokenizedChat:
    """Ids and labels of one example, exactly as training builds them."""
    if example.text is not None:
        return tokenize_text(tokenizer, example.text)
    tools = json.loads(example.tools) if example.tools else None
    return tokenize_chat(tokenizer, example.messages, loss_on, tools)


@dataclass(frozen=True)
class Preview:
    """One example as the model sees it: the template's text, and which characters carry loss."""

    text: str
    loss_spans: list[tuple[int, int]]  # [start, end) character offsets into text
    tokens: int
    loss_tokens: int
    cut_at: int | None  # character offset where max_length truncates the text, if it does
    notices: list[str]  # what the text holds that the data does not, e.g. the template's own system prompt

    def marked(self, start: str = "[[", end: str = "]]", cut: str = "|||") -> str:
        """The text with each loss-bearing span wrapped in markers and the cut marked, for a terminal or a log."""
        marks = [(high, 0, end) for _, high in self.loss_spans] + [(low, 2, start) for low, _ in self.loss_spans]
        if self.cut_at is not None:
            marks.append((self.cut_at, 1, cut))
        out, cursor = [], 0
        for position, _, marker in sorted(marks):
            out += [self.text[cursor:position], marker]
            cursor = position
        return "".join([*out, self.text[cursor:]])


def preview(
    tokenizer: Any,
    example: Example,
    max_length: int | None = None,
    loss_on: Literal["assistant", "all"] = "assistant",
    system_prompt: str | None = None,
) -> Preview:
    """``example`` rendered with the model's template and tokenizer, as training will see it with
    ``data.system_prompt`` set to ``system_prompt``."""
    if example.text is None:
        example = replace(example, messages=with_system_prompt(example.messages, system_prompt))
    tokens = tokenize_example(tokenizer, example, loss_on)
    cut = None
    if max_length is not None and len(tokens.input_ids) > max_length:
        special = example.text is not None  # plain text gets the tokenizer's own start tokens, as in training
        offsets = tokenizer(tokens.text, add_special_tokens=special, return_offsets_mapping=True)["offset_mapping"]
        cut = offsets[max_length][0] if max_length < len(offsets) else len(tokens.text)
    return Preview(
        tokens.text, list(tokens.spans), len(tokens.input_ids), tokens.loss_tokens, cut, _notices(tokenizer, example)
    )


def _notices(tokenizer: Any, example: Example) -> list[str]:
    """What the rendered example holds that its data does not (the template's own system prompt), and what of
    the data it leaves out (tool definitions a template without tool support does not show)."""
    if example.text is not None:
        return []
    notices = []
    found = template_system_prompt(tokenizer)
    if found is not None and _gets_template_system(found, example.messages):
        notices.append(found.notice())
    if example.tools and not tool_support(tokenizer).tools:
        notices.append(
            "This example has tool definitions, but this model's chat template does not show tools, so the model "
            "will not see them; choose a model whose template supports tools."
        )
    return notices


def _gets_template_system(found: TemplateSystemPrompt, messages: list[Any]) -> bool:
    """Whether the template writes its own system prompt into ``messages``: they have no system message, or an
    empty one it does not honour."""
    first = messages[0]
    return first["role"] != "system" or (not first["content"] and not found.suppressible)


class TokenCounter:
    """A scan sink that counts every example's tokens and samples examples for the loss share."""

    def __init__(
        self,
        tokenizer: Any,
        model: str,
        max_length: int,
        loss_on: Literal["assistant", "all"] = "assistant",
        sample_size: int = LOSS_SAMPLE,
        seed: int = 0,
        system_prompt: str | None = None,
    ) -> None:
        self.tokenizer, self.model, self.max_length, self.loss_on = tokenizer, model, max_length, loss_on
        self.system_prompt = system_prompt  # data.system_prompt, given to conversations without one
        self.lengths = array("I")  # per accepted example, in order; 0 where the template failed
        self.problems = ProblemLog()
        self.sample: list[Example] = []
        self.sample_size = sample_size
        self.seen = 0
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
        self.failed = self.tools_ignored = 0
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        support = tool_support(tokenizer) if self.has_template else None
        self.template_shows_tools = bool(support and support.tools)
        self.template_shows_calls = bool(support and support.tool_calls)
        self.template_system = template_system_prompt(tokenizer) if self.has_template else None
        self.without_system = 0  # conversations the template's own system prompt is added to

    def add(self, batch: Batch) -> None:
        texts = [example.text for example, _, _ in batch.items]
        chat_rows = [i for i, text in enumerate(texts) if text is None]
        text_rows = [i for i, text in enumerate(texts) if text is not None]
        lengths = [0] * len(batch)
        rendered = [self._render(batch, i) for i in chat_rows]
        counted = [(i, text) for i, text in zip(chat_rows, rendered, strict=True) if text is not None]
        if counted:
            for (i, _), length in zip(counted, _chat_lengths(self.tokenizer, [t for _, t in counted]), strict=True):
                lengths[i] = length
        if text_rows:
            eos = self.tokenizer.eos_token_id
            ids = self.tokenizer([texts[i] for i in text_rows])["input_ids"]
            for i, row_ids in zip(text_rows, ids, strict=True):  # as tokenize_text: end of text appended
                lengths[i] = len(row_ids) + (eos is not None and (not row_ids or row_ids[-1] != eos))
        for i, length in enumerate(lengths):
            self.lengths.append(length)
            if length > self.max_length:
                _, line, row = batch.items[i]
                cut = f"{length:,} tokens; the last {length - self.max_length:,} beyond max length {self.max_length:,}"
                self.problems.add(
                    RowProblem("too_long", f"{cut} will be cut", batch.file, line, row, excluded=False, unit=batch.unit)
                )
            if length:
                self._maybe_sample(batch, i)

    def _render(self, batch: Batch, index: int) -> str | None:
        """The conversation rendered by the model's template, or None (and a problem) when the template refuses."""
        if not self.has_template:
            raise TemplateError(
                "this model's tokenizer has no chat template, so conversations cannot be measured; "
                "choose an instruct/chat model"
            )
        example, line, row = batch.items[index]
        tools = json.loads(example.tools) if example.tools else None
        if tools and not self.template_shows_tools:
            self.tools_ignored += 1
        messages = with_system_prompt(batch.messages(index), self.system_prompt)
        if self.template_system is not None and _gets_template_system(self.template_system, messages):
            self.without_system += 1
        if not self.template_shows_calls and any(m.get("tool_calls") and learned(m) for m in messages):
            why = (
                "a learned reply holds a tool call, but this model's chat template does not show tool calls, so it "
                "would be learned without its call; the row is left out of training with this model"
            )
            self._refused(why, line, row, batch)
            return None
        try:
            return render_chat(self.tokenizer, messages, tools)
        except Exception as exc:  # noqa: BLE001 - jinja raises whatever a template's raise_exception says
            self._refused(f"the chat template says: {exc}", line, row, batch)
            return None

    def _refused(self, why: str, line: int | None, row: int, batch: Batch) -> None:
        self.failed += 1
        self.problems.add(RowProblem("template_error", why, batch.file, line, row, unit=batch.unit))

    def _maybe_sample(self, batch: Batch, index: int) -> None:
        """Reservoir sampling: every example seen so far is in the sample with the same chance."""
        self.seen += 1
        if len(self.sample) < self.sample_size:
            self.sample.append(batch.example(index))
            return
        slot = self.rng.randrange(self.seen)
        if slot < self.sample_size:
            self.sample[slot] = batch.example(index)

    def finish(self, report: DataReport, eval_fraction: float, seed: int) -> TokenStats:
        """Fill ``report.tokens`` (and its problems) from the counts; the train split gives tokens per epoch."""
        import numpy as np

        lengths = np.frombuffer(self.lengths, dtype=np.uint32).astype(np.int64)
        measured = lengths[lengths > 0]
        train_idx, _ = split_indices(len(lengths), eval_fraction, seed)
        clipped = np.minimum(lengths, self.max_length)
        loss_share, lost = self._loss_share()
        edges, counts = _histogram(measured, self.max_length)
        stats = TokenStats(
            model=self.model,
            max_length=self.max_length,
            examples=int(measured.size),
            total=int(measured.sum()),
            mean=float(measured.mean()) if measured.size else 0.0,
            percentiles=_percentiles(measured),
            longest=int(measured.max()) if measured.size else 0,
            histogram_edges=edges,
            histogram_counts=counts,
            truncated=int((measured > self.max_length).sum()),
            cut_tokens=int(np.maximum(measured - self.max_length, 0).sum()),
            tokens_per_epoch=int(clipped[np.asarray(train_idx, dtype=np.int64)].sum()) if train_idx else 0,
            loss_share=loss_share,
            loss_sample=len(self.sample),
            lost_reply=lost,
            failed=self.failed,
            tools_ignored=self.tools_ignored,
            template_system_prompt=self.template_system.notice()
            if self.template_system and self.without_system
            else "",
            without_system=self.without_system,
        )
        report.tokens = stats
        report.problems.extend(self.problems)
        return stats

    def _loss_share(self) -> tuple[float | None, int]:
        total = loss = lost = 0
        for example in self.sample:
            if example.text is None:
                example = replace(example, messages=with_system_prompt(example.messages, self.system_prompt))
            try:
                tokens = tokenize_example(self.tokenizer, example, self.loss_on)
            except Exception:  # noqa: BLE001, S112 - already reported as template_error when counting
                continue
            total += len(tokens.input_ids)
            loss += tokens.loss_tokens
            if all(label == IGNORE for label in tokens.labels[: self.max_length]):
                lost += 1
        return (loss / total if total else None), lost


def _chat_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Token counts of rendered conversations (the template holds the special tokens), a batch at a time."""
    backend = getattr(tokenizer, "backend_tokenizer", None)  # the Rust tokenizer: no Python objects per token
    if backend is not None:
        return [len(encoding) for encoding in backend.encode_batch(texts, add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _percentiles(lengths: Any) -> dict[str, int]:
    import numpy as np

    if not lengths.size:
        return {}
    values = np.percentile(lengths, [50, 90, 95, 99], method="higher")
    return {f"p{p}": int(v) for p, v in zip((50, 90, 95, 99), values, strict=True)}


def _histogram(lengths: Any, max_length: int) -> tuple[list[int], list[int]]:
    """Bin edges and counts: bin i counts examples longer than edges[i] and at most edges[i + 1] tokens.

    About two dozen bins of a round width reach past max_length and the 99th percentile; max_length is
    itself an edge, so the examples it cuts are exactly the bins above it; one last bin holds the rest.
    """
    import numpy as np

    if not lengths.size:
        return [], []
    top = max(max_length, int(np.percentile(lengths, 99)))
    width = _round_width(top / _BINS)
    edges = sorted({*range(0, top + width, width), max_length})
    longest = int(lengths.max())
    if longest > edges[-1]:
        edges.append(longest)
    counts = np.bincount(np.searchsorted(edges, lengths, side="left") - 1, minlength=len(edges) - 1)
    return edges, [int(c) for c in counts[: len(edges) - 1]]


def _round_width(raw: float) -> int:
    """The nearest width above ``raw`` of the form 1, 2 or 5 times a power of ten."""
    power: int = 10 ** max(0, math.floor(math.log10(max(raw, 1))))  # a non-negative power: an int
    for step in (1, 2, 5, 10):
        if step * power >= raw:
            return step * power
    return 10 * power
