"""Every file type and encoding a dataset can come in, folders and saved datasets, streaming and cancel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.data import readers
from backend.data.load import check_dataset, read_dataset
from backend.data.problems import DataError, ImportCancelled
from backend.data.scan import ImportOptions, scan
from tests.datasets import colour_conversation

CHAT = {"messages": colour_conversation("sky")}
EXPECTED = colour_conversation("sky")


def chat_rows(n: int) -> list[dict]:
    return [
        {"messages": [*colour_conversation("sky")[:2], {"role": "assistant", "content": f"answer {i}"}]}
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + newline for r in rows), encoding=encoding, newline="")
    return path


def messages_of(path: Path, **options) -> list[list[dict]]:
    return [e.messages for e in read_dataset(path, ImportOptions(**options)).examples]


# -- file types ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_json_lines(tmp_path: Path, suffix: str) -> None:
    assert messages_of(write_jsonl(tmp_path / f"d{suffix}", [CHAT, CHAT])) == [EXPECTED, EXPECTED]


def test_json_array_keeps_each_items_line(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([CHAT, {"messages": []}], indent=2))
    report = check_dataset(path)
    assert report.accepted == 1
    problem = report.problems.kept[0]
    assert problem.code == "empty_field" and problem.line == path.read_text().splitlines().index("  {", 2) + 1


def test_json_object_holding_one_list_of_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"version": 2, "tags": ["a", "b"], "data": [CHAT, CHAT], "count": 2}))
    assert messages_of(path) == [EXPECTED, EXPECTED]


def test_json_object_without_a_list_of_rows_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"name": "my data"}')
    report = check_dataset(path)
    assert (report.rows, report.accepted) == (1, 0)
    assert "no known layout in the 1 row looked at; fields: name" in report.problems.kept[0].message
    path.write_text(json.dumps(CHAT, indent=2))  # one conversation: its turns are not rows
    assert messages_of(path) == [EXPECTED]


def test_invalid_json_file_keeps_rows_before_the_error_and_says_where(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text("[\n" + json.dumps(CHAT) + ",\n" + json.dumps(CHAT) + "\n{oops}\n]")
    report = check_dataset(path)
    assert report.accepted == 2
    problem = next(p for p in report.problems.kept if p.code == "invalid_json_file")
    assert "line 4" in problem.message and "rows after it were not read" in problem.hint


def test_json_too_deep_or_with_too_long_a_number_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """Valid JSON beyond Python's limits: about 1,000 levels of nesting, numbers of 4,300 digits."""
    deep = "[" * 100_000 + "]" * 100_000
    long_number = json.dumps({"messages": [{"role": "user", "content": "x"}], "id": 0}).replace("0", "1" * 5000)
    (tmp_path / "d.jsonl").write_text("\n".join([json.dumps(CHAT), deep, long_number]) + "\n")
    report = check_dataset(tmp_path / "d.jsonl")
    assert report.accepted == 1
    assert [(p.code, p.line, p.message) for p in report.problems.kept] == [
        ("invalid_json", 2, "lists or objects nested too deeply to read"),
        ("invalid_json", 3, "a number longer than 4,300 digits, too long to read"),
    ]
    for name, item, why in (("deep.json", deep, "lists or objects nested"), ("long.json", long_number, "a number")):
        (tmp_path / name).write_text(f"[{json.dumps(CHAT)},\n{item}]")
        report = check_dataset(tmp_path / name)
        [problem] = report.problems.kept
        assert report.accepted == 1 and problem.code == "invalid_json_file"
        assert problem.message.startswith(f"not valid JSON at line 2 column 1: {why}")
        assert str(problem).startswith(f"{name}: not valid JSON")  # the file named once


def test_large_json_array_streams_in_chunks_with_right_lines(tmp_path: Path) -> None:
    rows = chat_rows(readers.CHUNK_ROWS * 2 + 10)
    rows[-1] = {"messages": [{"role": "user", "content": "unanswered"}]}
    path = tmp_path / "d.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
    chunks = list(readers.read_file(readers.SourceFile(path, "json", path.name, path.stat().st_size), 4000))
    assert len(chunks) == 3
    report = check_dataset(path)
    assert report.accepted == len(rows) - 1
    assert report.problems.kept[0].line == len(rows) + 1


