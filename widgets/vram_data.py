"""What the VRAM gauge shows, as plain data: the app converts the backend estimator's result to these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """The estimator's judgement of the estimated peak against the GPU's free memory."""

    FITS = "Fits"
    TIGHT = "Tight"
    WILL_NOT_FIT = "Will not fit"


@dataclass(frozen=True)
class MemoryTerm:
    """One part of the estimated peak, e.g. ("Activations", 3.1 GiB, "What each layer keeps …", 5)."""

    label: str
    bytes: int
    explanation: str
    color: int
    """Its colour, ``chart_colors.series_color(color)``: fixed per kind of term, so a term keeps its colour
    while others come and go as the settings change."""


@dataclass(frozen=True)
class Suggestion:
    """A change to the settings, said in a few words, and the peak it would give."""

    text: str
    peak_bytes: int
    verdict: Verdict | None = None


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as NVML reports it; free memory is what other programs leave."""

    name: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True, kw_only=True)
class GaugeData:
    """An estimate for the selected GPU. ``terms`` add up to the peak; ``suggestions`` come best first."""

    terms: Sequence[MemoryTerm]
    verdict: Verdict
    suggestions: Sequence[Suggestion] = ()
    ram_load_bytes: int
    ram_merge_bytes: int
    disk_bytes: int

    @property
    def peak_bytes(self) -> int:
        return sum(term.bytes for term in self.terms)
