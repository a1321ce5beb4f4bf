"""cuBLAS's scratch memory, which torch takes from its caching allocator and keeps.

torch gives each (cuBLAS handle, stream) a cuBLAS workspace and a cuBLASLt workspace the
first time a matrix multiply runs there; handles are per thread. Sizes and the environment
variables that change them follow aten/src/ATen/cuda/CublasHandlePool.cpp
(``parseChosenWorkspaceSize``, ``getCUDABlasLtWorkspaceSize``, ``getCUDABlasLtWorkspace``).
The worker inherits the environment of the process that starts the queue, so the
variables are read from this process's environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from backend.estimator.result import GpuMemory

CUBLAS_WORKSPACE_SM90 = 32 * 1024**2
"""The default on compute capability 9.0 exactly (H100, H200): ``4096 * 8`` KiB."""
CUBLAS_WORKSPACE_OTHER = 8 * 1024**2 + 128 * 1024
"""The default everywhere else, Blackwell (10.x, 12.x) included: ``:4096:2:16:8``."""
CUBLASLT_WORKSPACE = 1024**2
"""cuBLASLt's default (``CUBLASLT_WORKSPACE_SIZE``, 1024 KiB)."""
BLAS_THREADS = 2
"""Threads that run matrix multiplies: the forward on the Python thread, the backward on
autograd's device thread. Each gets its own handle, so its own workspaces."""
_CONFIG_PAIR = re.compile(r":([0-9]+):([0-9]+)")


def cublas_workspaces(gpu: GpuMemory | None, environ: Mapping[str, str] = os.environ) -> int:
    """Bytes of cuBLAS and cuBLASLt workspaces a training step keeps on ``gpu``.

    An unknown GPU gets the H100's larger default: a false "fits" costs more than a false "tight".
    """
    capability = gpu.compute_capability if gpu is not None else None
    default = CUBLAS_WORKSPACE_SM90 if capability in (None, (9, 0)) else CUBLAS_WORKSPACE_OTHER
    cublas = _cublas_size(environ.get("CUBLAS_WORKSPACE_CONFIG"), default)
    return BLAS_THREADS * (cublas + _cublaslt_size(environ, cublas))


def _cublas_size(config: str | None, default: int) -> int:
    """``CUBLAS_WORKSPACE_CONFIG`` is a list of ``:SIZE:COUNT`` pairs, SIZE in KiB; their sum is
    one workspace. torch warns and keeps the default when nothing in it parses."""
    pairs = _CONFIG_PAIR.findall(config or "")
    if not pairs:
        return default
    return sum(int(size) * 1024 * int(count) for size, count in pairs)


def _cublaslt_size(environ: Mapping[str, str], cublas: int) -> int:
    """cuBLASLt's workspace: none of its own when ``TORCH_CUBLASLT_UNIFIED_WORKSPACE=1`` (it
    borrows cuBLAS's), else ``CUBLASLT_WORKSPACE_SIZE`` KiB, capped at the cuBLAS workspace
    unless the variable is ``0``."""
    unified = environ.get("TORCH_CUBLASLT_UNIFIED_WORKSPACE")
    if unified == "1":
        return 0
    digits = re.match(r"\s*\+?([0-9]+)", environ.get("CUBLASLT_WORKSPACE_SIZE", ""))
    size = int(digits.group(1)) * 1024 if digits else CUBLASLT_WORKSPACE
    return size if unified == "0" else min(size, cublas)
