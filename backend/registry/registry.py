"""The registry's actions: add, stage, promote, roll back, tag, note, remove, compare, and which fit a base.

Every change to a named adapter runs under that adapter's lock (a file lock, so processes
wait for each other), reads the state from its folder, checks the change against it, writes
one version folder or one history line, and re-indexes the adapter. Two processes promoting
at once therefore leave exactly one production version, and the second is told what changed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from backend.core.atomic import write_text_atomic
from backend.core.layout import ADAPTER_RECORD
from backend.core.paths import data_home
from backend.models.fingerprint import fingerprint
from backend.registry import index
from backend.registry.errors import RegistryError
from backend.registry.gates import GateResult, Gates, check, read_gates, write_gates
from backend.registry.history import STAGES, AdapterState, Stage, append_event, read_events
from backend.registry.version import Version, check_name, read_version, write_version

LOCK_TIMEOUT_S = 30
SUITES = "suites"


def registry_dir() -> Path:
    return data_home() / "adapters"


def index_path() -> Path:
    return data_home() / "registry.db"


@dataclass(frozen=True)
class Listed:
    """One version as the index holds it (what tables show)."""

    name: str
    version: int
    stage: str
    registered_at: str | None
    base_ref: str | None
    base_fingerprint: str | None
    dataset: str | None
    dataset_hash: str | None
    rank: int | None
    heldout_loss: float | None
    task_score: float | None
    size_bytes: int | None
    folder: str
    source: str | None
    tags: list[str]
    notes: list[dict[str, str]]
    problem: str | None

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Registry:
    def __init__(self, root: Path | None = None, db_path: Path | None = None) -> None:
        self.root = root or registry_dir()
        self.db_path = db_path or index_path()

    # -- reading ---------------------------------------------------------------------------------

    def versions(self, name: str | None = None) -> list[Listed]:
        """Every version (of ``name``), newest first within each adapter, adapters by name."""
        with self._index(name) as db:
            where = " WHERE name = ?" if name else ""
            order = " ORDER BY name, version DESC"
            rows = db.execute(index.SELECT_VERSIONS + where + order, (name,) if name else ()).fetchall()
        return [_listed(row) for row in rows]

    def names(self) -> list[str]:
        with self._index() as db:
            return [r[0] for r in db.execute("SELECT name FROM adapters ORDER BY name")]

    def get(self, name: str, number: int | None = None) -> Version:
        """A version read from its folder (``number`` None: the production one, else the newest)."""
        state, versions = self._load(name)
        if not versions:
            raise RegistryError(f"There is no adapter named '{name}'.", "See `lora-studio adapters list`.")
        if number is None:
            number = state.production or versions[-1].number
        for version in versions:
            if version.number == number:
                return version
        raise RegistryError(f"{name} has no version {number}.", f"Its versions: {_numbers(versions)}.")

    def history(self, name: str) -> list[dict[str, Any]]:
        return read_events(self._adapter_root(name) / index.HISTORY)

    def state(self, name: str) -> AdapterState:
        return self._load(name)[0]

    def registered_from(self, source: Path) -> list[Listed]:
        """The versions registered from this folder (a job's adapter), so results about it reach them too."""
        wanted = str(source.resolve())
        return [v for v in self.versions() if v.source == wanted]

    def fitting(self, base: Path) -> list[Listed]:
        """The versions trained on exactly this base (same fingerprint)."""
        wanted = fingerprint(base)
        return [v for v in self.versions() if v.base_fingerprint == wanted]

    def check_base(self, version: Version, base: Path) -> None:
        """Refuse a base whose fingerprint differs from the one ``version`` was trained on."""
        trained_on = version.base_fingerprint
        if trained_on is None:
            raise RegistryError(
                f"{version.label} does not record which base it was trained on.",
                "Add it again with --base MODEL so its base can be checked.",
            )
        actual = fingerprint(base)
        if actual != trained_on:
            raise RegistryError(
                f"{version.label} was trained on {version.base_ref or 'another model'} "
                f"(fingerprint {trained_on[:12]}), but {base} is a different model (fingerprint {actual[:12]}).",
                "Use it with the base it was trained on; `lora-studio adapters fits MODEL` lists the adapters "
                "trained on a given model.",
            )

    def diff(self, a: Version, b: Version) -> dict[str, Any]:
        """Spec fields, data hash and metrics that differ between two versions."""
        spec_a, spec_b = flat(a.training.get("spec") or {}), flat(b.training.get("spec") or {})
        fields = {
            key: [spec_a.get(key), spec_b.get(key)]
            for key in sorted(set(spec_a) | set(spec_b))
            if spec_a.get(key) != spec_b.get(key) and key != "name"
        }
        metrics_a, metrics_b = _metrics(a), _metrics(b)
        metrics = {
            key: {"a": (x := metrics_a.get(key)), "b": (y := metrics_b.get(key)), "delta": _delta(x, y)}
            for key in sorted(set(metrics_a) | set(metrics_b))
            if metrics_a.get(key) != metrics_b.get(key)
        }
        data = [(v.training.get("dataset") or {}).get("content_hash") for v in (a, b)]
        base = [a.base_fingerprint, b.base_fingerprint]
        return {
            "a": a.label,
            "b": b.label,
            "spec": fields,
            "dataset_hash": data if data[0] != data[1] else None,
            "base_fingerprint": base if base[0] != base[1] else None,
            "metrics": metrics,
        }

    # -- changing --------------------------------------------------------------------------------

    def add(
        self,
        source: Path,
        name: str,
        *,
        base: Path | None = None,
        lineage: dict[str, Any] | None = None,
        job: str | None = None,
        tags: list[str] | None = None,
        note: str | None = None,
    ) -> Version:
        """Register the PEFT adapter in ``source`` as the next version of ``name`` (staging)."""
        check_name(name)
        source = source.resolve()
        if not (source / "adapter_config.json").is_file():
            raise RegistryError(
                f"{source} is not a PEFT adapter folder (it has no adapter_config.json).",
                "Choose the folder that holds adapter_config.json and the adapter weights.",
            )
        training = _training_record(source, base)
        registered = {"source": str(source), "job": job, "lineage": lineage or {}}
        with self._locked(name) as root:
            number, folder = write_version(root, source, training, registered)
            append_event(root / index.HISTORY, {"event": "registered", "version": number})
            for text in [note] if note else []:
                append_event(root / index.HISTORY, {"event": "note", "version": number, "text": text})
            if tags:
                append_event(root / index.HISTORY, {"event": "tags", "version": number, "add": sorted(set(tags))})
        self._reindex(name)
        return read_version(name, folder)

    def gate_results(self, name: str, number: int) -> list[GateResult]:
        """The adapter's gates checked against this version's latest evaluation (and production's)."""
        state, versions = self._load(name)
        version = self._need(name, number, versions)
        production = next((v for v in versions if v.number == state.production), None)
        latest = version.evaluations[-1] if version.evaluations else None
        theirs = production.evaluations[-1] if production and production.evaluations else None
        if production is not None and production.number == number:
            theirs = None
        return check(read_gates(self._adapter_root(name)), latest, theirs)

    def suites(self, name: str) -> dict[str, Path]:
        """The adapter's regression suites (``suites/<suite>.yaml`` in its folder), by name."""
        folder = self._adapter_root(name) / SUITES
        return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}

    def set_suite(self, name: str, suite: str, text: str) -> Path:
        """Keep a suite with the adapter (checked by the caller); a suite of that name is replaced."""
        check_name(suite)
        with self._locked(name) as root:
            (root / SUITES).mkdir(exist_ok=True)
            path = root / SUITES / f"{suite}.yaml"
            write_text_atomic(path, text)
            append_event(root / index.HISTORY, {"event": "suite", "suite": suite})
        return path

    def set_gates(self, name: str, gates: Gates) -> None:
        with self._locked(name) as root:
            write_gates(root, gates)
            append_event(root / index.HISTORY, {"event": "gates", "gates": [g.describe() for g in gates.gates]})
        self._reindex(name)

    def promote(
        self, name: str, number: int, stage: Stage = "production", reason: str = "", override: str | None = None
    ) -> dict[str, Any]:
        """Move a version to ``stage``; production replaces (and archives) the current production version.

        Production must pass the adapter's gates, unless ``override`` gives a reason, which is recorded.
        """
        if stage not in STAGES:
            raise RegistryError(f"'{stage}' is not a stage.", f"Choose one of {', '.join(STAGES)}.")
        with self._locked(name) as root:
            state, versions = self._load(name)
            self._need(name, number, versions)
            failed = [r for r in self.gate_results(name, number) if not r.passed] if stage == "production" else []
            if failed and not override:
                raise RegistryError(
                    f"{name} v{number} does not pass its release gates: "
                    + "; ".join(f"{r.gate.describe()} failed ({r.why})" for r in failed)
                    + ".",
                    "Evaluate it again after improving it, or promote with --override REASON (the reason is kept).",
                )
            if state.versions[number].stage == stage:
                raise RegistryError(f"{name} v{number} is already in {stage}.")
            if state.production == number:
                raise RegistryError(
                    f"{name} v{number} is in production; it leaves production when another version is promoted "
                    "or it is rolled back.",
                    f"`lora-studio adapters rollback {name}` brings back the previous production version.",
                )
            event: dict[str, Any] = {"event": "stage", "version": number, "stage": stage, "reason": reason}
            if stage == "production":
                event["previous"] = state.production
            if failed:
                event["override"] = override
                event["failed_gates"] = [r.to_dict() for r in failed]
            written = append_event(root / index.HISTORY, event)
        self._reindex(name)
        return written

    def rollback(self, name: str, reason: str = "") -> dict[str, Any]:
        """Put back the version that was in production before the current one."""
        with self._locked(name) as root:
            state = self._load(name)[0]
            if state.production is None:
                raise RegistryError(f"{name} has no version in production, so there is nothing to roll back.")
            if len(state.production_stack) < 2:
                raise RegistryError(
                    f"{name} v{state.production} is the first version in production; "
                    "there is no earlier one to go back to.",
                    f"Promote another version instead: `lora-studio adapters promote {name} VERSION`.",
                )
            current, previous = state.production_stack[-1], state.production_stack[-2]
            written = append_event(
                root / index.HISTORY, {"event": "rollback", "version": previous, "from": current, "reason": reason}
            )
        self._reindex(name)
        return written

    def tag(self, name: str, number: int, add: list[str], remove: list[str]) -> None:
        with self._locked(name) as root:
            self._need(name, number, self._load(name)[1])
            append_event(root / index.HISTORY, {"event": "tags", "version": number, "add": add, "remove": remove})
        self._reindex(name)

    def note(self, name: str, number: int, text: str) -> None:
        with self._locked(name) as root:
            self._need(name, number, self._load(name)[1])
            append_event(root / index.HISTORY, {"event": "note", "version": number, "text": text})
        self._reindex(name)

    def remove(self, name: str, number: int, reason: str = "") -> None:
        """Delete a version's folder; its history stays. The production version cannot be removed."""
        with self._locked(name) as root:
            state, versions = self._load(name)
            self._need(name, number, versions)
            if state.production == number:
                raise RegistryError(
                    f"{name} v{number} is in production and cannot be deleted.",
                    "Promote another version or roll back first.",
                )
            append_event(root / index.HISTORY, {"event": "removed", "version": number, "reason": reason})
            trash = root / f".removed-v{number}"
            os.rename(root / f"v{number}", trash)  # gone from the folder view at once, then deleted
            shutil.rmtree(trash, ignore_errors=True)
        self._reindex(name)

    def rebuild(self) -> None:
        """Drop the index and read every folder again."""
        with index.connect(self.db_path) as db:
            index.rebuild(db, self.root)

    # -- helpers ---------------------------------------------------------------------------------

    def _adapter_root(self, name: str) -> Path:
        return self.root / check_name(name)

    def _load(self, name: str) -> tuple[AdapterState, list[Version]]:
        root = self._adapter_root(name)
        if not root.is_dir():
            return AdapterState(), []
        state, versions, _ = index.load_adapter(root)
        return state, versions

    def _need(self, name: str, number: int, versions: list[Version]) -> Version:
        for version in versions:
            if version.number == number:
                return version
        hint = f"Its versions: {_numbers(versions)}." if versions else "See `lora-studio adapters list`."
        raise RegistryError(f"{name} has no version {number}.", hint)

    @contextmanager
    def _locked(self, name: str) -> Iterator[Path]:
        root = self._adapter_root(name)
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / ".lock"), timeout=LOCK_TIMEOUT_S):
            yield root

    @contextmanager
    def _index(self, name: str | None = None) -> Iterator[Any]:
        """The index, brought up to date with the folders first (only ``name``'s, when given)."""
        with index.connect(self.db_path) as db:
            index.refresh(db, self.root, name)
            yield db

    def _reindex(self, name: str) -> None:
        with index.connect(self.db_path) as db:
            index.reindex(db, self._adapter_root(name))


