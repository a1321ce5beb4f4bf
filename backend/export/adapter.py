"""Reading a trained adapter folder and finding (and checking) the base it belongs to.

An adapter trained on one version of a base silently degrades another, so merging
compares the fingerprint recorded at training time with the fingerprint of the base
given now, and refuses on a mismatch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.layout import ADAPTER_RECORD
from backend.export.errors import ExportError
from backend.models.errors import ModelError
from backend.models.fingerprint import fingerprint
from backend.models.store import resolve_model_path

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True)
class AdapterInfo:
    """A PEFT LoRA folder and, when LoRA Studio trained it, its record."""

    path: Path
    config: dict[str, Any]
    weights: Path
    record: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def recorded_base(self) -> dict[str, Any]:
        return (self.record or {}).get("base_model") or {}

    @property
    def name(self) -> str:
        """The training job's name when LoRA Studio trained it, else the folder's (its job's, for adapter/)."""
        recorded = (self.record or {}).get("name")
        return recorded or (self.path.parent.name if self.path.name == "adapter" else self.path.name)


def read_adapter(folder: str | Path) -> AdapterInfo:
    """Read ``adapter_config.json``, find the weights and the optional LoRA Studio record."""
    folder = Path(folder).expanduser().resolve()
    config_file = folder / ADAPTER_CONFIG
    if not config_file.is_file():
        raise ExportError(
            f"{folder} has no {ADAPTER_CONFIG}, so it is not a PEFT adapter folder.",
            hint="Choose the adapter/ folder of a finished training job.",
        )
    config = _read_json(config_file)
    if config.get("peft_type", "LORA") != "LORA":
        raise ExportError(f"{folder} is a {config.get('peft_type')} adapter; only LoRA adapters can be merged.")
    weights = next((folder / name for name in ADAPTER_WEIGHTS if (folder / name).is_file()), None)
    if weights is None:
        raise ExportError(f"{folder} has no adapter weights ({' or '.join(ADAPTER_WEIGHTS)}).")
    record_file = folder / ADAPTER_RECORD
    record = _read_json(record_file) if record_file.is_file() else None
    return AdapterInfo(path=folder, config=config, weights=weights, record=record)


def resolve_base(adapter: AdapterInfo, base: str | Path | None) -> tuple[Path, list[str]]:
    """The base folder to merge into, and warnings for the user.

    ``base`` (a store name, hub id in the store, or folder) wins; otherwise the base the
    record names. The fingerprint check follows: a mismatch raises, a missing record warns.
    """
    recorded = adapter.recorded_base
    candidates = [base] if base is not None else [recorded.get("ref"), recorded.get("path")]
    candidates = [c for c in candidates if c]
    if not candidates:
        raise ExportError(
            f"{adapter.path} does not say which base model it was trained on.",
            hint="Name the base model (--base) it was trained on.",
        )
    path = _first_resolvable(candidates)
    return path, check_fingerprint(adapter, path)


def check_fingerprint(adapter: AdapterInfo, base_path: Path) -> list[str]:
    """Refuse a base whose weights differ from the ones the adapter was trained on."""
    expected = adapter.recorded_base.get("fingerprint")
    if expected is None:
        return [
            f"{adapter.path.name} has no LoRA Studio record, so it cannot be checked against {base_path.name}; "
            "make sure it was trained on exactly this base."
        ]
    actual = fingerprint(base_path)
    if actual != expected:
        trained_on = adapter.recorded_base.get("ref") or adapter.recorded_base.get("path") or "another base"
        raise ExportError(
            f"The adapter was trained on {trained_on} (fingerprint {expected[:12]}), but {base_path} has "
            f"fingerprint {actual[:12]}: different weights or config. Merging it would silently degrade the model.",
            hint="Merge into the exact base the adapter was trained on (same download, same revision), or "
            "train the adapter again on this base.",
        )
    return []


def _first_resolvable(candidates: list[Any]) -> Path:
    problems = []
    for candidate in candidates:
        try:
            return resolve_model_path(candidate)
        except ModelError as exc:
            problems.append(str(exc))
    raise ExportError(
        f"The base model cannot be found: {' '.join(problems)}",
        hint="Import the base model the adapter was trained on, or name its folder (--base).",
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"Could not read {path}: {exc}.") from exc
    if not isinstance(data, dict):
        raise ExportError(f"{path} is not a JSON object.")
    return data
