"""What a person is told about files that are empty, not text, in another encoding or not rows, with the exact
words; real files in every case, through the check and the ``data check`` command; the counts agree everywhere."""

from __future__ import annotations

import codecs
import gzip
import json
import re
from pathlib import Path

import pytest

from backend.cli.common import EXIT_FAILED, EXIT_OK
from backend.cli.main import main
from backend.data.load import check_dataset, read_dataset
from backend.data.problems import DataError, said
from backend.data.report import DataReport

CHAT = {"messages": [{"role": "user", "content": "Où est la gare ?"}, {"role": "assistant", "content": "À gauche."}]}
SECOND = {"messages": [{"role": "user", "content": "Où est la poste ?"}, {"role": "assistant", "content": "À droite."}]}
LINES = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [CHAT, SECOND])
BINARY = (
    "this is not text/JSON: it holds binary data (byte 1 is 0x00, which text never holds); check that this is the "
    "data file and not "
)
EMPTY = "the file is empty (0 bytes)"


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def only_problem(report: DataReport) -> str:
    [problem] = report.problems.kept
    return str(problem)


def assert_counts_agree(report: DataReport) -> None:
    """Rows read, excluded and each rule's count tell one story: the summary's, the problems', the files'."""
    assert sum(f.rows for f in report.files) == report.rows
    assert sum(f.accepted for f in report.files) == report.accepted
    assert sum(g.count for g in report.problem_groups() if g.excluded) == report.excluded
    for group in report.problem_groups():
        assert group.tally != "0 rows excluded"


def assert_plain_words(text: str) -> None:
    """No doubled word ('at at'), no empty brackets, no place left hanging ('starting at')."""
    assert not re.search(r"\b(\w+) \1\b", text), text
    assert "()" not in text and "( " not in text, text
    assert not re.search(r"\b(starting|ending|found|beginning) (at|in|from)\s*([);:]|$)", text), text


# -- empty files --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet", ".arrow", ".xlsx", ".docx"])
def test_a_file_of_no_bytes_is_empty_whatever_its_kind(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"data{suffix}", b"")
    report = check_dataset(path)
    assert only_problem(report) == f"data{suffix}: {EMPTY}"
    assert report.summary_lines()[0] == f"data{suffix}: not read: {EMPTY}"
    assert report.problem_groups()[0].tally == "1 file" and report.problem_groups()[0].title == "file is empty"
    assert_counts_agree(report)


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        (
            "blank.jsonl",
            " \n\n\t\n",
            "the file is empty: it holds only blank space (5 bytes of spaces and line breaks)",
        ),
        ("blank.json", "  \n", "the file is empty: it holds only blank space (3 bytes of spaces and line breaks)"),
        ("lines.jsonl", "\n" * 5000, "the file is empty: it holds only blank lines"),  # past the first KiB
        ("spaces.json", " " * 5000, "the file is empty: it holds only blank space"),
        ("header.csv", "instruction,output\n", "the file has a header line but no rows below it"),
        ("list.json", "[]", "the file holds an empty list, no rows"),
        ("wrapped.json", '{"version": 1, "data": []}', "the file holds an empty list, no rows"),
    ],
)
def test_a_file_without_rows_says_so_plainly(tmp_path: Path, name: str, data: str, said: str) -> None:
    report = check_dataset(write(tmp_path / name, data))
    assert only_problem(report) == f"{name}: {said}"
    assert report.files[0].format_label == "not read" and (report.rows, report.excluded) == (0, 0)
    assert_counts_agree(report)


# -- files that are not text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (bytes(range(256)) * 8, BINARY + "a compressed, image or other file renamed .jsonl"),
        (
            gzip.compress(LINES.encode()),
            "this is not text/JSON but a gzip archive; decompress it (gunzip, or 7-Zip on "
            "Windows) and import the file inside",
        ),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64),
            "this is not text/JSON but a PNG image; choose the data file",
        ),
        (b"PAR1" + bytes(64), "this is not text/JSON but a Parquet file; give it the suffix .parquet"),
        (
            b"SQLite format 3\x00" + bytes(64),
            "this is not text/JSON but an SQLite database; export the table as CSV or JSON lines",
        ),
    ],
    ids=["random", "gzip", "png", "parquet", "sqlite"],
)
def test_a_binary_file_renamed_jsonl_is_not_text(tmp_path: Path, data: bytes, said: str) -> None:
    report = check_dataset(write(tmp_path / "train.jsonl", data))
    assert only_problem(report) == f"train.jsonl: {said}"
    assert report.problems.kept[0].code == "not_text" and report.summary_lines()[0] == f"train.jsonl: not read: {said}"
    assert_counts_agree(report)


