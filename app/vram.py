"""The estimator's result and GPUs as the VRAM gauge's plain data."""

from __future__ import annotations

from collections.abc import Sequence

from backend.estimator import Estimate, GpuMemory
from widgets.vram_data import GaugeData, GpuInfo, MemoryTerm, Suggestion, Verdict

_VERDICTS = {"fits": Verdict.FITS, "tight": Verdict.TIGHT, "wont_fit": Verdict.WILL_NOT_FIT}
_PAGEABLE = " Paged: bitsandbytes moves it to system RAM when the GPU runs short."


def gpu_info(gpus: Sequence[GpuMemory]) -> list[GpuInfo]:
    return [
        GpuInfo(gpu.name, gpu.total_bytes, gpu.free_bytes if gpu.free_bytes is not None else gpu.total_bytes)
        for gpu in gpus
    ]


def gauge_data(estimate: Estimate) -> GaugeData:
    """The gauge's view of an estimate. Without a GPU the verdict is unknown and the gauge shows none."""
    return GaugeData(
        terms=[
            MemoryTerm(term.label, term.bytes, term.explanation + (_PAGEABLE if term.pageable else ""))
            for term in estimate.terms
        ],
        verdict=_VERDICTS.get(estimate.verdict, Verdict.FITS),
        suggestions=[
            Suggestion(f"{s.title}\n{s.detail}", s.peak_bytes, _VERDICTS.get(s.verdict)) for s in estimate.suggestions
        ],
        ram_load_bytes=estimate.host.ram_load_bytes,
        ram_merge_bytes=estimate.host.ram_merge_bytes,
        disk_bytes=estimate.host.disk_checkpoints_bytes
        + estimate.host.disk_merge_bytes
        + estimate.host.disk_export_bytes,
    )