def _training_record(source: Path, base: Path | None) -> dict[str, Any]:
    """The adapter's training record, or one made for a plain PEFT folder from ``base``."""
    try:
        record = json.loads((source / ADAPTER_RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        record = {}
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{source / ADAPTER_RECORD} cannot be read: {exc}.") from None
    if not isinstance(record, dict):
        raise RegistryError(f"{source / ADAPTER_RECORD} is not a JSON object.")
    if base is not None:
        record["base_model"] = {"ref": str(base), "path": str(base.resolve()), "fingerprint": fingerprint(base)}
    elif not (record.get("base_model") or {}).get("fingerprint"):
        config = json.loads((source / "adapter_config.json").read_text(encoding="utf-8"))
        named = config.get("base_model_name_or_path")
        if named and Path(named).is_dir():
            record["base_model"] = {"ref": named, "path": named, "fingerprint": fingerprint(Path(named))}
        else:
            raise RegistryError(
                f"{source} does not say which base model it was trained on"
                + (f" ('{named}' is not a folder here)" if named else "")
                + ".",
                "Pass the base with --base MODEL_FOLDER, so LoRA Studio can check it wherever the adapter is used.",
            )
    return record


def _listed(row: tuple[Any, ...]) -> Listed:
    values = dict(zip(index.COLUMNS, row, strict=True))
    for key in ("tags", "notes"):  # most versions have none: skip the parser for the common "[]"
        values[key] = json.loads(values[key]) if values[key] != "[]" else []
    return Listed(**values)


def _numbers(versions: list[Version]) -> str:
    return ", ".join(f"v{v.number}" for v in versions)


def flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``section.key`` → value (how a diff and the Adapters page name them)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _metrics(version: Version) -> dict[str, float]:
    values = {k: v for k, v in (version.training.get("metrics") or {}).items() if isinstance(v, int | float)}
    latest = (version.evaluations or [{}])[-1]
    for key in ("loss", "base_loss", "loss_delta", "task_score"):
        if isinstance(latest.get(key), int | float):
            values[f"evaluation_{key}"] = latest[key]
    return values


def _delta(a: Any, b: Any) -> float | None:
    return b - a if isinstance(a, int | float) and isinstance(b, int | float) else None
