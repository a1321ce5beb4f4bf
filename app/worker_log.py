"""The tail of a job's worker log, for the Jobs page: read again only when the file changed.

The log can grow to many megabytes over a long run; only its last ``TAIL_BYTES`` are shown (from
the first whole line), with a note that the whole log is in the job folder.
"""

from __future__ import annotations

from pathlib import Path

from widgets.log_view import LogView
from widgets.units import format_bytes

TAIL_BYTES = 64 << 10


class WorkerLogTail:
    """Keeps ``view`` showing the end of one log file; the size and time seen last say whether to read."""

    def __init__(self, view: LogView) -> None:
        self.view = view
        self._seen: tuple[Path, int, float] | None = None

    def clear(self) -> None:
        """Forget the file shown (another job was selected)."""
        self.view.clear()
        self._seen = None

    def refresh(self, path: Path) -> None:
        """Show the end of ``path`` if it changed since it was last read (nothing while it is not there)."""
        try:
            info = path.stat()
        except OSError:
            if self._seen is not None:
                self.view.clear()
            self._seen = None
            return
        seen = (path, info.st_size, info.st_mtime)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            with path.open("rb") as handle:
                handle.seek(max(0, info.st_size - TAIL_BYTES))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError as exc:
            text = f"{path} could not be read: {exc.strerror or exc}"
        if info.st_size > TAIL_BYTES:
            text = (
                f"… (the last {format_bytes(TAIL_BYTES)} of {format_bytes(info.st_size)}; "
                "the whole log is in the job folder)\n" + text.split("\n", 1)[-1]
            )
        self.view.replace_text(text)
