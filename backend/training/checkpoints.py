"""Finding the checkpoint a job resumes from.

The trainer writes a checkpoint folder piece by piece and ``trainer_state.json``
last, so a folder without it was interrupted mid-save and must not be resumed.
No torch here: the queue uses it to tell whether a job can resume.
"""

from __future__ import annotations

import re
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT.match(path.name)
    return int(match.group(1)) if match else None


def is_complete(path: Path) -> bool:
    has_weights = any(path.glob("adapter_model.*")) or any(path.glob("model*.safetensors"))
    return has_weights and (path / "trainer_state.json").is_file()


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    if not checkpoints_dir.is_dir():
        return None
    found = [
        (step, path)
        for path in checkpoints_dir.iterdir()
        if path.is_dir() and (step := checkpoint_step(path)) is not None and is_complete(path)
    ]
    return max(found)[1] if found else None
