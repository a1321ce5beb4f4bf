"""No field silently dropped, advice tried before it is given, and one way of counting rows (issue 24).

The unused-field report is found by watching the real normalizers, so these files carry keys no
layout reads (and keys with training meaning that no layout here honours): a row-level ``id``, a
message-level ``name``/``loss``, a ``label`` column beside a column mapping.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from backend.cli.common import EXIT_FAILED, EXIT_OK
from backend.cli.main import main
from backend.data.fields import FieldAudit
from backend.data.load import check_dataset
from backend.data.report import DataReport
from backend.data.scan import ImportOptions, Trial


def u(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **extra}


def a(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": text, **extra}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def unused(report: DataReport) -> dict[str, tuple[int, bool, bool]]:
    return {f.key: (f.rows, f.learned, f.refused) for f in report.files[0].unused}


def test_extra_row_and_message_keys_are_listed_with_their_rows_and_a_training_key_refuses_the_row(
    tmp_path: Path,
) -> None:
    path = write_jsonl(
        tmp_path / "chat.jsonl",
        [
            {"id": 1, "messages": [u("Hi", name="ann"), a("Hello")]},
            {"id": 2, "source": "forum", "messages": [u("Why?"), a("Because.")]},
            {"id": 3, "messages": [u("Sure?", name="bob"), a("Yes.")]},
            {"id": 4, "messages": [u("Skip this", loss=0), a("Skipped.")]},  # a per-turn mask no layout here reads
            {"id": 5, "source": None, "messages": [u("Empty?"), a("Nothing in it.")]},  # null is no value
        ],
    )
    report = check_dataset(path)
    assert unused(report) == {
        "id": (5, False, False),
        "source": (1, False, False),
        "messages[].name": (2, False, False),
        "messages[].loss": (1, True, True),
    }
    assert report.accepted == 4 and report.problems.counts == {"unsupported_field": 1}
    [refused] = report.problems.kept
    assert (refused.line, refused.field) == (4, "messages")
    assert "message 1 has 'loss'" in refused.message and "left out rather than trained without it" in refused.message
    lines = report.unused_lines()
    assert "chat.jsonl: 'messages[].name' in 2 rows (not used; no training meaning known)" in lines
    assert any("'messages[].loss' in 1 row" in line and "could change what is learned" in line for line in lines)
    assert "## Fields not used\n\n- chat.jsonl: 'id' in 5 rows" in report.to_markdown()


def test_messages_held_as_json_text_in_a_csv_cell_are_looked_into_too(tmp_path: Path) -> None:
    rows = [
        {"messages": json.dumps([u("Hi", name="ann"), a("Hello")]), "team": "a"},
        {"messages": json.dumps([u("Hi"), a("Let me think.", thinking="what do they want?")]), "team": ""},
    ]
    report = check_dataset(write_csv(tmp_path / "export.csv", rows))
    assert unused(report) == {
        "team": (1, False, False),
        "messages[].name": (1, False, False),
        "messages[].thinking": (1, True, True),
    }
    assert report.accepted == 1 and report.problems.kept[0].message.startswith("message 2 has 'thinking'")


def test_keys_the_layout_reads_are_not_listed(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "alpaca.jsonl",
        [{"instruction": "Add", "input": "1 and 2", "output": "3", "system": "Be brief."} for _ in range(3)],
    )
    report = check_dataset(path)
    assert report.accepted == 3 and report.files[0].unused == []


def test_under_a_mapping_a_label_still_refuses_but_a_rejected_answer_is_only_listed(tmp_path: Path) -> None:
    rows = [
        {"question": "Q1", "answer": "A1", "rejected": "bad", "label": "", "note": "x"},
        {"question": "Q2", "answer": "A2", "rejected": "worse", "label": "false", "note": "y"},
    ]
    path = write_csv(tmp_path / "t.csv", rows)
    report = check_dataset(path, ImportOptions(columns={"instruction": "question", "response": "answer"}))
    assert unused(report) == {"rejected": (2, True, False), "note": (2, False, False), "label": (1, True, True)}
    assert report.accepted == 1 and report.problems.counts == {"unsupported_field": 1}


def test_a_key_passed_on_whole_is_used_and_one_never_looked_up_is_not() -> None:
    """The audit watches lookups on real dicts (a normalizer may check ``type(row) is dict``) and, for a key
    never looked up, whether the result changes without it."""

    def whole(row: Any) -> str:
        assert type(row) is dict
        return json.dumps(row, sort_keys=True)  # uses every key without looking one up

    def only_a(row: Any) -> str:
        assert type(row) is dict
        return str(row.get("a"))

    passed_on = FieldAudit(whole)
    assert passed_on.check({"a": 1, "b": 2}) is None and passed_on.unused_fields() == []
    picky = FieldAudit(only_a)
    assert picky.check({"a": 1, "b": 2}) is None
    assert [(f.key, f.rows) for f in picky.unused_fields()] == [("b", 1)]


# -- advice is tried before it is given ---------------------------------------------------------------


def _corpus(folder: Path) -> list[Path]:
    """Files not read as they are, most of them with a mapping to suggest."""
    folder.mkdir()
    return [
        write_csv(
            folder / "query_reply.csv", [{"query": f"q{i}", "reply": f"r{i}" if i % 3 else ""} for i in range(7)]
        ),
        write_jsonl(folder / "user_assistant.jsonl", [{"user": f"u{i}", "assistant": f"a{i}"} for i in range(4)]),
        write_jsonl(
            folder / "src_tgt_context.jsonl",
            [{"src": "Translate", "context": f"word {i}", "tgt": f"mot {i}", "id": i} for i in range(5)],
        ),
        # A label next to the guessed columns: the mapping would learn the rows labelled bad, so none is offered.
        write_jsonl(
            folder / "labelled.jsonl", [{"query": "q", "reply": f"r{i}", "label": i % 2 == 0} for i in range(4)]
        ),
        write_jsonl(folder / "nothing.jsonl", [{"foo": 1, "bar": 2}] * 3),
        write_jsonl(
            folder / "pairs.jsonl",
            [{"prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)],
        ),
    ]


_FLAGS = re.compile(r"--map (\w+)=([^\s;)]+)")
_PROMISE = re.compile(r"imports ([\d,]+) of")


def test_every_suggested_mapping_imports_the_rows_it_promises(tmp_path: Path) -> None:
    offered = []
    for path in _corpus(tmp_path / "corpus"):
        report = check_dataset(path)
        assert report.accepted == 0, path.name
        for problem in report.problems.kept:
            mapping = dict(_FLAGS.findall(problem.message))
            if not mapping:
                continue
            promised = int(_PROMISE.search(problem.message).group(1).replace(",", ""))
            applied = check_dataset(path, ImportOptions(columns=mapping))
            assert applied.accepted == promised > 0, (path.name, problem.message)
            offered.append(path.name)
    assert sorted(offered) == ["pairs.jsonl", "query_reply.csv", "src_tgt_context.jsonl", "user_assistant.jsonl"]


def test_a_suggestion_is_structured_in_the_report_and_none_is_made_that_imports_nothing(tmp_path: Path) -> None:
    paths = {p.name: p for p in _corpus(tmp_path / "corpus")}
    suggested = check_dataset(paths["src_tgt_context.jsonl"]).files[0].suggested
    assert suggested is not None
    assert (suggested.columns, suggested.imports) == ({"instruction": "src", "response": "tgt", "input": "context"}, 5)
    labelled = check_dataset(paths["labelled.jsonl"])
    assert labelled.files[0].suggested is None
    assert "choose a format, or map the columns" in labelled.problems.kept[0].message


def test_a_trial_imports_rows_in_memory_as_the_file_would_be() -> None:
    rows = [
        {"id": 1, "messages": [u("Hi"), a("Hello")]},
        {"messages": [u("Hi")]},
        {"id": 3, "messages": [u("Hi"), a("Hello")]},
    ]
    trial = Trial(ImportOptions(dedupe=True)).add(rows[:2]).add(rows[2:])
    assert trial.imported == 1 and trial.report.problems.counts == {"no_reply": 1, "duplicate": 1}
    assert [p.row for p in trial.report.problems.kept] == [2, 3], "rows numbered across the chunks added"
    assert unused(trial.report) == {"id": (2, False, False)}


# -- one count ----------------------------------------------------------------------------------------


def _excluded_by_problems(data: dict[str, Any]) -> int:
    excluding = {p["code"] for p in data["problems"] if p["excluded"]}
    return sum(n for code, n in data["problem_counts"].items() if code in excluding)


@pytest.mark.parametrize("whole", [True, False], ids=["wholly refused", "partly refused"])
def test_the_problem_list_and_the_summary_count_rows_alike_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], whole: bool
) -> None:
    path = write_refused(tmp_path, whole)
    assert main(["data", "check", str(path), "--json"]) == (EXIT_FAILED if whole else EXIT_OK)
    data = json.loads(capsys.readouterr().out)
    assert data["excluded"] == (5 if whole else 2) == _excluded_by_problems(data)
    main(["data", "check", str(path)])
    text = capsys.readouterr().out
    assert f"{data['excluded']} excluded" in text
    if whole:
        assert "format not recognised: 5 rows excluded" in text and "(all 5 rows excluded)" in text
    else:
        assert "required field missing: 1 row excluded" in text
        assert "field with training meaning not supported: 1 row excluded" in text


def write_refused(folder: Path, whole: bool) -> Path:
    """Five rows: none in a known layout, or three good, one without a reply field, one with a turn mask."""
    if whole:
        return write_jsonl(folder / "whole.jsonl", [{"foo": i, "bar": i} for i in range(5)])
    good = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(3)]
    return write_jsonl(
        folder / "part.jsonl",
        [*good, {"instruction": "q"}, {"instruction": "q5", "output": "a5", "labels": [1, 0]}],
    )


def test_a_file_that_fails_part_way_counts_as_a_file_and_its_rows_read_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"instruction": "a", "output": "b"}, {"instruction": "c"}, {"instruction": x}]')
    report = check_dataset(path, eval_fraction=0)
    assert (report.rows, report.accepted, report.excluded) == (2, 1, 1)
    assert dict(report.problems.counts) == {"missing_field": 1, "invalid_json_file": 0}
    assert [g.tally for g in report.problem_groups()] == ["1 row excluded", "1 file"]