def test_control_bytes_without_a_zero_are_binary_too(tmp_path: Path) -> None:
    report = check_dataset(write(tmp_path / "d.csv", bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 20))
    assert only_problem(report) == (
        "d.csv: this is not text/JSON: it holds binary data (byte 1 is 0x01, which text never holds); check that "
        "this is the data file and not a compressed, image or other file renamed .csv"
    )


# -- encodings -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-16-le"),
        lambda text: text.encode("utf-16-be"),
        lambda text: text.encode("utf-16"),
        lambda text: codecs.BOM_UTF8 + text.encode(),
        lambda text: text.encode("utf-32"),
    ],
    ids=["utf-16-le-no-bom", "utf-16-be-no-bom", "utf-16-bom", "utf-8-bom", "utf-32-bom"],
)
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_unicode_files_with_or_without_a_byte_order_mark_are_read(tmp_path: Path, encode, suffix: str) -> None:
    text = {
        ".jsonl": LINES,
        ".json": json.dumps([CHAT], ensure_ascii=False),
        ".csv": "instruction,output\nOù est la gare ?,À gauche.\n",
    }[suffix]
    report = check_dataset(write(tmp_path / f"d{suffix}", encode(text)))
    examples = read_dataset(tmp_path / f"d{suffix}").examples
    assert report.accepted == len(examples) >= 1 and not report.problems.kept
    assert [m["content"] for m in examples[0].messages] == ["Où est la gare ?", "À gauche."]


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_windows_1252_file_names_the_byte_the_encoding_and_the_fix(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / "d.jsonl", LINES.encode(encoding))
    report = check_dataset(path)
    assert report.accepted == 0 and report.rows == 2
    assert [str(p) for p in report.problems.kept] == [
        f"d.jsonl line {n}: the row holds byte 0xF9, which is not UTF-8 text; in Windows-1252 (Latin-1) it is 'ù', "
        "so the file was probably saved in that encoding"
        for n in (1, 2)
    ]
    [group] = report.problem_groups()
    assert group.tally == "2 rows excluded" and "save the file as UTF-8" in group.hint
    assert_counts_agree(report)


# -- JSON that is not a list of rows --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "what"),
    [("42", "a single number (42)"), ('"hello"', "a single text"), ("null", "only null"), ("true", "only true")],
)
def test_a_json_file_holding_one_value_is_not_rows(tmp_path: Path, data: str, what: str) -> None:
    report = check_dataset(write(tmp_path / "d.json", data))
    assert only_problem(report) == (
        f'd.json: the file holds {what} rather than rows; write the rows as a JSON list of objects, [{{"messages": '
        "[...]}, ...], or one object per line in a .jsonl file"
    )


@pytest.mark.parametrize(
    "row",
    [CHAT, {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}],
    ids=["messages", "sharegpt"],
)
def test_a_json_file_holding_one_conversation_is_one_row(tmp_path: Path, row: dict) -> None:
    report = check_dataset(write(tmp_path / "d.json", json.dumps(row, indent=2)))
    assert (report.rows, report.accepted) == (1, 1)
    assert report.files[0].reason == "its fields are in the one row looked at"


