"""Checks and facts about a Hugging Face model folder, read from files only (no torch).

The GUI lists and validates models in its own process, so everything here reads
config.json and the safetensors headers directly instead of loading weights.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

from backend.models.errors import ModelImportError

CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt")
SAFETENSORS_INDEX = "model.safetensors.index.json"
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")
SAFETENSORS_DTYPES = {
    "BF16": "bfloat16",
    "F16": "float16",
    "F32": "float32",
    "F64": "float64",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I8": "int8",
    "U8": "uint8",
}
MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class FolderInfo:
    """What the store records about a model folder besides its provenance."""

    architecture: str | None
    model_type: str
    parameter_count: int | None
    dtype: str | None
    context_length: int | None


def weight_files(folder: Path) -> list[Path]:
    """The files transformers would load weights from, sorted: safetensors if any, else pickled .bin."""
    safetensors = sorted(folder.glob("*.safetensors"))
    return safetensors or sorted(folder.glob("pytorch_model*.bin"))


def read_config(folder: Path) -> dict[str, Any]:
    """Parse config.json, explaining what is wrong when the folder is not a model."""
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        if (folder / "adapter_config.json").is_file():
            raise ModelImportError(
                f"{folder} holds a LoRA adapter, not a base model. Import the base model it was trained on instead."
            )
        raise ModelImportError(
            f"{folder} has no config.json, so it is not a Hugging Face model folder. Choose the "
            "folder that contains config.json next to the *.safetensors weights."
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelImportError(f"Could not read {config_file}: {exc}.") from exc
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModelImportError(
            f"{config_file} does not name a model_type, so transformers cannot tell which "
            "architecture it is. Download the model folder again."
        )
    return config


def inspect_folder(folder: Path) -> FolderInfo:
    """Validate a model folder (config, weights, tokenizer) and read its facts.

    Raises ModelImportError naming the first missing piece.
    """
    if not folder.is_dir():
        raise ModelImportError(f"{folder} is not a folder.")
    config = read_config(folder)
    weights = weight_files(folder)
    if not weights:
        raise ModelImportError(
            f"{folder} has no weights (*.safetensors or pytorch_model*.bin). If a download was "
            "interrupted, download the model again."
        )
    _check_shards(folder)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelImportError(
            f"{folder} has no tokenizer ({', '.join(TOKENIZER_FILES)}). Copy the tokenizer files "
            "from the model's original repository into the folder."
        )
    architectures = config.get("architectures") or [None]
    parameter_count, dtype = None, config.get("dtype") or config.get("torch_dtype")
    if weights[0].suffix == ".safetensors":
        parameter_count, dtype = _count_safetensors(weights)
    return FolderInfo(
        architecture=architectures[0],
        model_type=config["model_type"],
        parameter_count=parameter_count,
        dtype=dtype,
        context_length=context_length(config),
    )


def _check_shards(folder: Path) -> None:
    """Catch a half-downloaded sharded model, which would otherwise fail only at training time."""
    index_file = folder / SAFETENSORS_INDEX
    if not index_file.is_file():
        return
    try:
        shards = set(json.loads(index_file.read_text(encoding="utf-8"))["weight_map"].values())
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise ModelImportError(f"Could not read {index_file}: {exc!r}.") from exc
    missing = sorted(name for name in shards if not (folder / name).is_file())
    if missing:
        raise ModelImportError(f"{folder} is missing weight shards {', '.join(missing)}. Download the model again.")


def _count_safetensors(files: list[Path]) -> tuple[int, str | None]:
    """Exact parameter count and main dtype from the headers; tied weights are stored once, so counted once."""
    counts: Counter[str] = Counter()
    for path in files:
        for dtype, size in _tensor_sizes(path):
            counts[dtype] += size
    if not counts:
        return 0, None
    main = counts.most_common(1)[0][0]
    return sum(counts.values()), SAFETENSORS_DTYPES.get(main, main.lower())


def _tensor_sizes(path: Path) -> list[tuple[str, int]]:
    """(dtype, element count) of each tensor in a safetensors file."""
    try:
        return [
            (entry["dtype"], prod(entry["shape"]))
            for name, entry in read_header(path).items()
            if name != "__metadata__"
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelImportError(f"{path} is not a valid safetensors file ({exc!r}). Download the model again.") from exc


def read_header(path: Path) -> dict[str, Any]:
    """A safetensors header, read without the weights: 8 bytes of little-endian length, then that much JSON."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > MAX_HEADER_BYTES:
                raise ValueError(f"header of {length} bytes")
            header = json.loads(handle.read(length))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        return header
    except (OSError, ValueError, struct.error) as exc:
        raise ModelImportError(f"{path} is not a valid safetensors file ({exc!r}). Download the model again.") from exc


def context_length(config: dict[str, Any]) -> int | None:
    """The longest sequence the model was built for; multimodal configs keep it in text_config."""
    for source in (config, config.get("text_config") or {}):
        for key in CONTEXT_KEYS:
            if isinstance(value := source.get(key), int):
                return value
    return None
