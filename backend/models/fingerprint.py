"""The fingerprint that identifies a base model's exact weights.

Adapters record the fingerprint of the base they were trained on, and merging refuses
a base whose fingerprint differs. It is the sha256 over the canonical config.json and
then the bytes of every weight file in sorted order, each part preceded by its length
(8 bytes, big-endian) so that no two different folders can hash the same stream.

Hashing reads every weight byte, so the result is cached with the size and mtime of each
input file, and recomputed only when those change: in the model's store record, or, for a
folder the store does not know, in ``data_home()/cache/fingerprints.json`` (a merge of an
adapter on such a base is checked at pre-flight, at launch and in the worker: three
processes, one hash).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from backend.core import paths
from backend.core.atomic import write_text_atomic
from backend.core.progress import ProgressFn, no_progress
from backend.models.hf_folder import CONFIG_FILE, read_config, weight_files
from backend.models.record import FileStamp, find_record, write_record

CHUNK_BYTES = 8 * 1024 * 1024


def fingerprint(model_dir: str | Path, progress: ProgressFn = no_progress) -> str:
    """The fingerprint of the model in ``model_dir``, from a cache while it is valid (see above)."""
    model_dir = Path(model_dir).resolve()
    stamps = file_stamps(model_dir)
    found = find_record(model_dir)
    if found is not None:
        record, record_folder = found
        if record.fingerprint is not None and record.fingerprint_stamps == stamps:
            return record.fingerprint
    else:
        cached = _folder_cache().get(str(model_dir))
        if cached is not None and cached.get("stamps") == _plain(stamps):
            return str(cached["fingerprint"])
    value = compute_fingerprint(model_dir, progress)
    if found is not None:
        write_record(record_folder, replace(record, fingerprint=value, fingerprint_stamps=stamps))
    else:
        _remember(model_dir, stamps, value)
    return value


_CACHE_ENTRIES = 64


def _cache_path() -> Path:
    return paths.data_home() / "cache" / "fingerprints.json"


def _plain(stamps: dict[str, FileStamp]) -> dict[str, dict[str, int]]:
    return {name: asdict(stamp) for name, stamp in stamps.items()}


def _folder_cache() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(folder: Path, stamps: dict[str, FileStamp], value: str) -> None:
    """Add an entry (the newest last, the oldest dropped past ``_CACHE_ENTRIES``); a cache that cannot be
    written only costs a later hash."""
    cache = _folder_cache()
    cache.pop(str(folder), None)
    cache[str(folder)] = {"fingerprint": value, "stamps": _plain(stamps)}
    entries = dict(list(cache.items())[-_CACHE_ENTRIES:])
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(entries, indent=1))
    except OSError:
        pass


def canonical_config(folder: Path) -> bytes:
    """config.json as sorted compact JSON, without the keys that only describe who wrote it.

    ``transformers_version`` and ``_name_or_path``-style keys change when the same weights
    are re-saved by another transformers release or from another folder.
    """
    config = {
        key: value
        for key, value in read_config(folder).items()
        if key != "transformers_version" and not key.startswith("_")
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint_inputs(folder: Path) -> list[Path]:
    """The files the fingerprint covers: config.json, then the weights in sorted order."""
    return [folder / CONFIG_FILE, *weight_files(folder)]


def file_stamps(folder: Path) -> dict[str, FileStamp]:
    """Size and mtime of every fingerprint input, keyed by file name."""
    stamps = {}
    for path in fingerprint_inputs(folder):
        stat = path.stat()
        stamps[path.name] = FileStamp(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    return stamps


def compute_fingerprint(folder: Path, progress: ProgressFn = no_progress) -> str:
    """Hash the folder's config and weights (slow: reads every weight byte)."""
    digest = hashlib.sha256()
    config = canonical_config(folder)
    digest.update(len(config).to_bytes(8, "big"))
    digest.update(config)
    weights = weight_files(folder)
    total = sum(path.stat().st_size for path in weights) or 1
    done = 0
    progress("fingerprinting", 0, total)
    for path in weights:
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
                done += len(chunk)
                progress("fingerprinting", done, total)
    return digest.hexdigest()
