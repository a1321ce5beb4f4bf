"""Datasets measured with a real tokenizer and chat template: counts, truncation, loss share, previews."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.data.chat_tokens import IGNORE, TemplateError
from backend.data.examples import Example
from backend.data.load import check_dataset, read_dataset
from backend.data.split import split_indices
from backend.data.tokens import TokenCounter, preview, tokenize_example

TOOL_TEMPLATE = (
    "{% if tools %}<tools>{{ tools | tojson }}</tools>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer(tiny_llama: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def u(text: str) -> dict:
    return {"role": "user", "content": text}


def a(text: str, **extra) -> dict:
    return {"role": "assistant", "content": text, **extra}


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def varied_rows(n: int) -> list[dict]:
    return [
        {"messages": [u("Tell me about item " + str(i)), a("It is " + "very " * (i % 13) + "good.")]} for i in range(n)
    ]


def test_counts_match_training_tokenization_and_stats_add_up(tmp_path: Path, tokenizer) -> None:
    rows = [*varied_rows(40), {"text": "Plain text for continued pre-training. " * 3}]
    path = write(tmp_path / "d.jsonl", rows[:40])
    write(tmp_path / "t.jsonl", rows[40:])
    max_length = 40
    counter = TokenCounter(tokenizer, "tiny", max_length, sample_size=1000)
    report = check_dataset(path, counter=counter, eval_fraction=0.2, seed=7)
    examples = read_dataset(path).examples
    expected = [len(tokenize_example(tokenizer, e).input_ids) for e in examples]
    assert list(counter.lengths) == expected

    stats = report.tokens
    assert stats is not None
    assert (stats.examples, stats.total, stats.longest) == (40, sum(expected), max(expected))
    assert stats.truncated == sum(n > max_length for n in expected)
    assert stats.cut_tokens == sum(max(0, n - max_length) for n in expected)
    train, _ = split_indices(40, 0.2, 7)
    assert stats.tokens_per_epoch == sum(min(expected[i], max_length) for i in train)
    assert sum(stats.histogram_counts) == 40 and max_length in stats.histogram_edges
    above = stats.histogram_edges.index(max_length)
    assert sum(stats.histogram_counts[above:]) == stats.truncated
    assert stats.percentiles["p50"] <= stats.percentiles["p90"] <= stats.percentiles["p99"] <= stats.longest

    tokenized = [tokenize_example(tokenizer, e) for e in examples]
    loss = sum(t.loss_tokens for t in tokenized) / sum(len(t.input_ids) for t in tokenized)
    assert stats.loss_sample == 40 and stats.loss_share == pytest.approx(loss)
    too_long = [p for p in report.problems.kept if p.code == "too_long"]
    assert len(too_long) == stats.truncated and not too_long[0].excluded
    assert f"beyond max length {max_length}" in too_long[0].message and too_long[0].line is not None
    assert any(advice.code == "truncated" for advice in report.advice)

    text_counter = TokenCounter(tokenizer, "tiny", 1024)
    text_report = check_dataset(tmp_path / "t.jsonl", counter=text_counter)
    text_example = read_dataset(tmp_path / "t.jsonl").examples[0]
    assert list(text_counter.lengths) == [len(tokenize_example(tokenizer, text_example).input_ids)]
    assert text_report.tokens is not None and text_report.tokens.loss_share == 1.0


def test_loss_share_sample_is_seeded_and_bounded(tmp_path: Path, tokenizer) -> None:
    path = write(tmp_path / "d.jsonl", varied_rows(60))
    first = TokenCounter(tokenizer, "tiny", 1024, sample_size=10, seed=3)
    second = TokenCounter(tokenizer, "tiny", 1024, sample_size=10, seed=3)
    check_dataset(path, counter=first)
    check_dataset(path, counter=second)
    assert len(first.sample) == 10 and [e.row for e in first.sample] == [e.row for e in second.sample]


def test_preview_marks_what_carries_loss_and_where_max_length_cuts(tokenizer) -> None:
    example = Example([u("What colour is the sky?"), a("Blue.", trained=False), u("And grass?"), a("Green.")])
    shown = preview(tokenizer, example, max_length=12)
    assert shown.text.startswith(tokenizer.bos_token)
    [(start, end)] = shown.loss_spans  # the reply with weight 0 carries no loss
    assert shown.text[start:end].startswith("Green.")
    marked = shown.marked()
    assert "[[Green.<|im_end|>" in marked and "[[Blue." not in marked and "|||" in marked
    assert shown.cut_at is not None and shown.tokens > 12
    tokens = tokenize_example(tokenizer, example)
    assert shown.loss_tokens == sum(label != IGNORE for label in tokens.labels) > 0


def test_tools_reach_the_template_that_shows_them(tokenizer, tmp_path: Path) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    row = {"messages": [u("Weather?"), a("Sunny.")], "tools": tools}
    example = read_dataset(write(tmp_path / "d.jsonl", [row])).examples[0]
    assert "get_weather" not in preview(tokenizer, example).text  # this template has no place for tools
    counter = TokenCounter(tokenizer, "tiny", 1024)
    report = check_dataset(tmp_path / "d.jsonl", counter=counter)
    assert report.tokens is not None and report.tokens.tools_ignored == 1
    assert any(advice.code == "tools_ignored" for advice in report.advice)

    original = tokenizer.chat_template
    try:
        tokenizer.chat_template = TOOL_TEMPLATE
        assert "get_weather" in preview(tokenizer, example).text
    finally:
        tokenizer.chat_template = original


def test_template_that_refuses_a_conversation_is_a_row_problem(tokenizer, tmp_path: Path) -> None:
    refusing = "{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('no tool role') }}{% endif %}{{ m['content'] }}{% endfor %}"
    rows = [
        {"messages": [u("q"), a("x")]},
        {"messages": [u("q"), a("call"), {"role": "tool", "content": "r"}, a("done")]},
    ]
    original = tokenizer.chat_template
    try:
        tokenizer.chat_template = refusing
        report = check_dataset(write(tmp_path / "d.jsonl", rows), counter=TokenCounter(tokenizer, "tiny", 1024))
    finally:
        tokenizer.chat_template = original
    [problem] = [p for p in report.problems.kept if p.code == "template_error"]
    assert problem.line == 2 and "no tool role" in problem.message
    assert report.tokens is not None and report.tokens.failed == 1 and report.tokens.examples == 1


def test_a_tokenizer_without_chat_template_is_refused(tokenizer, tmp_path: Path) -> None:
    original = tokenizer.chat_template
    try:
        tokenizer.chat_template = None
        with pytest.raises(TemplateError, match="no chat template"):
            check_dataset(write(tmp_path / "d.jsonl", varied_rows(2)), counter=TokenCounter(tokenizer, "tiny", 64))
    finally:
        tokenizer.chat_template = original


def test_a_count_that_measured_no_example_says_so_in_one_line(tokenizer, tmp_path: Path) -> None:
    """Every row refused by the template (a tool call it cannot show): no empty percentiles, no zero mean."""
    rows = [
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"type": "function", "function": {"name": "ping", "arguments": {}}}],
                },
            ]
        },
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = check_dataset(path, counter=TokenCounter(tokenizer, "tiny", 64))
    assert report.tokens is not None and report.tokens.examples == 0
    assert report.token_lines() == ["tokens (tiny, max length 64): no example could be measured"]
