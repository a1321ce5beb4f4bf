"""What every reader yields: chunks of parsed records with their places, and the records it could not parse.

Apart from ``readers.py`` so the workbook and document readers, which ``read_file`` loads only for their
file types, share the types without importing the module that dispatches to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CHUNK_ROWS = 4096


@dataclass(frozen=True)
class Unreadable:
    """A record that could not be parsed, and why (a code from problems.ADVICE)."""

    code: str
    message: str


@dataclass
class Chunk:
    records: list[tuple[int | None, Any]]  # (place or None, parsed value or Unreadable)
    position: float  # fraction of the file read so far
    unit: str = "line"  # what a place counts, as people find it: line, page, paragraph, or "<sheet> row"
    notes: list[str] = field(default_factory=list)  # what the reader chose or skipped, in words
