"""The registry's SQLite index: what the list, compare and chart views read, rebuilt from the folders.

One row per version with the columns a table sorts by, and one row per adapter with a
signature of its folder (the history file's size and each version record's size and time).
Before answering, ``refresh`` re-reads every adapter whose signature changed, so the index
follows the folders even when another process or a person changed them; ``rebuild`` drops
everything and reads all folders again.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from backend.core.layout import ADAPTER_RECORD
from backend.registry.history import AdapterState, fold, read_events
from backend.registry.version import VERSION_RECORD, Version, read_version, version_number

HISTORY = "history.jsonl"
_FOLDER = re.compile(r"v[1-9][0-9]*")
INDEX_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS adapters (
    name TEXT PRIMARY KEY, signature TEXT NOT NULL, production INTEGER, history TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL, version INTEGER NOT NULL, stage TEXT NOT NULL, registered_at TEXT,
    base_ref TEXT, base_fingerprint TEXT, dataset TEXT, dataset_hash TEXT, rank INTEGER,
    heldout_loss REAL, task_score REAL, size_bytes INTEGER, folder TEXT NOT NULL, source TEXT,
    tags TEXT NOT NULL, notes TEXT NOT NULL, problem TEXT, record TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
"""
COLUMNS = (
    "name",
    "version",
    "stage",
    "registered_at",
    "base_ref",
    "base_fingerprint",
    "dataset",
    "dataset_hash",
    "rank",
    "heldout_loss",
    "task_score",
    "size_bytes",
    "folder",
    "source",
    "tags",
    "notes",
    "problem",
)


SELECT_VERSIONS = f"SELECT {', '.join(COLUMNS)} FROM versions"  # noqa: S608 - fixed column names
_INSERT_VERSION = f"INSERT INTO versions VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"  # noqa: S608


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        if db.execute("PRAGMA user_version").fetchone()[0] != INDEX_VERSION:
            # A cache of the folders: an index of another shape is dropped and read again, never migrated.
            db.executescript("DROP TABLE IF EXISTS versions; DROP TABLE IF EXISTS adapters;")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {INDEX_VERSION}")
        yield db
    finally:
        db.close()


def signature(adapter_root: Path) -> str:
    """Changes whenever the history grows or a version folder or one of its two records changes."""
    parts = []
    with os.scandir(adapter_root) as entries:
        folders = sorted(e.name for e in entries if _FOLDER.fullmatch(e.name) and e.is_dir())
    for name in folders:
        parts.append(name)
        for record in (VERSION_RECORD, ADAPTER_RECORD):
            try:
                stat = os.stat(f"{adapter_root}/{name}/{record}")
                parts.append(f"{stat.st_size}:{stat.st_mtime_ns}")
            except OSError:
                parts.append("-")
    try:
        parts.append(f"h{os.stat(adapter_root / HISTORY).st_size}")
    except OSError:
        parts.append("h-")
    return "|".join(parts)


def load_adapter(adapter_root: Path) -> tuple[AdapterState, list[Version], list[dict[str, Any]]]:
    """Fold an adapter's history over its version folders: its state, its live versions and its events."""
    folders = {n: p for p in adapter_root.glob("v*") if (n := version_number(p)) is not None and p.is_dir()}
    events = read_events(adapter_root / HISTORY)
    state = fold(events, set(folders))
    versions = [read_version(adapter_root.name, folders[n]) for n in sorted(state.versions)]
    return state, versions, events


def _row(version: Version, state: AdapterState) -> tuple[Any, ...]:
    training, vstate = version.training, state.versions[version.number]
    metrics = training.get("metrics") or {}
    latest = (version.evaluations or [{}])[-1]
    spec = training.get("spec") or {}
    dataset = training.get("dataset") or {}
    return (
        version.name,
        version.number,
        vstate.stage,
        version.registered.get("registered_at"),
        version.base_ref,
        version.base_fingerprint,
        dataset.get("path"),
        dataset.get("content_hash"),
        (spec.get("lora") or {}).get("r"),
        _number(latest.get("loss", metrics.get("eval_loss"))),
        _number(latest.get("task_score")),
        version.registered.get("size_bytes"),
        str(version.folder),
        version.registered.get("source"),
        json.dumps(sorted(vstate.tags)),
        json.dumps(vstate.notes),
        version.problem,
        json.dumps({"registered": version.registered, "training": training}),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def reindex(db: sqlite3.Connection, adapter_root: Path) -> None:
    """Replace one adapter's rows with what its folder says now, in one transaction."""
    state, versions, events = load_adapter(adapter_root)
    name = adapter_root.name
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DELETE FROM versions WHERE name = ?", (name,))
        db.execute("DELETE FROM adapters WHERE name = ?", (name,))
        if versions or events:
            db.execute(
                "INSERT INTO adapters VALUES (?, ?, ?, ?)",
                (name, signature(adapter_root), state.production, json.dumps(events)),
            )
            db.executemany(_INSERT_VERSION, [_row(v, state) for v in versions])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def refresh(db: sqlite3.Connection, root: Path, name: str | None = None) -> None:
    """Re-read the adapters (or just ``name``) whose folders changed since they were indexed; drop vanished ones."""
    if name is None:
        known = dict(db.execute("SELECT name, signature FROM adapters").fetchall())
    else:
        known = dict(db.execute("SELECT name, signature FROM adapters WHERE name = ?", (name,)).fetchall())
    if name is not None:
        present = {name: root / name} if (root / name).is_dir() else {}
    elif root.is_dir():
        with os.scandir(root) as entries:
            present = {e.name: root / e.name for e in entries if e.is_dir() and not e.name.startswith(".")}
    else:
        present = {}
    for adapter, folder in present.items():
        if known.get(adapter) != signature(folder):
            reindex(db, folder)
    for adapter in set(known) - set(present):
        db.execute("DELETE FROM versions WHERE name = ?", (adapter,))
        db.execute("DELETE FROM adapters WHERE name = ?", (adapter,))


def rebuild(db: sqlite3.Connection, root: Path) -> None:
    db.execute("DELETE FROM versions")
    db.execute("DELETE FROM adapters")
    refresh(db, root)
