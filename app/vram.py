"""The estimator's result and GPUs as the VRAM gauge's plain data."""

from __future__ import annotations

from collections.abc import Sequence

from backend.estimator import Estimate, GpuMemory
from widgets.vram_data import GaugeData, GpuInfo, MemoryTerm, Suggestion, Verdict

_VERDICTS = {"fits": Verdict.FITS, "tight": Verdict.TIGHT, "wont_fit": Verdict.WILL_NOT_FIT}
_PAGEABLE = " Paged: bitsandbytes moves it to system RAM when the GPU runs short."
TERM_COLORS = {
    "base_weights": 0,
    "unquantized": 1,
    "adapter": 2,
    "gradients": 3,
    "optimizer": 4,
    "activations": 5,
    "optimizer_step": 5,  # the moments of the step are alternatives: one of these three is there at a time
    "evaluation": 5,
    "loss": 6,  # with the activations, the loss or one layer's backward
    "backward": 6,
    "workspaces": 7,
    "allocator": 8,
    "cuda_context": 9,
}
"""Each estimator term's colour slot, the same in every estimate, so the legend keeps its colours while terms
come and go; terms present together never share one (``tests/qt/test_vram_gauge.py`` sweeps the estimates)."""
_OTHER_TERM = 7  # a term added to the estimator and not listed yet: the colour of the rarest one


def gpu_info(gpus: Sequence[GpuMemory]) -> list[GpuInfo]:
    return [
        GpuInfo(gpu.name, gpu.total_bytes, gpu.free_bytes if gpu.free_bytes is not None else gpu.total_bytes)
        for gpu in gpus
    ]


def gauge_data(estimate: Estimate) -> GaugeData:
    """The gauge's view of an estimate. Without a GPU the verdict is unknown and the gauge shows none."""
    return GaugeData(
        terms=[
            MemoryTerm(
                term.label,
                term.bytes,
                term.explanation + (_PAGEABLE if term.pageable else ""),
                TERM_COLORS.get(term.key, _OTHER_TERM),
            )
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
