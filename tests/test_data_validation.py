"""Each validation rule: a row that breaks it, its message and line; warnings; the report; the split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.data.load import check_dataset, read_dataset
from backend.data.problems import ADVICE, ProblemLog, RowProblem
from backend.data.scan import ImportOptions
from backend.data.split import split_indices
from tests.datasets import colour_conversation, write_colour_task

GOOD = {"messages": colour_conversation("sky")}


def u(text: str) -> dict:
    return {"role": "user", "content": text}


def a(text: str, **extra) -> dict:
    return {"role": "assistant", "content": text, **extra}


BAD_ROWS = [
    ("{not json", "invalid_json", "not valid JSON at column 2: expected a field name in double quotes here"),
    ('{"messages": [1, 2]} trailing', "invalid_json", "column 22: more text after a complete JSON value (two rows"),
    ("[1, 2]", "not_an_object", "the row is a list, not an object"),
    ('{"id": 7, "messages": []}', "empty_field", "'messages' is empty"),
    ('{"messages": "hello"}', "non_text", "'messages' is text; it must be a list of messages"),
    ('{"messages": ["hi"]}', "non_text", "message 1 is text, not an object with role and content"),
    (json.dumps({"messages": [{"role": "robot", "content": "x"}]}), "unknown_role", "message 1 has role 'robot'"),
    (json.dumps({"messages": [u("  "), a("x")]}), "empty_field", "message 1 (user) is empty"),
    (json.dumps({"messages": [{"role": "user", "content": {"q": 1}}, a("x")]}), "non_text", "content is an object"),
    (
        json.dumps({"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}, a("x")]}),
        "non_text",
        "holds a 'file' part; only text parts can be trained on",
    ),
    (
        json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}, a("x")]}),
        "multimodal",
        "message 1 (user) holds image url content",
    ),
    (json.dumps({"messages": [u("hi")]}), "no_reply", "ends with a user message, so there is no reply"),
    (json.dumps({"messages": [u("a"), u("b"), a("c")]}), "role_order", "messages 1 and 2 are both user messages"),
    (json.dumps({"messages": [a("hello"), u("b"), a("c")]}), "role_order", "starts with an assistant message"),
    (
        json.dumps({"messages": [u("a"), {"role": "tool", "content": "r"}, a("c")]}),
        "role_order",
        "message 2 is a tool result after a user message",
    ),
    (
        json.dumps({"messages": [u("a"), {"role": "system", "content": "s"}, a("c")]}),
        "system_not_first",
        "message 2 is a system message; only the first may be",
    ),
    (json.dumps({"messages": [u("a"), a("b", weight=0)]}), "nothing_to_learn", "every assistant reply has weight 0"),
    (json.dumps({"messages": [u("a"), a("b", weight=0.5)]}), "bad_weight", "message 2 has weight 0.5; use 0 or 1"),
    (json.dumps({"messages": [u("a"), a("b")], "tools": "{not json"}), "bad_tools", "'tools' is not valid JSON"),
    (json.dumps({"messages": [{"role": "system", "content": "s"}]}), "empty_field", "no user or assistant messages"),
    (json.dumps({"messages": [u("a"), a("b")], "images": ["x.png"]}), "multimodal", "holds image data in 'images'"),
]


@pytest.mark.parametrize(("row", "code", "message"), BAD_ROWS, ids=[f"{c}:{m[:30]}" for _, c, m in BAD_ROWS])
def test_each_rule_reports_the_row_with_its_line_and_what_to_do(
    tmp_path: Path, row: str, code: str, message: str
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps(GOOD) + "\n\n" + row + "\n" + json.dumps({"messages": colour_conversation("snow")}) + "\n"
    )
    report = check_dataset(path)
    assert report.accepted == 2 and report.rows == 3
    [problem] = report.problems.kept
    assert (problem.code, problem.line, problem.file) == (code, 3, "d.jsonl")
    assert message in problem.message
    assert problem.excluded and problem.hint == ADVICE[code][1]
    assert str(problem).startswith("d.jsonl line 3")


@pytest.mark.parametrize(
    ("row", "code", "message"),
    [
        ({"instruction": "Add"}, "missing_field", "no 'output' field (also looked for 'response')"),
        ({"instruction": "Add", "output": ""}, "empty_field", "'output' is empty"),
        ({"instruction": "Add", "output": None}, "empty_field", "'output' is empty"),
        ({"instruction": ["Add"], "output": "2"}, "non_text", "'instruction' is a list, not text"),
        ({"instruction": "Add", "output": "2", "history": [["only one"]]}, "non_text", "history entry 1 is not a"),
    ],
)
def test_rules_for_instruction_rows_name_the_field(tmp_path: Path, row: dict, code: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"instruction": "Say hi", "output": "hi"}) + "\n" + json.dumps(row) + "\n")
    [problem] = check_dataset(path).problems.kept
    assert (problem.code, problem.line) == (code, 2) and message in problem.message
    assert problem.field is not None and problem.field in message


def test_empty_system_prompt_is_the_same_as_none(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "system", "content": ""}, u("q"), a("x")]}) + "\n")
    assert read_dataset(path).examples[0].messages == [u("q"), a("x")]


def test_exact_duplicates_are_reported_kept_or_dropped(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    other = {"id": 9, "messages": colour_conversation("sky")}  # another id, same training content
    path.write_text("".join(json.dumps(r) + "\n" for r in [GOOD, {"messages": colour_conversation("snow")}, other]))
    kept = check_dataset(path)
    assert kept.accepted == 3 and kept.duplicates == 1
    [problem] = kept.problems.kept
    assert problem.code == "duplicate" and problem.message == "same as d.jsonl line 1" and not problem.excluded
    deduped = check_dataset(path, ImportOptions(dedupe=True))
    assert deduped.accepted == 2 and deduped.problems.kept[0].excluded
    assert deduped.content_hash != kept.content_hash


def test_placeholders_are_flagged_but_kept(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows = [{"messages": [u("Dear {{ customer_name }},"), a("Hi")]}, {"messages": [u("x = {'a': {{}}"), a("ok")]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = check_dataset(path)
    assert report.accepted == 2 and report.placeholders == 1
    [problem] = report.problems.kept
    assert problem.code == "placeholder" and "{{ customer_name }}" in problem.message and not problem.excluded
    assert any(advice.code == "placeholders" for advice in report.advice)


def test_warnings_for_non_experts(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows = [GOOD] * 30 + [{"messages": [u(f"q{i}"), a("x")]} for i in range(20)] + [{"messages": [u("q")]}] * 10
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    advice = {a.code: a.message for a in check_dataset(path).advice}
    assert set(advice) == {"few_examples", "many_excluded", "small_eval", "duplicates"}
    assert "Only 50 usable examples" in advice["few_examples"]
    assert "10 of 60 rows (17%)" in advice["many_excluded"]
    assert "holds only 5 examples" in advice["small_eval"]
    assert "29 examples (58%) repeat earlier ones exactly" in advice["duplicates"] and "dedupe" in advice["duplicates"]
    assert "no_eval" in {a.code for a in check_dataset(path, eval_fraction=0.0).advice}


def test_enough_clean_data_gets_no_warnings(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        "".join(json.dumps({"messages": [u(f"question {i}"), a(f"answer {i}")]}) + "\n" for i in range(600))
    )
    report = check_dataset(path)
    assert report.advice == [] and len(report.problems) == 0
    assert (report.split.train, report.split.eval) == (540, 60)


def test_report_saves_as_json_and_markdown(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{oops\n" + json.dumps({"messages": [u("q")]}) + "\n")
    report = check_dataset(path)
    report.save(tmp_path / "r.json")
    report.save(tmp_path / "r.md")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["rows"] == 3 and data["accepted"] == 1 and data["excluded"] == 2
    assert data["problem_counts"] == {"invalid_json": 1, "no_reply": 1}
    assert {p["line"] for p in data["problems"]} == {2, 3}
    assert all(p["hint"] for p in data["problems"])
    markdown = (tmp_path / "r.md").read_text()
    assert "## Problems" in markdown and "### not valid JSON: 1 row excluded" in markdown
    assert "- d.jsonl line 2: not valid JSON" in markdown and "What to do: fix the line" in markdown


def test_problem_log_counts_everything_and_keeps_the_first_of_each_kind() -> None:
    log = ProblemLog(keep=3)
    for i in range(10):
        log.add(RowProblem("invalid_json", "bad", "f", i + 1))
    log.add(RowProblem("no_reply", "x", "f", 99))
    assert log.counts == {"invalid_json": 10, "no_reply": 1} and len(log) == 11
    assert [p.line for p in log.kept] == [1, 2, 3, 99] and log.omitted("invalid_json") == 7


def test_split_is_seeded_disjoint_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"messages": [u("q"), a(f"answer {i}")]}) + "\n" for i in range(50)))
    dataset = read_dataset(path)
    train, held = dataset.split(0.1, seed=3)
    assert (len(train), len(held)) == (45, 5)
    assert dataset.split(0.1, seed=3) == (train, held)
    assert dataset.split(0.1, seed=4)[1] != held
    replies = {ex.messages[-1]["content"] for ex in train} | {ex.messages[-1]["content"] for ex in held}
    assert len(replies) == 50
    assert dataset.split(0.0, seed=3) == (dataset.examples, [])
    assert split_indices(1, 0.5, 0) == ([0], []) and split_indices(2, 0.5, 0)[1] != []


def test_hash_depends_on_training_content_only(tmp_path: Path) -> None:
    a1 = read_dataset(write_colour_task(tmp_path / "a.jsonl", 20, seed=1))
    b1 = read_dataset(write_colour_task(tmp_path / "b.jsonl", 20, seed=1))
    c2 = read_dataset(write_colour_task(tmp_path / "c.jsonl", 20, seed=2))
    assert a1.content_hash == b1.content_hash != c2.content_hash and len(a1.content_hash) == 64
    # The same conversations as a CSV of question/answer pairs hash the same as the JSONL.
    rows = [{"messages": [u("q1"), a("a1")]}, {"messages": [u("q2"), a("a2")]}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "m.csv").write_text("question,answer,id\nq1,a1,7\nq2,a2,8\n")
    assert read_dataset(tmp_path / "m.jsonl").content_hash == read_dataset(tmp_path / "m.csv").content_hash


def test_every_rule_and_format_is_documented() -> None:
    from backend.data.formats import FORMATS

    reference = (Path(__file__).parent.parent / "docs" / "data-formats.md").read_text()
    for code in ADVICE:
        assert f"| `{code}` |" in reference, f"{code} is missing from docs/data-formats.md"
    for fmt in FORMATS:
        assert f"| `{fmt}`" in reference, f"format {fmt} is missing from docs/data-formats.md"


def test_a_small_separate_eval_file_is_told_to_grow_not_to_split(tmp_path: Path) -> None:
    from backend.data.advice import advise
    from backend.data.load import plan_split

    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"messages": [u(f"q{i}"), a("x")]}) + "\n" for i in range(400)))
    report = check_dataset(path)
    plan_split(report, 0.1, 42, eval_examples=40)
    small = {a.code: a.message for a in advise(report)}["small_eval"]
    assert "add examples to the eval file" in small and "eval_split" not in small
