"""Nothing a worker runs reaches a hub on its own: models are imported before a job starts.

Two libraries would at run time. transformers can swap layers for kernels from the Hugging
Face Hub (``USE_HUB_KERNELS``), and bitsandbytes, when it is imported on a CPU with
AVX512-BF16 (``bitsandbytes/backends/cpu/ops.py``), asks the ``kernels`` package for a 4-bit
matmul kernel from ``kernels-community`` with no setting of its own to stop it; ``kernels``
then looks up the publisher online and, without network, logs a long warning about
"publisher trust status". The worker turns both off before it imports either, and
bitsandbytes falls back to its own CPU kernel, as it does where ``kernels`` is not installed.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

WORKER_ENV = {
    "USE_HUB_KERNELS": "NO",  # transformers: no hub kernels for its layers
    "DISABLE_KERNEL_MAPPING": "1",  # kernels: no default layer-to-hub-kernel mapping
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub: no usage reports
}
"""Settings of the libraries a worker runs; read when those libraries are imported or used."""


class HubKernelRefused(RuntimeError):
    """What ``kernels.get_kernel`` raises in a worker: callers treat it as "kernel not available"."""


def close_hub_kernels() -> None:
    """Apply ``WORKER_ENV`` and make ``kernels.get_kernel`` refuse at once, before anything imports them."""
    os.environ.update(WORKER_ENV)
    try:
        kernels = importlib.import_module("kernels")
    except ImportError:
        return
    _refuse_hub_kernels(kernels)


def _refuse_hub_kernels(module: ModuleType) -> None:
    def get_kernel(repo_id: str, *args: object, **kwargs: object) -> ModuleType:
        raise HubKernelRefused(f"LoRA Studio's workers load no kernel from a hub at run time ({repo_id})")

    module.get_kernel = get_kernel  # type: ignore[attr-defined]
