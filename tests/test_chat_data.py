"""Loading chat JSONL: accepted rows, rejected rows with their line, hashing and splitting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.data.chat import DataError, load_chat_jsonl
from tests.datasets import colour_conversation, write_colour_task

GOOD = {"messages": colour_conversation("sky")}
BAD_ROWS = [
    ("{not json", "not valid JSON"),
    ('{"text": "hello"}', "no 'messages' field"),
    ('{"messages": []}', "must be a non-empty list"),
    ('{"messages": ["hi"]}', "message 1 is not an object"),
    ('{"messages": [{"role": "robot", "content": "x"}]}', "has role 'robot'; use one of system, user, assistant"),
    ('{"messages": [{"role": "user", "content": ["part"]}, {"role": "assistant", "content": "x"}]}', "no text content"),
    (
        '{"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]}',
        "message 1 (user) is empty",
    ),
    ('{"messages": [{"role": "user", "content": "hi"}]}', "does not end with an assistant reply"),
    (
        '{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]}',
        "two user messages in a row",
    ),
    ('{"messages": [{"role": "assistant", "content": "a"}]}', "must start with a user message"),
    (
        '{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "assistant", "content": "c"}]}',
        "only the first message may be one",
    ),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS, ids=[m for _, m in BAD_ROWS])
def test_each_bad_row_is_reported_with_its_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + row + "\n" + json.dumps(GOOD) + "\n", encoding="utf-8")
    dataset = load_chat_jsonl(path)
    assert len(dataset.examples) == 2
    assert len(dataset.problems) == 1
    assert dataset.problems[0].line == 3
    assert message in dataset.problems[0].message
    assert str(dataset.problems[0]).startswith("line 3: ")


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(GOOD) + "\r\n").encode() * 3)
    assert len(load_chat_jsonl(path).examples) == 3


def test_no_usable_rows_is_an_error_that_quotes_the_first_problems(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": 1}\n{oops\n')
    with pytest.raises(DataError, match=r"no usable examples .*line 1: no 'messages' field.*line 2: not valid JSON"):
        load_chat_jsonl(path)
    with pytest.raises(DataError, match="cannot open the dataset"):
        load_chat_jsonl(tmp_path / "missing.jsonl")


def test_hash_depends_on_content_only(tmp_path: Path) -> None:
    a = load_chat_jsonl(write_colour_task(tmp_path / "a.jsonl", 20, seed=1))
    b = load_chat_jsonl(write_colour_task(tmp_path / "b.jsonl", 20, seed=1))
    c = load_chat_jsonl(write_colour_task(tmp_path / "c.jsonl", 20, seed=2))
    assert a.content_hash() == b.content_hash() != c.content_hash()
    assert len(a.content_hash()) == 64


def test_split_is_seeded_disjoint_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        "".join(
            json.dumps({"messages": [*colour_conversation("sky")[:2], {"role": "assistant", "content": f"answer {i}"}]})
            + "\n"
            for i in range(50)
        )
    )
    dataset = load_chat_jsonl(path)
    train, held = dataset.split(0.1, seed=3)
    assert (len(train), len(held)) == (45, 5)
    assert dataset.split(0.1, seed=3) == (train, held)
    assert dataset.split(0.1, seed=4)[1] != held
    replies = {ex[-1]["content"] for ex in train} | {ex[-1]["content"] for ex in held}
    assert len(replies) == 50
    assert dataset.split(0.0, seed=3) == (dataset.examples, [])
