"""Peak bytes of tensor storages alive during a block of torch code, on any device (CPU included).

A TorchDispatchMode sees every operator's outputs; each new storage is tracked through a
weak reference until it is freed. This is what the CUDA caching allocator's "allocated"
counter reports, without rounding, so CPU runs can check the estimator's activation model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveBytes(TorchDispatchMode):
    """Track bytes of storages created inside the mode; ``existing`` tensors (weights, inputs) are ignored."""

    def __init__(self, existing: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self.ignored = {t.untyped_storage().data_ptr() for t in existing}
        self.live: dict[int, tuple[int, int]] = {}
        self.current = 0
        self.peak = 0

    def _sweep(self) -> None:
        for key in [k for k, (ref, _) in self.live.items() if torch.UntypedStorage._expired(ref)]:
            ref, size = self.live.pop(key)
            torch.UntypedStorage._free_weak_ref(ref)
            self.current -= size

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        self._sweep()
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                storage = tensor.untyped_storage()
                key = storage.data_ptr()
                if key and key not in self.live and key not in self.ignored:
                    self.live[key] = (storage._weak_ref(), storage.nbytes())
                    self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        return out

    def settle(self) -> int:
        """Bytes alive now, after freeing what has died since the last operator."""
        self._sweep()
        return self.current

    def restart_peak(self) -> None:
        self.peak = self.settle()
