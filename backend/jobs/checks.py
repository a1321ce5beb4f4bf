"""The vocabulary of pre-flight checks: a level, a topic and a sentence a person can act on."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

HEADROOM = 256 << 20
"""Room left on a disk for logs, events and the rest of the system."""


@dataclass(frozen=True)
class Check:
    level: Literal["error", "warning", "info"]
    topic: Literal["spec", "model", "adapter", "data", "disk", "gpu", "ram"]
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "topic": self.topic, "message": self.message}


def free_bytes(path: Path) -> int:
    """Free space on the filesystem that holds ``path`` (or would, once created)."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def size_text(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"
