"""Finding a finished merge of an adapter into its base, so an export converts it instead of merging again.

A merge writes ``lora_studio_merge.json`` last into its staging folder, which is renamed into place
only when complete. Beside its provenance the record holds what identifies the merge (``MergeKey``:
the adapter's fingerprint, the base's fingerprint, the output dtype, whether it was verified) and
the size of every file written. A folder is reused only when its key equals the one the export
would merge with and every file is there at its recorded size: a partial, edited or older merge
(whose record lacks the key) is merged again, never trusted.

Where to look: the export's own candidates (the job folders' ``merged/``) and a short list of
finished merges in ``data_home()/cache/merges.json``, which every merge adds to. The list is only
a pointer; losing it costs a merge, never a wrong result, because each candidate's record decides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backend.core import paths
from backend.core.atomic import write_text_atomic
from backend.export.adapter import ADAPTER_CONFIG, AdapterInfo

MERGE_RECORD = "lora_studio_merge.json"
_INDEX_ENTRIES = 64


@dataclass(frozen=True)
class MergeKey:
    """What makes two merges the same model: same adapter bytes, same base weights, same output format."""

    adapter: str
    """``adapter_fingerprint`` of the adapter folder."""
    base: str
    """The base's fingerprint (``backend.models.fingerprint``)."""
    dtype: str
    verified: bool
    """The merge was checked against base + adapter (or would have been, RAM allowing)."""

    def serves(self, wanted: MergeKey) -> bool:
        """This merge can stand in for ``wanted``: a verified merge also serves a request that skips the check."""
        same = (self.adapter, self.base, self.dtype) == (wanted.adapter, wanted.base, wanted.dtype)
        return same and (self.verified or not wanted.verified)


def adapter_fingerprint(adapter: AdapterInfo) -> str:
    """sha256 over the adapter's config and weights, each preceded by its length (a few MB: fast)."""
    digest = hashlib.sha256()
    for path in (adapter.path / ADAPTER_CONFIG, adapter.weights):
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def record_fields(key: MergeKey | None, folder: Path) -> dict[str, Any]:
    """The record's reuse fields: the key (None: this merge cannot be identified) and every file's size."""
    files = {path.name: path.stat().st_size for path in sorted(folder.iterdir()) if path.is_file()}
    return {"merge_key": asdict(key) if key else None, "files": files}


def why_not_reusable(folder: Path, wanted: MergeKey) -> str | None:
    """None when ``folder`` is a complete merge that serves ``wanted``; else the reason, for the job's log."""
    if folder.name.startswith("."):
        return f"{folder} is a merge still being written"
    try:
        record = json.loads((folder / MERGE_RECORD).read_text(encoding="utf-8"))
        key = MergeKey(**record["merge_key"])
        files = dict(record["files"])
    except (OSError, ValueError, TypeError, KeyError):
        return f"{folder} has no merge record that identifies it (merged before LoRA Studio recorded one)"
    if not key.serves(wanted):
        return f"{folder} is a merge of another adapter, base or precision"
    for name, size in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return f"{folder} is incomplete: {name} is missing or has changed since the merge"
    return None


def find_merge(wanted: MergeKey, candidates: Iterable[Path], *, remembered: bool = True) -> Path | None:
    """The first complete merge that serves ``wanted``, from ``candidates`` and then (unless told not to) the
    remembered ones."""
    seen: set[Path] = set()
    for folder in [*candidates, *(_remembered() if remembered else [])]:
        folder = folder.expanduser().absolute()
        if folder in seen or not folder.is_dir():
            continue
        seen.add(folder)
        if why_not_reusable(folder, wanted) is None:
            return folder
    return None


def remember_merge(folder: Path) -> None:
    """Add a finished merge to the list (newest last); a list that cannot be written only costs a later merge."""
    entries = [str(path) for path in _remembered() if path != folder]
    entries = [*entries, str(folder)][-_INDEX_ENTRIES:]
    path = _index_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(entries, indent=1))
    except OSError:
        pass


def _index_path() -> Path:
    return paths.data_home() / "cache" / "merges.json"


def _remembered() -> list[Path]:
    try:
        data = json.loads(_index_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [Path(entry) for entry in data if isinstance(entry, str)] if isinstance(data, list) else []
