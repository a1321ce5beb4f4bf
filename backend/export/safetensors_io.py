"""Reading a model's safetensors one tensor at a time, and writing sharded safetensors the same way.

Shards are planned from the tensor sizes before anything is written, so file names are
final from the start and at most one shard's tensors are held in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING

from backend.export.errors import ExportError
from backend.models.hf_folder import SAFETENSORS_INDEX, read_header, weight_files

if TYPE_CHECKING:
    import torch

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
DEFAULT_SHARD_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class TensorEntry:
    """A tensor as stored: which file, its safetensors dtype name and its shape."""

    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return prod(self.shape)


def list_tensors(folder: Path) -> list[TensorEntry]:
    """Every tensor of a model folder, in file order (the order ``save_pretrained`` wrote them)."""
    files = weight_files(folder)
    if not files or files[0].suffix != ".safetensors":
        raise ExportError(
            f"{folder} has no .safetensors weights; merge and export read safetensors only.",
            hint="Load the model with transformers and save_pretrained() it once to convert it.",
        )
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        files = [folder / name for name in shards]
    entries = []
    for path in files:
        # The header alone: safetensors' safe_open(framework="pt") imports torch, and the window's pre-flight
        # checks, which run in its own process, list tensors too.
        header = read_header(path)
        by_offset = sorted((e["data_offsets"][0], n) for n, e in header.items() if n != "__metadata__")
        entries += [TensorEntry(n, path, header[n]["dtype"], tuple(header[n]["shape"])) for _, n in by_offset]
    return entries


def weight_dtype(entries: list[TensorEntry]) -> str | None:
    """The safetensors dtype (``BF16``, ``F16``, ``F32`` ...) every weight matrix is stored in; None when they
    differ. Vectors (norms, biases) are left out: models often keep them in float32 beside 16-bit matrices."""
    stored = {entry.dtype for entry in entries if len(entry.shape) >= 2}
    return next(iter(stored)) if len(stored) == 1 else None


def iter_tensors(entries: list[TensorEntry]) -> Iterator[tuple[TensorEntry, torch.Tensor]]:
    """Load each tensor on its own, keeping one file open at a time."""
    from safetensors import safe_open

    by_file: dict[Path, list[TensorEntry]] = {}
    for entry in entries:
        by_file.setdefault(entry.file, []).append(entry)
    for path, group in by_file.items():
        with safe_open(path, framework="pt") as handle:
            for entry in group:
                yield entry, handle.get_tensor(entry.name)


class ShardWriter:
    """Writes tensors, in a fixed order, into ``model-0000i-of-0000n.safetensors`` files of bounded size."""

    def __init__(self, folder: Path, sizes: list[tuple[str, int]], max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> None:
        self._folder = folder
        self._shards: list[list[str]] = [[]]
        shard_bytes = 0
        for name, nbytes in sizes:
            if self._shards[-1] and shard_bytes + nbytes > max_shard_bytes:
                self._shards.append([])
                shard_bytes = 0
            self._shards[-1].append(name)
            shard_bytes += nbytes
        count = len(self._shards)
        self._files = (
            ["model.safetensors"]
            if count == 1
            else [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]
        )
        self._shard_of = {name: i for i, names in enumerate(self._shards) for name in names}
        self._pending: dict[str, torch.Tensor] = {}
        self._written = 0
        self._total_size = sum(nbytes for _, nbytes in sizes)

    def add(self, name: str, tensor: torch.Tensor) -> None:
        """Queue one tensor; its shard is written as soon as the shard's last tensor arrives."""
        from safetensors.torch import save_file

        shard = self._shards[self._written]
        if name != shard[len(self._pending)]:
            raise ValueError(f"tensor {name} written out of the planned order")
        self._pending[name] = tensor.contiguous()
        if len(self._pending) == len(shard):
            save_file(self._pending, self._folder / self._files[self._written], metadata={"format": "pt"})
            self._pending = {}
            self._written += 1

    def finish(self) -> list[str]:
        """Write the index when there are several shards; returns the file names written."""
        if self._written != len(self._shards):
            raise ValueError("not every planned tensor was written")
        if len(self._files) > 1:
            weight_map = {name: self._files[i] for name, i in self._shard_of.items()}
            index = {"metadata": {"total_size": self._total_size}, "weight_map": weight_map}
            (self._folder / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        return list(self._files)
