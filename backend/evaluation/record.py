"""Keeping an adapter's evaluation results in its own record, so adapters can be compared later.

``lora_studio_adapter.json`` gets two keys and keeps every other one as it was:

* ``evaluation``: the latest evaluation's summary (what the model card shows);
* ``evaluations``: the summaries of past evaluations, oldest first, the latest last,
  at most ``HISTORY`` of them (the oldest are dropped).

The file is rewritten atomically: a new file in the same folder, then renamed over the old one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backend.core.atomic import write_text_atomic
from backend.core.layout import ADAPTER_RECORD

HISTORY = 20


def record_evaluation(adapter_dir: Path, summary: dict[str, Any]) -> None:
    """Add ``summary`` to the adapter's record; OSError or ValueError when the record cannot be read or written."""
    path = adapter_dir / ADAPTER_RECORD
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict):
        raise ValueError(f"{path} is not a JSON object")
    history = [e for e in record.get("evaluations") or [] if isinstance(e, dict)]
    record["evaluation"] = summary
    record["evaluations"] = [*history, summary][-HISTORY:]
    write_text_atomic(path, json.dumps(record, indent=2, allow_nan=False) + "\n")


def evaluations(adapter_dir: Path) -> list[dict[str, Any]]:
    """The adapter's past evaluation summaries, oldest first; empty when it has none or no record."""
    try:
        record = json.loads((adapter_dir / ADAPTER_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    history = record.get("evaluations") if isinstance(record, dict) else None
    return [e for e in history or [] if isinstance(e, dict)]