@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t"), (".csv", ";")])
def test_delimited_tables(tmp_path: Path, suffix: str, sep: str) -> None:
    path = tmp_path / f"d{suffix}"
    quoted = '"Add, then\nexplain"' if sep != "\t" else "Add then explain"
    path.write_text(f"instruction{sep}input{sep}output\n{quoted}{sep}1+1{sep}2\nSay hi{sep}{sep}hi\n", encoding="utf-8")
    messages = messages_of(path)
    assert messages[1] == [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}]
    assert messages[0][0]["content"].endswith("\n\n1+1")


def test_csv_lines_count_quoted_newlines_and_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('question,answer\n"two\nlines",yes\nq,a,extra\nq2,\n')
    report = check_dataset(path)
    problems = {p.code: p.line for p in report.problems.kept}
    assert problems == {"extra_fields": 4, "empty_field": 5}


def test_csv_cell_holding_json_messages(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    cell = json.dumps(EXPECTED).replace('"', '""')
    path.write_text(f'id,messages\n1,"{cell}"\n')
    assert messages_of(path) == [EXPECTED]


def test_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([CHAT, {"messages": [{"role": "user", "content": "x"}]}]), path)
    report = check_dataset(path)
    assert report.accepted == 1
    assert report.problems.kept[0].row == 2 and report.problems.kept[0].line is None
    assert "row 2" in str(report.problems.kept[0])


