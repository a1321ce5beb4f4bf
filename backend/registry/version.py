"""A version folder: the adapter's files, its training record, and the registry's own record.

``<registry>/<name>/v<N>/`` holds a copy of the adapter (hard links where the disk allows,
so registering a trained adapter costs no space), its ``lora_studio_adapter.json`` as
training or evaluation left it, and ``lora_studio_version.json``: when and by whom it was
registered, from where, its lineage and its size. A version is written into a hidden
folder and renamed into place whole, so a crash never leaves half a version.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.layout import ADAPTER_RECORD
from backend.registry.errors import RegistryError
from backend.registry.history import now_iso, who

VERSION_RECORD = "lora_studio_version.json"
FORMAT = 1
_FOLDER = re.compile(r"v([1-9][0-9]*)")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
ADAPTER_FILES = ("adapter_config.json",)


def slug(text: str) -> str:
    """A registry name from free text (a job's name): lower case, letters, digits, dot, dash, underscore."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:64]


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise RegistryError(
            f"'{name}' cannot name an adapter.",
            f"Use lower-case letters, digits, '.', '-' or '_' (up to 64), for example '{slug(name) or 'my-adapter'}'.",
        )
    return name


def version_number(folder: Path) -> int | None:
    match = _FOLDER.fullmatch(folder.name)
    return int(match.group(1)) if match else None


@dataclass
class Version:
    """One registered version as its folder describes it; ``problem`` says why a record could not be read."""

    name: str
    number: int
    folder: Path
    registered: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} v{self.number}"

    @property
    def base_fingerprint(self) -> str | None:
        value = (self.training.get("base_model") or {}).get("fingerprint")
        return value if isinstance(value, str) else None

    @property
    def base_ref(self) -> str | None:
        value = (self.training.get("base_model") or {}).get("ref")
        return str(value) if value else None

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        return [e for e in self.training.get("evaluations") or [] if isinstance(e, dict)]


def read_version(name: str, folder: Path) -> Version:
    """The version in ``folder``; a missing or broken record becomes ``problem``, never an exception."""
    number = version_number(folder)
    assert number is not None
    version = Version(name, number, folder)
    problems = []
    for file, attr in ((VERSION_RECORD, "registered"), (ADAPTER_RECORD, "training")):
        try:
            data = json.loads((folder / file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.append(f"{file} is missing")
            continue
        except (OSError, ValueError) as exc:
            problems.append(f"{file} cannot be read ({exc})")
            continue
        if not isinstance(data, dict):
            problems.append(f"{file} is not a JSON object")
            continue
        setattr(version, attr, data)
    if not (folder / "adapter_config.json").is_file():
        problems.append("adapter_config.json is missing: this is not a PEFT adapter any more")
    version.problem = "; ".join(problems) or None
    return version


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def write_version(
    adapter_root: Path, source: Path, training: dict[str, Any], registered: dict[str, Any]
) -> tuple[int, Path]:
    """Copy ``source`` into the next free ``v<N>`` under ``adapter_root``, whole or not at all."""
    tmp = adapter_root / f".partial-{secrets.token_hex(4)}"
    try:
        shutil.copytree(source, tmp, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(VERSION_RECORD))
        if training:
            (tmp / ADAPTER_RECORD).unlink(missing_ok=True)  # a link to the source: never write through it
            (tmp / ADAPTER_RECORD).write_text(json.dumps(training, indent=2) + "\n", encoding="utf-8")
        record = {"format": FORMAT, "registered_at": now_iso(), "who": who(), **registered}
        record["size_bytes"] = folder_size(tmp)
        while True:
            number = 1 + max((version_number(p) or 0 for p in adapter_root.iterdir()), default=0)
            (tmp / VERSION_RECORD).write_text(json.dumps({**record, "version": number}, indent=2) + "\n")
            try:
                os.rename(tmp, adapter_root / f"v{number}")  # fails if another process took the number
                return number, adapter_root / f"v{number}"
            except OSError:
                if not (adapter_root / f"v{number}").exists():
                    raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
