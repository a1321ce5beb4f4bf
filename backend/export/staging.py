"""Build an output folder out of sight and rename it into place only when it is complete.

A merge or export that fails, is cancelled or is killed leaves at most a hidden
``.<name>.partial-<random>`` sibling, never a folder under the final name that a user
(or Ollama, or LM Studio's indexer) could mistake for a finished model.
"""

from __future__ import annotations

import errno
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backend.core.folders import replace_folder
from backend.export.errors import ExportError

DISK_MARGIN_BYTES = 256 * 1024 * 1024
"""Kept free beyond the estimate: file-system metadata, logs, and other programs' writes meanwhile."""


def check_free_disk(folder: Path, need_bytes: int) -> None:
    """Refuse before writing anything when ``folder``'s disk cannot hold ``need_bytes`` more."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need_bytes + DISK_MARGIN_BYTES:
        raise ExportError(
            f"Not enough free disk space in {probe}: the output needs about {_gib(need_bytes)} and "
            f"{_gib(free)} is free.",
            hint="Free some space or choose an output folder on a larger drive.",
        )


@contextmanager
def staged_folder(final: Path, need_bytes: int, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder next to ``final``; on success rename it to ``final``.

    The disk is checked first. On any exception (Ctrl-C included) the staging folder is removed
    and ``final`` is left as it was.
    """
    final = Path(final).expanduser().absolute()
    if final.exists() and not overwrite:
        raise ExportError(f"{final} already exists.", hint="Choose another output folder, or remove the old one first.")
    final.parent.mkdir(parents=True, exist_ok=True)
    check_free_disk(final.parent, need_bytes)
    staging = final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}")
    staging.mkdir()
    try:
        yield staging
        replace_folder(staging, final)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ExportError(
                f"The disk holding {final.parent} filled up while writing.",
                hint="Free some space or choose an output folder on a larger drive.",
            ) from exc
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"
