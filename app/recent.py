"""The datasets opened before, with what their last check found, kept in the studio's QSettings.

One JSON value under ``data/recent`` (``{"version": 1, "entries": [...]}``), newest first, at
most ``LIMIT``. A column mapping the user chose, and the sheet of a workbook read, are kept with
their dataset, so reopening the file reads it the same way. A value that can't be read (hand-edited, a newer version) is
ignored rather than failing the page.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

KEY = "data/recent"
VERSION = 1
LIMIT = 10

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecentDataset:
    path: str
    format: str = "auto"
    """The format name a job spec takes (``messages``, ``alpaca``…, ``columns``, or ``auto`` for a mix)."""
    format_label: str = ""
    """The format in words, as the check named it."""
    columns: dict[str, str] | None = None
    """The user's column mapping, when they chose one."""
    sheet: str | None = None
    """The sheet of a workbook that was read, when it has rows in more than one."""
    rows: int = 0
    accepted: int = 0
    p99_tokens: int | None = None
    model: str | None = None
    """The model whose tokenizer measured ``p99_tokens``."""
    checked_at: str = ""
    """ISO 8601, UTC."""

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path

    def exists(self) -> bool:
        return Path(self.path).exists()

    def detail(self) -> str:
        """One line: what the last check found, and when."""
        parts = [f"{self.accepted:,} of {self.rows:,} rows usable"]
        if self.format_label:
            parts.append(self.format_label)
        if self.columns and "mapped" not in self.format_label:
            parts.append("columns mapped by you")
        if self.sheet:
            parts.append(f"sheet {self.sheet}")
        if self.p99_tokens is not None:
            parts.append(f"p99 {self.p99_tokens:,} tokens")
        if self.checked_at:
            parts.append(f"checked {_when(self.checked_at)}")
        return " · ".join(parts)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _when(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return iso
    today = datetime.now().astimezone().date()
    if moment.date() == today:
        return f"today {moment:%H:%M}"
    return f"{moment:%d %b %Y}".lstrip("0")


class RecentDatasets:
    """Read and write the list; every change is saved at once."""

    def __init__(self, settings: QSettings) -> None:
        self._settings = settings

    def entries(self) -> list[RecentDataset]:
        raw = self._settings.value(KEY, "")
        if not raw:
            return []
        try:
            data = json.loads(str(raw))
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            return [_entry(item) for item in data["entries"]][:LIMIT]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.warning("ignoring the recent datasets list in the settings: %s", exc)
            return []

    def get(self, path: str | Path) -> RecentDataset | None:
        key = str(path)
        return next((entry for entry in self.entries() if entry.path == key), None)

    def remember(self, entry: RecentDataset) -> None:
        """Put ``entry`` first, replacing the one for the same path."""
        kept = [e for e in self.entries() if e.path != entry.path]
        self._save([entry, *kept][:LIMIT])

    def update(self, path: str | Path, **changes: Any) -> None:
        """Change fields of the entry for ``path`` (if listed) without moving it."""
        key = str(path)
        self._save([replace(e, **changes) if e.path == key else e for e in self.entries()])

    def forget(self, path: str | Path) -> None:
        key = str(path)
        self._save([e for e in self.entries() if e.path != key])

    def _save(self, entries: list[RecentDataset]) -> None:
        self._settings.setValue(KEY, json.dumps({"version": VERSION, "entries": [asdict(e) for e in entries]}))
        self._settings.sync()


def _entry(item: dict[str, Any]) -> RecentDataset:
    known = {f.name for f in fields(RecentDataset)}
    entry = RecentDataset(**{k: v for k, v in item.items() if k in known})
    if not isinstance(entry.path, str) or not entry.path:
        raise ValueError("an entry without a path")
    return entry