def test_rows_that_are_not_objects_are_each_named_and_counted_once(tmp_path: Path) -> None:
    report = check_dataset(write(tmp_path / "d.jsonl", 'null\n"text"\n[1]\n'))
    assert [str(p) for p in report.problems.kept] == [
        "d.jsonl line 1: the row is empty (null), not an object with named fields",
        "d.jsonl line 2: the row is text, not an object with named fields",
        "d.jsonl line 3: the row is a list, not an object with named fields",
    ]
    assert report.files[0].reason == "the rows are empty (null), text, a list, not objects with named fields"
    assert_counts_agree(report)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            '{"messages": [}',
            "not valid JSON at column 15: expected a value here (text in double quotes, a number, "
            "true, false, null, [ or {)",
        ),
        (
            '{"messages": "unclosed}',
            "not valid JSON at column 14: a text in double quotes starts here and is never closed",
        ),
        (
            '{"a": 1} {"b": 2}',
            "not valid JSON at column 10: more text after a complete JSON value (two rows on one line?)",
        ),
        ('{"a" 1}', "not valid JSON at column 6: expected a colon here, after a field name"),
    ],
    ids=["value", "unterminated", "two-rows", "colon"],
)
def test_a_line_that_is_not_json_is_one_problem_in_words(tmp_path: Path, line: str, said: str) -> None:
    """A file with nothing else: the line's own problem, not 'format not recognised' on top of it."""
    report = check_dataset(write(tmp_path / "d.jsonl", line + "\n"))
    assert only_problem(report) == f"d.jsonl line 1: {said}"
    assert report.files[0].reason == "no row could be read"
    assert_counts_agree(report)


def test_a_broken_json_file_says_where_naming_the_file_once(tmp_path: Path) -> None:
    path = write(tmp_path / "d.json", "[\n" + json.dumps(CHAT) + ',\n{"messages": "open\n]')
    report = check_dataset(path)
    assert only_problem(report) == (
        "d.json: not valid JSON at line 3 column 19: a line break inside a text in double quotes (is its closing "
        "quote missing?); write a line break in a text as \\n"
    )
    assert (report.rows, report.accepted) == (1, 1)
    assert_counts_agree(report)


def test_a_file_not_recognised_that_breaks_part_way_counts_the_rows_read(tmp_path: Path) -> None:
    report = check_dataset(write(tmp_path / "d.json", '[{"a": 1}, {"a": 2}, {oops}]'))
    assert (report.rows, report.excluded) == (2, 2)
    assert [g.tally for g in report.problem_groups()] == ["2 rows excluded", "1 file"]
    assert_counts_agree(report)


# -- typed content parts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["text", "value", "content"])
def test_a_text_part_s_text_is_read_under_text_value_or_content(tmp_path: Path, key: str) -> None:
    turns = [{"role": "user", "content": [{"type": "text", key: "Hi"}]}, {"role": "assistant", "content": "Hello"}]
    examples = read_dataset(write(tmp_path / "d.jsonl", json.dumps({"messages": turns}) + "\n")).examples
    assert examples[0].messages[0] == {"role": "user", "content": "Hi"}


def test_a_text_part_without_its_text_names_the_keys_it_has(tmp_path: Path) -> None:
    rows = [
        [{"type": "text", "body": "Hi", "lang": "en"}],
        [{"type": "text", "text": 5}],
    ]
    path = write(
        tmp_path / "d.jsonl",
        "".join(
            json.dumps({"messages": [{"role": "user", "content": c}, {"role": "assistant", "content": "x"}]}) + "\n"
            for c in rows
        ),
    )
    assert [str(p) for p in check_dataset(path).problems.kept] == [
        "d.jsonl line 1, field messages: message 1 (user) has a text part without 'text' (its other keys: 'body', "
        "'lang'); put the text under 'text'",
        "d.jsonl line 2, field messages: message 1 (user) has a text part whose 'text' is a number, not text",
    ]


# -- every message in plain words, and the command a person runs ----------------------------------------------------


