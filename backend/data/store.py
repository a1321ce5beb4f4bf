"""Datasets imported into the data folder: the normalized examples as Arrow, their record and report.

``datasets_dir()/<name>-<hash>/`` holds ``data.arrow`` (an Arrow IPC file, one
row per example: messages in the message model of ``backend.data.message``, text,
tools and where it came from; tool calls as JSON text),
``lora_studio_dataset.json`` (source, options including a column mapping,
counts, content hash) and the report as JSON and Markdown. An import is written
to a hidden folder and renamed into place, so a cancelled or failed import
leaves nothing behind. A job can name the folder as its ``data.path``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from itertools import accumulate, chain
from pathlib import Path
from typing import Any, cast

import pyarrow as pa

from backend.core import paths
from backend.data.examples import Batch, Example
from backend.data.files import STORED_RECORD
from backend.data.load import check_dataset, no_usable_examples
from backend.data.message import Message
from backend.data.problems import DataError, said
from backend.data.report import DataReport
from backend.data.scan import Cancel, ImportOptions, Progress
from backend.data.tokens import TokenCounter

RECORD_VERSION = 1
DATA_FILE = "data.arrow"
MESSAGE_FIELDS = [
    ("role", pa.string()),
    ("content", pa.string()),
    ("trained", pa.bool_()),  # null: the role's default
    ("train_spans", pa.list_(pa.list_(pa.int32()))),
    ("tool_calls", pa.string()),  # JSON text: argument objects vary too much for one Arrow type
    ("tool_call_id", pa.string()),
    ("name", pa.string()),
]
"""Datasets stored before these had ``weight`` (int8, 0 = not trained) instead; they still read."""
SCHEMA = pa.schema(
    [
        ("messages", pa.list_(pa.struct(MESSAGE_FIELDS))),
        ("text", pa.string()),
        ("tools", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("row", pa.int64()),
        ("unit", pa.string()),  # what ``line`` counts (see Example); absent from datasets imported before it
    ]
)


@dataclass(frozen=True)
class StoredDataset:
    path: Path
    name: str
    content_hash: str
    examples: int
    source: str
    options: dict[str, Any]  # ImportOptions.to_dict(): format, column mapping, dedupe, chunk size, sheet
    created_at: str

    @property
    def import_options(self) -> ImportOptions:
        """The options it was imported with, to read the source again the same way."""
        return ImportOptions(**self.options)


class ArrowSink:
    """Writes accepted batches to an Arrow IPC file as they arrive."""

    def __init__(self, path: Path) -> None:
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        self.writer = pa.ipc.new_file(str(path), SCHEMA, options=options)
        self.batch_rows: list[int] = []  # saved in the record, so a preview decompresses only the batches it shows

    def add(self, batch: Batch) -> None:
        self.writer.write_batch(record_batch(batch))
        self.batch_rows.append(len(batch))

    def close(self) -> None:
        self.writer.close()


def record_batch(batch: Batch) -> pa.RecordBatch:
    """One Batch as Arrow columns, flattening the messages without a Python object per message."""
    examples = [example for example, _, _ in batch.items]
    message_type = SCHEMA.field("messages").type
    messages = list(chain.from_iterable(e.messages for e in examples))
    fields = list(message_type.value_type)
    texts = [
        pa.array([m["role"] for m in messages], pa.string()),
        pa.array([m["content"] for m in messages], pa.string()),
    ]
    if all(len(m) == 2 for m in messages):  # role and content only, as most datasets: the rest is null
        rest = [pa.nulls(len(messages), field.type) for field in fields[2:]]
    else:
        calls = [json.dumps(m["tool_calls"], ensure_ascii=False) if "tool_calls" in m else None for m in messages]
        rest = [
            pa.array([m.get("trained") for m in messages], pa.bool_()),
            pa.array([m.get("train_spans") for m in messages], message_type.value_type.field("train_spans").type),
            pa.array(calls, pa.string()),
            pa.array([m.get("tool_call_id") for m in messages], pa.string()),
            pa.array([m.get("name") for m in messages], pa.string()),
        ]
    message = pa.StructArray.from_arrays([*texts, *rest], fields=fields)
    offsets = pa.array([0, *accumulate(len(e.messages) for e in examples)], pa.int32())
    columns = [
        pa.ListArray.from_arrays(offsets, message, type=message_type),
        pa.array([e.text for e in examples], pa.string()),
        pa.array([e.tools for e in examples], pa.string()),
        pa.array([batch.file] * len(examples), pa.string()),
        pa.array([line for _, line, _ in batch.items], pa.int64()),
        pa.array([row for _, _, row in batch.items], pa.int64()),
        pa.array([batch.unit] * len(examples), pa.string()),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def import_dataset(
    source: Path,
    options: ImportOptions = ImportOptions(),  # noqa: B008 - frozen
    *,
    name: str | None = None,
    root: Path | None = None,
    counter: TokenCounter | None = None,
    eval_fraction: float = 0.1,
    seed: int = 42,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> tuple[StoredDataset, DataReport]:
    """Validate ``source`` and store its usable examples; DataError when there are none."""
    root = root or paths.datasets_dir()
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".import-{uuid.uuid4().hex[:12]}.partial"
    partial.mkdir()
    try:
        sink = ArrowSink(partial / DATA_FILE)
        try:
            report = check_dataset(
                source,
                options,
                counter=counter,
                eval_fraction=eval_fraction,
                seed=seed,
                sinks=[sink],
                progress=progress,
                cancel=cancel,
            )
        finally:
            sink.close()
        if not report.usable:
            raise DataError(no_usable_examples(report))
        label = _slug(name or source.stem or source.name)
        final = root / f"{label}-{report.content_hash[:12]}"
        record = {
            "format": RECORD_VERSION,
            "name": name or source.stem,
            "content_hash": report.content_hash,
            "examples": report.accepted,
            "source": str(source.resolve()),
            "options": options.to_dict(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": [
                {"name": f.name, "format": f.format, "rows": f.rows, "accepted": f.accepted} for f in report.files
            ],
            "batch_rows": sink.batch_rows,
        }
        (partial / STORED_RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        report.save(partial / "report.json")
        report.save(partial / "report.md")
        if final.exists():  # the same name and content: replace it with this fresh import
            shutil.rmtree(final)
        partial.replace(final)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return open_stored(final), report


def open_stored(path: Path) -> StoredDataset:
    """The record of an imported dataset folder."""
    try:
        record = json.loads((path / STORED_RECORD).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not a dataset imported by LoRA Studio ({said(exc)})") from None
    return StoredDataset(
        path=path,
        name=record["name"],
        content_hash=record["content_hash"],
        examples=record["examples"],
        source=record["source"],
        options=record["options"],
        created_at=record["created_at"],
    )


def list_stored(root: Path | None = None) -> list[StoredDataset]:
    """Every imported dataset, newest first."""
    root = root or paths.datasets_dir()
    if not root.is_dir():
        return []
    found = [open_stored(p) for p in root.iterdir() if (p / STORED_RECORD).is_file()]
    return sorted(found, key=lambda d: d.created_at, reverse=True)


def read_examples(path: Path, start: int = 0, count: int = 100) -> list[Example]:
    """Examples ``start`` to ``start + count`` of an imported dataset, for a preview table.

    Only the Arrow batches that hold them are read and decompressed, so paging through a million
    examples stays quick.
    """
    record = json.loads((path / STORED_RECORD).read_text(encoding="utf-8"))
    rows: list[dict[str, Any]] = []
    with pa.memory_map(str(path / DATA_FILE)) as source:
        reader = pa.ipc.open_file(source)
        first = 0
        for index, size in enumerate(record["batch_rows"]):
            if first + size > start and first < start + count:
                low = max(0, start - first)
                rows += reader.get_batch(index).slice(low, start + count - first - low).to_pylist()
            first += size
    return [
        Example(
            [_message(m) for m in row["messages"]],
            row["text"],
            row["tools"],
            row["file"],
            row["line"],
            row["row"],
            row.get("unit") or "line",
        )
        for row in rows
    ]


def _message(stored: dict[str, Any]) -> Message:
    """A stored message back in the message model: nulls dropped, tool calls parsed, an old weight 0 read."""
    message = cast(Message, {k: v for k, v in stored.items() if v is not None and k not in ("weight", "tool_calls")})
    if stored.get("tool_calls"):
        message["tool_calls"] = json.loads(stored["tool_calls"])
    if stored.get("weight") == 0 and message["role"] == "assistant":
        message["trained"] = False
    return message


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "dataset"