def test_a_damaged_parquet_file_is_a_problem_of_its_file(tmp_path: Path) -> None:
    """Its footer is read on opening, its pages only as the rows are: damage there fails the rows, not the opening."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    rows = [{"instruction": f"Question {i} " * 20, "output": f"Answer {i} " * 20} for i in range(2000)]
    pq.write_table(pa.Table.from_pylist(rows), path, compression="snappy")
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 2000] = b"A" * 2000
    path.write_bytes(data)
    [problem] = check_dataset(path).problems.kept
    assert problem.code == "unreadable_file" and problem.message.startswith(
        "d.parquet is not a readable Parquet file ("
    )
    assert problem.message.endswith("; write it again from the program that made it")


def test_saved_dataset_and_dataset_dict(tmp_path: Path) -> None:
    import datasets

    single = datasets.Dataset.from_list([CHAT, CHAT])
    single.save_to_disk(str(tmp_path / "single"))
    assert messages_of(tmp_path / "single") == [EXPECTED, EXPECTED]
    datasets.DatasetDict({"train": single, "test": single.select([0])}).save_to_disk(str(tmp_path / "splits"))
    report = check_dataset(tmp_path / "splits")
    assert report.accepted == 2
    assert any("'train' split is imported" in note and "test" in note for note in report.notes)


def test_plain_text_is_cut_at_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    paragraphs = [f"Paragraph {i}. " + "word " * 40 for i in range(6)]
    path.write_text("\n\n".join(paragraphs) + "\n")
    examples = read_dataset(path, ImportOptions(chunk_chars=500)).examples
    assert all(e.text is not None and e.messages == [] for e in examples)
    assert all(len(e.text or "") <= 500 for e in examples)
    assert [e.line for e in examples] == [1, 5, 9]
    assert "\n\n".join(e.text or "" for e in examples) == "\n\n".join(paragraphs)


def test_plain_text_paragraph_longer_than_a_piece_is_cut_at_spaces(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("x" * 150 + " " + "y" * 150 + " " + "z" * 500 + "\n")
    texts = [e.text for e in read_dataset(path, ImportOptions(chunk_chars=200)).examples]
    assert texts == ["x" * 150, "y" * 150, "z" * 200, "z" * 200, "z" * 100]


def test_folder_reads_every_data_file_and_says_what_it_skipped(tmp_path: Path) -> None:
    (tmp_path / "part").mkdir()
    write_jsonl(tmp_path / "a.jsonl", [CHAT])
    write_jsonl(tmp_path / "part" / "b.jsonl", chat_rows(2))
    (tmp_path / "README.md").write_text("# About this data\n")
    (tmp_path / "slides.pptx").write_bytes(b"PK")
    (tmp_path / ".hidden.jsonl").write_text("{broken\n")
    report = check_dataset(tmp_path)
    assert [f.name for f in report.files] == ["a.jsonl", "part/b.jsonl"]
    assert report.accepted == 3
    assert any("README.md: skipped" in n for n in report.notes)
    assert any("slides.pptx: skipped" in n for n in report.notes)


def test_folder_of_saved_and_imported_datasets_reads_each_as_one_source(tmp_path: Path) -> None:
    import datasets

    from backend.data.store import import_dataset

    datasets.Dataset.from_list([CHAT]).save_to_disk(str(tmp_path / "all" / "saved"))
    import_dataset(write_jsonl(tmp_path / "more.jsonl", chat_rows(2)), root=tmp_path / "all" / "imported")
    report = check_dataset(tmp_path / "all")
    assert report.accepted == 3 and len(report.problems) == 0
    assert [f.kind for f in report.files] == ["stored", "arrow"]


def test_folder_of_text_files_is_a_pretraining_corpus(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("First text.\n")
    (tmp_path / "b.md").write_text("Second text.\n")
    assert [e.text for e in read_dataset(tmp_path).examples] == ["First text.", "Second text."]


def test_missing_path_unknown_suffix_and_empty_folder_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan(tmp_path / "nope.jsonl")
    (tmp_path / "data.numbers").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"reads .*\.jsonl.* files, not '\.numbers'"):
        scan(tmp_path / "data.numbers")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no dataset files"):
        scan(tmp_path / "empty")


def test_no_usable_rows_quotes_the_first_problems(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{oops\n')
    with pytest.raises(
        DataError, match=r"no usable examples .*line 1, field messages: .*no reply.*line 2: not valid JSON"
    ):
        read_dataset(path)


# -- encodings ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_encodings_with_byte_order_marks_and_crlf(tmp_path: Path, encoding: str) -> None:
    rows = [{"messages": [{"role": "user", "content": "Grüße, naïve café ☕"}, {"role": "assistant", "content": "ok"}]}]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows * 2)
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(encoding, b"")
    path = tmp_path / "d.jsonl"
    path.write_bytes(bom + text.encode(encoding))
    messages = messages_of(path)
    assert len(messages) == 2 and messages[0][0]["content"] == "Grüße, naïve café ☕"


@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_crlf_and_bom_in_text_tables(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"d{suffix}"
    body = "question,answer\r\nWhy?,Because.\r\n" if suffix == ".csv" else "Line one\r\nline two\r\n\r\nNext\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    examples = read_dataset(path).examples
    if suffix == ".csv":
        assert examples[0].messages[0] == {"role": "user", "content": "Why?"}
    else:
        assert [e.text for e in examples] == ["Line one\nline two\n\nNext"]


def test_bytes_that_are_not_utf8_are_a_problem_on_their_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    good = json.dumps(CHAT).encode()
    bad = '{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "x"}]}'.encode(
        "latin-1"
    )
    path.write_bytes(good + b"\n" + bad + b"\n" + good + b"\n")
    report = check_dataset(path)
    assert report.accepted == 2
    problem = report.problems.kept[0]
    assert (problem.code, problem.line) == ("invalid_text", 2)
    assert "UTF-8" in problem.hint


def test_lone_surrogate_escape_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(CHAT) + "\n" + json.dumps(CHAT).replace("blue", "\\ud800") + "\n")
    report = check_dataset(path)
    assert report.accepted == 1 and report.problems.kept[0].code == "invalid_text"


# -- streaming: progress and cancel ----------------------------------------------------


def test_progress_rises_to_one_and_cancel_stops_between_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "CHUNK_BYTES", 2000)
    path = write_jsonl(tmp_path / "d.jsonl", chat_rows(300))
    seen: list[float] = []
    scan(path, progress=seen.append)
    assert len(seen) > 5 and seen == sorted(seen) and seen[-1] == 1.0

    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(ImportCancelled):
        scan(path, cancel=cancel)
    assert len(calls) == 2
