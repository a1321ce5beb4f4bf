"""The training worker reads every format the importer does: its data loading, tokenization and a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.core.events import Done, EventSink, Warn
from backend.core.spec import JobSpec
from backend.data.chat_tokens import IGNORE
from backend.data.load import load_training_data
from backend.data.store import import_dataset
from backend.jobs.worker import EXIT_OK
from backend.training.sft import _tokenize
from tests.datasets import COLOURS
from tests.test_worker import make_job, run


class Collect(EventSink):
    def __init__(self) -> None:
        super().__init__(None, None)
        self.events: list = []

    def emit(self, event) -> None:
        self.events.append(event)


def spec_for(path: Path, **data) -> JobSpec:
    return JobSpec.from_dict({"data": {"path": str(path), **data}, "training": {"max_seq_length": 64}})


def alpaca_csv(path: Path, n: int = 40) -> Path:
    things = list(COLOURS)
    rows = [f"What colour is the {things[i % 8]}?,The {things[i % 8]} is {COLOURS[things[i % 8]]}." for i in range(n)]
    path.write_text("instruction,output\n" + "\n".join(rows) + "\nNo answer here,\n")
    return path


def test_load_data_reads_any_format_reports_rejected_rows_and_advice(tmp_path: Path) -> None:
    sink = Collect()
    train, held, content_hash = load_training_data(spec_for(alpaca_csv(tmp_path / "d.csv"), eval_split=0.1).data, sink)
    assert (len(train), len(held)) == (36, 4)
    assert train[0].messages == [
        {"role": "user", "content": "What colour is the sky?"},
        {"role": "assistant", "content": "The sky is blue."},
    ]
    warnings = [e for e in sink.events if isinstance(e, Warn)]
    rejected = [w for w in warnings if w.code == "row_rejected"]
    assert len(rejected) == 1 and "d.csv line 42, field output: 'output' is empty" in rejected[0].message
    assert {"few_examples", "small_eval", "duplicates"} <= {w.code for w in warnings}
    assert len(content_hash) == 64


def test_load_data_from_an_imported_dataset_and_a_separate_eval_file(tmp_path: Path) -> None:
    stored, report = import_dataset(alpaca_csv(tmp_path / "d.csv"), root=tmp_path / "store")
    train, held, content_hash = load_training_data(
        spec_for(stored.path, eval_path=str(tmp_path / "d.csv")).data, Collect()
    )
    assert (len(train), len(held)) == (40, 40)
    assert content_hash != report.content_hash  # train and eval together
    _, _, alone = load_training_data(spec_for(stored.path, eval_split=0.0).data, Collect())
    assert alone == report.content_hash


def test_tokenize_masks_weight_zero_replies_and_trains_all_of_plain_text(tmp_path: Path, tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    folder = tmp_path / "mixed"
    folder.mkdir()
    chat = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "skip me", "weight": 0},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "learn me"},
    ]
    (folder / "chat.jsonl").write_text(json.dumps({"messages": chat}) + "\n")
    (folder / "text.jsonl").write_text(json.dumps({"text": "Some plain text."}) + "\n")
    spec = spec_for(folder, eval_split=0.0)
    train, _, _ = load_training_data(spec.data, Collect())
    dataset = _tokenize(tokenizer, train, spec, "train", Collect())
    chat, text = dataset[0], dataset[1]
    learned = tokenizer.decode(
        [t for t, label in zip(chat["input_ids"], chat["labels"], strict=True) if label != IGNORE]
    )
    assert "learn me" in learned and "skip me" not in learned
    assert text["labels"] == text["input_ids"] and text["input_ids"][-1] == tokenizer.eos_token_id


@pytest.fixture
def _worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.mark.usefixtures("_worker_env")
def test_worker_trains_from_a_parquet_of_sharegpt_conversations(tmp_path: Path, tiny_llama: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"conversations": [{"from": "human", "value": f"What colour is the {t}?"}, {"from": "gpt", "value": f"{c}."}]}
        for t, c in COLOURS.items()
    ] * 5
    path = tmp_path / "colours.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    layout = make_job(tmp_path, tiny_llama, data={"path": str(path), "dedupe": True}, training={"max_steps": 3})
    code, events = run(layout)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    assert isinstance(events[-1], Done) and events[-1].status == "succeeded"
    assert "few_examples" in {e.code for e in events if isinstance(e, Warn)}
