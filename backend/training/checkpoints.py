"""Finding the checkpoint a job resumes from, and checking it before it is trusted.

When the trainer has saved a checkpoint, ``write_marker`` adds ``lora_studio_checkpoint.json`` last
(atomically): the step and every file's name and size. A checkpoint is valid only when its marker
is there and every file it names has its recorded size, each safetensors file has a readable
header whose tensors fit the file, each torch ``.pt``/``.pth`` file is a readable zip archive, and
each JSON file (``trainer_state.json`` first) parses. A checkpoint written before the marker
existed gets the same content checks without the sizes. A damaged checkpoint is moved aside to
``damaged-checkpoint-N`` (a name the trainer's rotation never matches) so that it is kept for
inspection and never picked again.

No torch here: the queue uses it to tell whether a job can resume.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.atomic import write_text_atomic
from backend.models.errors import ModelImportError
from backend.models.hf_folder import read_header

MARKER = "lora_studio_checkpoint.json"
DAMAGED_PREFIX = "damaged-"
TRAINER_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors")


@dataclass(frozen=True)
class Skipped:
    """A checkpoint that was not resumed from: where it was, where it is kept now, and why."""

    path: Path
    kept_at: Path
    reason: str


class NoValidCheckpoint(Exception):
    """A job asked to resume has checkpoints, but none of them is whole."""

    error_type = "data"

    def __init__(self, message: str, skipped: list[Skipped]) -> None:
        super().__init__(message)
        self.skipped = skipped
        self.hint = (
            "Start the job over: `lora-studio queue retry JOB` (without --from-checkpoint), or Retry on the Jobs "
            "page, runs it again from step 0. The damaged checkpoints stay in the job's checkpoints folder until then."
        )


@dataclass(frozen=True)
class Picked:
    """The checkpoint to resume from (None: start over) and the damaged ones set aside on the way."""

    path: Path | None
    skipped: list[Skipped] = field(default_factory=list)


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT.match(path.name)
    return int(match.group(1)) if match else None


def _files(folder: Path) -> list[Path]:
    return sorted(
        path for path in folder.rglob("*") if path.is_file() and path.name != MARKER and not path.name.startswith(".")
    )


def write_marker(folder: Path, step: int) -> None:
    """Record, last, that ``folder`` is a complete checkpoint of ``step``: its files and their sizes."""
    files = {path.relative_to(folder).as_posix(): path.stat().st_size for path in _files(folder)}
    write_text_atomic(folder / MARKER, json.dumps({"format": 1, "step": step, "files": files}, indent=1) + "\n")


def _check_safetensors(path: Path) -> str | None:
    try:
        header = read_header(path)
    except ModelImportError:
        return f"{path.name} has no readable safetensors header (the file is cut short or not safetensors)"
    size = path.stat().st_size
    with path.open("rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
    ends = [
        entry["data_offsets"][1]
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list)
    ]
    need = 8 + length + max(ends, default=0)
    if need > size:
        return f"{path.name} is cut short: its tensors need {need:,} bytes, the file holds {size:,}"
    return None


def _check_content(path: Path) -> str | None:
    suffix = path.suffix
    if suffix == ".safetensors":
        return _check_safetensors(path)
    if suffix in (".pt", ".pth"):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
        except (OSError, zipfile.BadZipFile, ValueError) as exc:
            return f"{path.name} is not a readable torch file ({exc})"
        return None
    if suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"{path.name} does not parse as JSON ({exc})"
    return None


def check_checkpoint(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from, or None when it is whole."""
    if not folder.is_dir():
        return "it is not a folder"
    marker = folder / MARKER
    if marker.exists():
        try:
            record: Any = json.loads(marker.read_text(encoding="utf-8"))
            recorded = {str(name): int(size) for name, size in record["files"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"its marker {MARKER} is unreadable ({exc})"
        for name, size in recorded.items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            if (actual := path.stat().st_size) != size:
                return f"{name} is {actual:,} bytes, but {size:,} were written"
    if not (folder / TRAINER_STATE).is_file():
        return f"{TRAINER_STATE} is missing (the save was cut short)"
    if not any((folder / name).is_file() for name in _WEIGHTS) and not any(folder.glob("model*.safetensors")):
        return "it has no weights file"
    for path in _files(folder):
        if (reason := _check_content(path)) is not None:
            return reason
    return None


def _steps(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    if not checkpoints_dir.is_dir():
        return []
    found = [(step, path) for path in checkpoints_dir.iterdir() if (step := checkpoint_step(path)) is not None]
    return sorted(found, reverse=True)


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest valid checkpoint, or None; reads only, moves nothing."""
    return next((path for _, path in _steps(checkpoints_dir) if check_checkpoint(path) is None), None)


def damaged_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """The checkpoints set aside as damaged, kept for inspection."""
    if not checkpoints_dir.is_dir():
        return []
    return sorted(path for path in checkpoints_dir.iterdir() if path.name.startswith(DAMAGED_PREFIX))


def _set_aside(path: Path) -> Path:
    target = path.with_name(DAMAGED_PREFIX + path.name)
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{DAMAGED_PREFIX}{path.name}-{number}")
    path.rename(target)
    return target


def pick_checkpoint(checkpoints_dir: Path) -> Picked:
    """The newest valid checkpoint to resume from; each newer damaged one is moved aside.

    Raises NoValidCheckpoint when damaged checkpoints exist (found now or earlier) and no valid one.
    """
    skipped: list[Skipped] = []
    for _, path in _steps(checkpoints_dir):
        reason = check_checkpoint(path)
        if reason is None:
            return Picked(path, skipped)
        skipped.append(Skipped(path, _set_aside(path), reason))
    damaged = damaged_checkpoints(checkpoints_dir)
    if damaged:
        why = "; ".join(f"{item.path.name}: {item.reason}" for item in skipped)
        raise NoValidCheckpoint(
            f"This job has no checkpoint it can resume from: {len(damaged)} damaged checkpoint"
            f"{'s are' if len(damaged) != 1 else ' is'} kept aside in {checkpoints_dir} "
            f"({', '.join(path.name for path in damaged)})" + (f". {why}." if why else "."),
            skipped,
        )
    return Picked(None, skipped)


def is_complete(path: Path) -> bool:
    """Whether ``path`` is a checkpoint that can be resumed from."""
    return check_checkpoint(path) is None
