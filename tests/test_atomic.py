"""backend.core.atomic: a failed write leaves the old file whole and no hidden sibling behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.core.atomic import write_text_atomic


def test_a_write_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    write_text_atomic(target, "first")
    write_text_atomic(target, "second, longer")
    assert target.read_text(encoding="utf-8") == "second, longer"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    write_text_atomic(target, "kept")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "half written \udc80")  # a lone surrogate cannot be encoded: fails mid-write
    assert target.read_text(encoding="utf-8") == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
