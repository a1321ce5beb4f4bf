"""The queue's SQLite database: connection settings, schema and migrations.

Several processes share the file (the GUI, CLI commands, one runner per device),
so it runs in WAL mode (readers never wait for the writer) with a busy timeout,
and every write is a short ``BEGIN IMMEDIATE`` transaction. The schema version
is ``PRAGMA user_version``; ``MIGRATIONS[n]`` takes a database from version n to
n + 1 inside one transaction, so a failed migration leaves the file as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000


class QueueDatabaseError(RuntimeError):
    """The queue database cannot be used (written by a newer LoRA Studio, or a failed migration)."""


def _v1(db: sqlite3.Connection) -> None:
    # One statement at a time: executescript() would commit the migration's transaction early.
    for statement in _V1.split(";"):
        if statement.strip():
            db.execute(statement)


_V1 = """
        CREATE TABLE jobs (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            name          TEXT NOT NULL,
            kind          TEXT NOT NULL,
            state         TEXT NOT NULL CHECK (state IN
                              ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
            folder        TEXT NOT NULL UNIQUE,
            position      INTEGER NOT NULL,
            held          INTEGER NOT NULL DEFAULT 0,
            resume        INTEGER NOT NULL DEFAULT 0,
            request       TEXT CHECK (request IN ('cancel', 'pause')),
            request_at    REAL,
            device        TEXT,
            pid           INTEGER,
            pid_created   REAL,
            attempt       INTEGER NOT NULL DEFAULT 0,
            events_offset INTEGER NOT NULL DEFAULT 0,
            step          INTEGER,
            total_steps   INTEGER,
            created_at    REAL NOT NULL,
            started_at    REAL,
            ended_at      REAL,
            updated_at    REAL NOT NULL,
            exit_code     INTEGER,
            cause         TEXT,
            error_type    TEXT,
            message       TEXT,
            hint          TEXT,
            log_tail      TEXT,
            adapter_path  TEXT
        );
        CREATE INDEX jobs_next ON jobs (state, held, position);
        CREATE TABLE runners (
            device      TEXT PRIMARY KEY,
            pid         INTEGER NOT NULL,
            pid_created REAL NOT NULL,
            started_at  REAL NOT NULL,
            seen_at     REAL NOT NULL
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta (key, value) VALUES ('changes', 0);
"""


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: Sequence[Migration] = (_v1,)
"""``MIGRATIONS[n]`` upgrades version n to n + 1; append, never edit, a released step."""


def connect(path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> sqlite3.Connection:
    """Open (creating or upgrading) the queue database at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE themselves.
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    try:
        migrate(db, migrations)
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the schema to ``len(migrations)``; returns the version it had before."""
    with transaction(db):
        found: int = db.execute("PRAGMA user_version").fetchone()[0]
        if found > len(migrations):
            raise QueueDatabaseError(
                f"The job queue ({_file(db)}) was written by a newer LoRA Studio (schema {found}; this one "
                f"reads up to {len(migrations)}). Update LoRA Studio."
            )
        for version in range(found, len(migrations)):
            try:
                migrations[version](db)
            except sqlite3.Error as exc:
                raise QueueDatabaseError(
                    f"Upgrading the job queue ({_file(db)}) to schema {version + 1} failed: {exc}. Nothing was changed."
                ) from exc
        db.execute(f"PRAGMA user_version = {len(migrations)}")
    return found


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the lock up front, so a read-then-write is never raced."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _file(db: sqlite3.Connection) -> str:
    file: str = db.execute("PRAGMA database_list").fetchone()["file"]
    return file