def test_every_message_here_reads_plainly(tmp_path: Path) -> None:
    """Each file above, checked together in one folder: no doubled word, no empty brackets, nothing left hanging."""
    files = {
        "a.jsonl": b"",
        "b.jsonl": b" \n",
        "c.jsonl": bytes(range(256)),
        "d.json": b"42",
        "e.jsonl": b'{"messages": "unclosed}\n{"a" 1}\nnull\n',
        "f.jsonl": LINES.encode("cp1252"),
        "g.json": b'[{"a": 1}, {oops}]',
        "h.csv": b"instruction,output\n",
        "i.jsonl": json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "x": 1}]}]}).encode(),
        "j.jsonl": json.dumps({"messages": [CHAT["messages"][0], CHAT["messages"][1] | {"weight": 0}]}).encode(),
        "k.json": json.dumps([CHAT, CHAT]).encode(),
    }
    for name, data in files.items():
        write(tmp_path / name, data)
    report = check_dataset(tmp_path)
    assert_counts_agree(report)
    said = [*report.summary_lines(), *(str(p) for p in report.problems.kept), *(a.message for a in report.advice)]
    assert len(report.problems.kept) >= len(files)
    for text in said:
        assert_plain_words(text)


def test_data_check_prints_the_plain_words_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = write(tmp_path / "empty.jsonl", b"")
    assert main(["data", "check", str(empty)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "empty.jsonl: not read: the file is empty (0 bytes)" in out
    assert "file is empty: 1 file. What to do: choose the file that holds the rows, or export the data again." in out
    assert "not recognised" not in out and "()" not in out
    binary = write(tmp_path / "photo.jsonl", b"\x89PNG\r\n\x1a\n" + bytes(32))
    assert main(["data", "check", str(binary), "--json"]) == EXIT_FAILED
    document = json.loads(capsys.readouterr().out)
    assert document["problems"][0]["message"] == "this is not text/JSON but a PNG image; choose the data file"
    assert document["problem_counts"] == {"not_text": 0} and document["files"][0]["format"] == "unread"
    utf16 = write(tmp_path / "windows.jsonl", LINES.encode("utf-16-le"))
    assert main(["data", "check", str(utf16)]) == EXIT_OK
    assert "windows.jsonl: OpenAI/ChatML messages (its fields are in all 2 rows looked at); 2 of 2 rows usable" in (
        capsys.readouterr().out
    )


def test_reading_for_training_or_preview_says_why_nothing_is_usable(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        read_dataset(write(tmp_path / "empty.jsonl", b""))
    assert str(caught.value) == f"{tmp_path / 'empty.jsonl'} has no usable examples (empty.jsonl: {EMPTY})"


def test_a_copy_on_the_same_line_of_a_one_line_json_list_is_not_said_to_copy_itself(tmp_path: Path) -> None:
    report = check_dataset(write(tmp_path / "d.json", json.dumps([CHAT, CHAT])))
    assert only_problem(report) == "d.json line 1: same as an earlier row on the same line"


def test_data_preview_of_an_empty_file_says_it_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = write(tmp_path / "empty.jsonl", b"")
    assert main(["data", "preview", str(empty), "--json"]) == EXIT_FAILED
    assert capsys.readouterr().err == f"error: {empty} has no usable examples (empty.jsonl: {EMPTY})\n"


def test_a_conversation_with_nothing_learned_says_so_to_the_end(tmp_path: Path) -> None:
    row = {"messages": [CHAT["messages"][0], CHAT["messages"][1] | {"weight": 0}]}
    report = check_dataset(write(tmp_path / "d.jsonl", json.dumps(row) + "\n"))
    assert only_problem(report) == (
        "d.jsonl line 1, field messages: every assistant reply has weight 0 (or train false) and no other turn is "
        "marked learned, so nothing would be learned"
    )


def test_a_library_error_without_words_is_named_by_its_type_not_empty_brackets() -> None:
    assert said(ValueError("")) == "ValueError"
    assert said(OSError("disk on fire")) == "OSError: disk on fire"


def test_a_file_or_folder_entry_without_a_suffix_is_named_in_words(tmp_path: Path) -> None:
    bare = write(tmp_path / "README", "hello")
    with pytest.raises(DataError, match=r"^README: LoRA Studio reads .* files, not files without a suffix$"):
        check_dataset(bare)
    write(tmp_path / "d.jsonl", LINES)
    assert "README: skipped; LoRA Studio does not read files without a suffix" in check_dataset(tmp_path).notes
    write(tmp_path / "notes.zip", b"PK")
    assert "notes.zip: skipped; LoRA Studio does not read '.zip' files" in check_dataset(tmp_path).notes
