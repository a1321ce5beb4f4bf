"""Downloading a model from the Hugging Face Hub by id (``org/name``).

Only the top-level files a model folder needs are fetched (config, one weight format,
tokenizer, generation config, chat template, and the model card, whose front matter
states the license); repositories often also carry ONNX, GGUF or original-checkpoint
copies that would multiply the download.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from backend.core.progress import ProgressFn
from backend.models.errors import ModelImportError
from backend.models.record import ModelSource

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
NEEDED_SUFFIXES = (".json", ".jinja", ".txt", ".model", ".tiktoken")
MODEL_CARD = "README.md"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def is_hub_id(ref: str) -> bool:
    return bool(HUB_ID.match(ref))


def gated_message(repo_id: str) -> str:
    """What to do about a gated model: the import's error, and the model picker's warning before one."""
    return f"{repo_id} is gated: accept its license on huggingface.co and log in with `hf auth login`, then import it."


def not_found_message(repo_id: str) -> str:
    return (
        f"{repo_id} was not found on the Hugging Face Hub. Check the id (org/name); if the model is private, "
        "log in with `hf auth login`."
    )


def download_snapshot(repo_id: str, revision: str | None, dest: Path, progress: ProgressFn) -> ModelSource:
    """Download the files a model folder needs into ``dest``; return the source with the exact commit."""
    if _offline():
        raise ModelImportError(
            f"Cannot download {repo_id}: Hugging Face Hub offline mode is on (HF_HUB_OFFLINE or "
            "TRANSFORMERS_OFFLINE is set). Unset it, or download the model on a connected machine "
            "and import its folder."
        )
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    progress("downloading", 0, None)
    try:
        info = HfApi().model_info(repo_id, revision=revision)
        files = [sibling.rfilename for sibling in info.siblings or []]
        snapshot_download(repo_id, revision=info.sha, local_dir=dest, allow_patterns=_needed_files(files))
    except GatedRepoError as exc:
        raise ModelImportError(gated_message(repo_id)) from exc
    except RepositoryNotFoundError as exc:
        raise ModelImportError(not_found_message(repo_id)) from exc
    except RevisionNotFoundError as exc:
        raise ModelImportError(f"{repo_id} has no revision {revision!r}.") from exc
    except Exception as exc:  # the HTTP client's own errors (httpx) do not derive from OSError
        raise ModelImportError(
            f"Could not download {repo_id} from the Hugging Face Hub: {exc}. Check your internet "
            "connection, or download the model elsewhere and import its folder."
        ) from exc
    # snapshot_download keeps its bookkeeping in local_dir; it is not part of the model.
    shutil.rmtree(dest / ".cache", ignore_errors=True)
    progress("downloading", 1, 1)
    return ModelSource(
        kind="hub",
        ref=repo_id,
        details={"revision": info.sha or "", **({"requested_revision": revision} if revision else {})},
    )


def _needed_files(files: list[str]) -> list[str]:
    """Top-level config/tokenizer files and the model card, plus one weight format, safetensors when available."""
    top_level = [name for name in files if "/" not in name]
    safetensors = [name for name in top_level if name.endswith(".safetensors")]
    weights = safetensors or [name for name in top_level if name.startswith("pytorch_model") and name.endswith(".bin")]
    return weights + [name for name in top_level if name.endswith(NEEDED_SUFFIXES) or name == MODEL_CARD]


def _offline() -> bool:
    """Read at call time: huggingface_hub reads HF_HUB_OFFLINE only once, when first imported."""
    from huggingface_hub import constants

    flags = [os.environ.get(name, "").upper() for name in OFFLINE_VARIABLES]
    return constants.is_offline_mode() or any(flag in {"1", "ON", "YES", "TRUE"} for flag in flags)
