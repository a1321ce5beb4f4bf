"""Whole-file writes: a reader (or a crash) never meets half a file.

The text goes to a hidden sibling with a random name (two writers never share one), which is
renamed over the target; on any failure the sibling is removed and the old file stays.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in one rename; OSError when it cannot be written."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
