"""What the Hugging Face Hub says about a model before it is imported: size, architecture, license, gating.

The model picker shows these as soon as a hub id is chosen, and the estimator needs the
model's shapes. Both come from one read: the model info (license from the model card's
metadata, gating, the exact commit), then config.json and the safetensors headers of that
commit through HTTP range requests (``shapes_from_hub``), never the weights. Nothing here
imports torch or transformers, but it needs the network: the GUI calls it off its thread.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from backend.models.errors import ModelImportError
from backend.models.hf_folder import context_length
from backend.models.hub_import import not_found_message
from backend.models.shapes import ModelShapes, shapes_from_hub


@dataclass(frozen=True)
class HubFacts:
    """A hub model's facts at one commit, and its shapes when its files can be read."""

    repo_id: str
    commit: str
    license: str | None
    gated: bool
    accessible: bool = True
    """Whether this login may download the files: False for a gated model whose license it has not accepted."""
    shapes: ModelShapes | None = None
    problem: str = ""
    """Why ``shapes`` is None, in a few words; empty when they were read."""

    @property
    def parameters(self) -> int | None:
        return self.shapes.parameter_count if self.shapes else None

    @property
    def architecture(self) -> str | None:
        return (self.shapes.config.get("architectures") or [None])[0] if self.shapes else None

    @property
    def context_length(self) -> int | None:
        return context_length(self.shapes.config) if self.shapes else None


def read_hub_facts(repo_id: str) -> HubFacts:
    """Ask the Hub about ``repo_id``; raises ModelImportError for an unknown id, the client's errors when offline."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        NotASafetensorsRepoError,
        RepositoryNotFoundError,
    )

    try:
        info = HfApi().model_info(repo_id)
    except RepositoryNotFoundError as exc:
        raise ModelImportError(not_found_message(repo_id)) from exc
    card_license = getattr(info.card_data, "license", None)
    facts = HubFacts(
        repo_id=repo_id,
        commit=info.sha or "",
        license=card_license if isinstance(card_license, str) and card_license else None,
        gated=bool(info.gated),
    )
    try:
        return replace(facts, shapes=shapes_from_hub(repo_id, revision=info.sha))
    except GatedRepoError:
        return replace(facts, accessible=False, problem="it is gated")
    except NotASafetensorsRepoError:
        return replace(facts, problem="it has no safetensors weights")
    except EntryNotFoundError:
        return replace(facts, problem="it has no config.json")
