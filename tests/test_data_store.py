"""Importing into the data folder: Arrow storage, the record with its mapping, round trips, cancel."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from backend.data.files import STORED_RECORD
from backend.data.load import check_dataset, read_dataset
from backend.data.problems import DataError, ImportCancelled
from backend.data.scan import ImportOptions
from backend.data.store import DATA_FILE, SCHEMA, import_dataset, list_stored, open_stored, read_examples

ROWS = [
    {"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]},
    {
        "messages": [
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "skip", "weight": 0},
            {"role": "user", "content": "q3"},
            {"role": "assistant", "content": "a3"},
        ],
        "tools": [{"name": "f"}],
    },
    {"messages": [{"role": "user", "content": "unanswered"}]},
]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_import_stores_normalized_arrow_with_record_and_report(tmp_path: Path) -> None:
    source = write(tmp_path / "Support Chats.jsonl", ROWS[:3])
    stored, report = import_dataset(source, root=tmp_path / "store")
    assert stored.path == tmp_path / "store" / f"support-chats-{report.content_hash[:12]}"
    assert stored.content_hash == report.content_hash == check_dataset(source).content_hash
    assert stored.examples == 2 and stored.name == "Support Chats"
    assert sorted(p.name for p in stored.path.iterdir()) == [DATA_FILE, STORED_RECORD, "report.json", "report.md"]
    assert json.loads((stored.path / "report.json").read_text())["problem_counts"] == {"no_reply": 1}

    with pa.memory_map(str(stored.path / DATA_FILE)) as data:
        table = pa.ipc.open_file(data).read_all()
    assert table.schema.equals(SCHEMA) and table.num_rows == 2
    second = table.to_pylist()[1]
    # weight 0 is stored in the message model: trained false; fields a message does not use are null
    assert {k: v for k, v in second["messages"][1].items() if v is not None} == {
        "role": "assistant",
        "content": "skip",
        "trained": False,
    }
    assert second["messages"][0]["trained"] is None and json.loads(second["tools"]) == [{"name": "f"}]
    assert (second["file"], second["line"], second["row"]) == ("Support Chats.jsonl", 2, 2)


def test_a_stored_dataset_reads_back_identically_and_trains_by_path(tmp_path: Path) -> None:
    source = write(tmp_path / "d.jsonl", ROWS[:3])
    stored, _ = import_dataset(source, root=tmp_path / "store")
    original, again = read_dataset(source), read_dataset(stored.path)
    assert again.content_hash == original.content_hash
    assert [e.messages for e in again.examples] == [e.messages for e in original.examples]
    assert [e.tools for e in again.examples] == [e.tools for e in original.examples]
    assert again.report.files[0].format == "stored"
    assert [e.messages for e in read_examples(stored.path, 1, 5)] == [original.examples[1].messages]


def test_mapping_is_saved_with_the_dataset_and_reproduces_it(tmp_path: Path) -> None:
    source = tmp_path / "tickets.csv"
    source.write_text("ticket,reply,agent\nPrinter jams,Open tray B,Sam\nNo power,Check the cable,Ana\n")
    options = ImportOptions(format="columns", columns={"instruction": "ticket", "response": "reply"}, dedupe=True)
    stored, report = import_dataset(source, options, root=tmp_path / "store")
    reopened = open_stored(stored.path)
    assert reopened.options["columns"] == {"instruction": "ticket", "response": "reply"}
    assert reopened.import_options == options
    assert read_dataset(source, reopened.import_options).content_hash == report.content_hash


def test_list_newest_first_and_same_content_replaces(tmp_path: Path) -> None:
    root = tmp_path / "store"
    first, _ = import_dataset(write(tmp_path / "a.jsonl", ROWS[:1]), root=root)
    second, _ = import_dataset(write(tmp_path / "b.jsonl", ROWS[:2]), root=root)
    again, _ = import_dataset(tmp_path / "a.jsonl", root=root)
    assert again.path == first.path
    assert {d.path for d in list_stored(root)} == {first.path, second.path}
    assert list_stored(tmp_path / "nothing") == []


def test_cancel_and_unusable_data_leave_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with pytest.raises(ImportCancelled):
        import_dataset(write(tmp_path / "a.jsonl", ROWS[:2]), root=root, cancel=lambda: True)
    with pytest.raises(DataError, match="no usable examples"):
        import_dataset(write(tmp_path / "b.jsonl", ROWS[2:3]), root=root)
    assert list(root.iterdir()) == []


def test_not_an_imported_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a dataset imported by LoRA Studio"):
        open_stored(tmp_path)


def test_preview_pages_read_only_their_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.data import readers

    monkeypatch.setattr(readers, "CHUNK_BYTES", 500)  # many small chunks, so many Arrow batches
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(50)
    ]
    stored, _ = import_dataset(write(tmp_path / "d.jsonl", rows), root=tmp_path / "store")
    assert len(json.loads((stored.path / STORED_RECORD).read_text())["batch_rows"]) > 5
    page = read_examples(stored.path, 7, 10)
    assert [e.messages[0]["content"] for e in page] == [f"q{i}" for i in range(7, 17)]
    assert [e.line for e in page] == list(range(8, 18))
    assert read_examples(stored.path, 45, 10)[-1].messages[1]["content"] == "a49"
    assert read_examples(stored.path, 60, 10) == []
