"""What an estimate returns: plain frozen dataclasses the GUI gauge renders as they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["fits", "tight", "wont_fit", "unknown"]
TermKind = Literal["weights", "training_state", "activations", "temporary", "overhead"]


@dataclass(frozen=True)
class GpuMemory:
    """The GPU a job would run on: NVML's name, total and currently free bytes.

    ``triton`` says whether trl's loss kernels can run as Triton kernels (Linux CUDA
    builds of torch ship Triton; Windows builds do not), which changes the loss's
    temporaries. ``kind="cpu"`` exists to check the model against CPU runs in tests; there
    ``supports_bf16`` says whether the CPU has native bf16 (``backend.models.runtime.cpu_has_bf16``),
    which decides the "auto" dtype as it does for the trainer (``backend.core.precision``).
    """

    name: str
    total_bytes: int
    free_bytes: int | None = None
    supports_bf16: bool = True
    triton: bool = True
    kind: Literal["cuda", "cpu"] = "cuda"
    compute_capability: tuple[int, int] | None = None
    """(major, minor) as NVML reports it; decides the size of cuBLAS's workspace. None when unknown."""


@dataclass(frozen=True)
class DataStats:
    """Token lengths of the tokenized training examples (chat template included)."""

    p99_tokens: int | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Term:
    """One part of the peak, in bytes, with a label and one plain sentence for the breakdown."""

    key: str
    label: str
    bytes: int
    explanation: str
    kind: TermKind
    pageable: bool = False
    """Paged optimizer state: bitsandbytes moves it to CPU RAM when the GPU runs short."""


@dataclass(frozen=True)
class HostNeeds:
    """RAM and disk the job needs besides the GPU."""

    ram_load_bytes: int
    ram_merge_bytes: int
    disk_checkpoints_bytes: int
    disk_merge_bytes: int
    disk_export_bytes: int


@dataclass(frozen=True)
class Suggestion:
    """A change that lowers the peak, the spec fields it sets, and the estimate it leads to."""

    title: str
    detail: str
    changes: dict[str, object]
    """Dotted spec paths to new values, e.g. {"training.micro_batch_size": 2}."""
    keeps_effective_batch: bool
    peak_bytes: int
    verdict: Verdict


@dataclass(frozen=True)
class Calibration:
    """How local measurements on this GPU changed the estimate."""

    factor: float
    samples: int
    exact: bool
    """True when a measurement of this very configuration exists; False for the GPU-wide factor."""


@dataclass(frozen=True)
class Estimate:
    """The estimated GPU memory peak of one training job, and what to do about it.

    ``terms`` add up to ``total_bytes``: the memory that must be free on the GPU.
    """

    terms: tuple[Term, ...]
    peak_allocated_bytes: int
    peak_reserved_bytes: int
    total_bytes: int
    peak_phase: str
    eval_peak_bytes: int
    tokens_per_micro_batch: int
    verdict: Verdict
    verdict_reason: str
    gpu: GpuMemory | None
    host: HostNeeds
    suggestions: tuple[Suggestion, ...] = ()
    calibration: Calibration | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def term(self, key: str) -> Term | None:
        return next((t for t in self.terms if t.key == key), None)
