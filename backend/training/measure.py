"""The measure job: a training configuration's real peak memory, to calibrate the estimator.

It builds the trainer exactly as a training run does (``sft.prepare``, ``sft.build_trainer``)
from ``measurement_plan``'s copy of the spec: ``MEASURE_STEPS`` optimizer steps, one warm-up
and the rest measured, each micro-batch at the worst case: rows of ``training.max_seq_length``
tokens cut to the plan's lengths and padded, so attention builds its mask as in an epoch's
worst batch. Nothing is saved: no checkpoint, no adapter.

On CUDA the peak reserved and allocated bytes after the warm-up (torch) and NVML's figure for
the process are filed against the estimate with ``record_measurement``, unless the allocator ran
short meanwhile (a shared or full GPU): that peak is reported, not filed. On the CPU there is
no GPU to calibrate: the peak RSS is reported and nothing is filed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
from dataclasses import replace
from typing import Any

import psutil
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from backend.core.atomic import write_text_atomic
from backend.core.events import Artifact, EventSink, Warn
from backend.core.layout import JobLayout
from backend.core.result import JobResult
from backend.core.spec import JobSpec
from backend.core.stop import StopRequest
from backend.core.telemetry import NVML
from backend.estimator.calibration import MEASURE_STEPS, calibration_path, measurement_plan, record_measurement
from backend.estimator.calibration import signature as config_signature
from backend.estimator.estimate import estimate
from backend.estimator.knobs import resolve
from backend.estimator.result import Estimate, GpuMemory
from backend.estimator.stack import INSTALLED
from backend.models.runtime import Runtime
from backend.models.shapes import shapes_from_folder
from backend.training.progress import EventCallback
from backend.training.sft import base_model_path, build_trainer, prepare

_GIB = 2**30


class WorstCaseBatches:
    """Cuts row i of every micro-batch to the plan's i-th length, then pads it like trl's own collator."""

    def __init__(self, pad_token_id: int, row_lengths: tuple[int, ...]) -> None:
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        self._pad = DataCollatorForLanguageModeling(pad_token_id=pad_token_id)
        self._lengths = row_lengths

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [
            {"input_ids": list(example["input_ids"])[:length], "labels": list(example["labels"])[:length]}
            for example, length in zip(examples, self._lengths, strict=False)
        ]
        batch: dict[str, Any] = self._pad(rows)
        return batch


def worst_case_rows(train_ds: Any, length: int, count: int) -> Any:
    """``count`` rows of exactly ``length`` real tokens, the training data laid end to end (repeated as needed).

    Every token counts in the loss, so no row can be all prompt: the memory of a step does not
    depend on which tokens are masked, and a row without labels would make the loss undefined.
    """
    from datasets import Dataset

    tokens = itertools.cycle(itertools.chain.from_iterable(train_ds["input_ids"]))
    rows = [list(itertools.islice(tokens, length)) for _ in range(count)]
    return Dataset.from_dict({"input_ids": rows, "labels": rows})


class PeakMemory(TrainerCallback):
    """The process's memory high-water marks; on CUDA the step peaks are counted from after the warm-up step."""

    def __init__(self, cuda: bool, device_uuid: str | None) -> None:
        self._cuda = cuda
        self._uuid = device_uuid
        self.rss = 0
        self.nvml: int | None = None
        self.warmup_allocated: int | None = None

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self.rss = max(self.rss, psutil.Process().memory_info().rss)
        if not self._cuda:
            return
        import torch

        used = NVML.process_memory(os.getpid(), self._uuid)
        if used is not None:
            self.nvml = max(self.nvml or 0, used)
        if state.global_step == 1:
            self.warmup_allocated = torch.cuda.max_memory_allocated()
            torch.cuda.reset_peak_memory_stats()

    def peak_rss(self) -> int:
        """The larger of the sampled RSS and the kernel's high-water mark, where the OS keeps one."""
        try:
            import resource
        except ImportError:  # Windows
            return self.rss
        scale = 1 if psutil.MACOS else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
        return max(self.rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


def run_measure(spec: JobSpec, layout: JobLayout, sink: EventSink, stop: StopRequest, runtime: Runtime) -> JobResult:
    """Run the plan's steps and report (and on CUDA record) the real peak; raises Cancelled when asked to stop early."""
    model_path = base_model_path(spec, sink)
    shapes = shapes_from_folder(model_path)
    gpu = _gpu(runtime)
    knobs = resolve(spec, shapes, gpu)
    plan = measurement_plan(spec, knobs)
    length, micro = max(plan.row_lengths), plan.spec.training.micro_batch_size
    sink.log(
        f"measuring {MEASURE_STEPS} steps (1 warm-up) of {micro} rows of {length} tokens, "
        f"the worst case of max_seq_length={spec.training.max_seq_length}; nothing is saved"
    )
    # Written before the steps, so an out-of-memory run keeps what was predicted, term by term.
    estimated = estimate(plan.spec, shapes, gpu, with_suggestions=False)
    write_text_atomic(layout.estimate, json.dumps(dataclasses.asdict(estimated), indent=1, default=str) + "\n")
    # The data as training reads it (and with the same advice); the plan's spec only changes the loop.
    prepared = prepare(spec, model_path, sink, stop, runtime)
    rows = worst_case_rows(prepared.train_ds, length, MEASURE_STEPS * micro)
    prepared = replace(prepared, train_ds=rows, eval_ds=None)
    # trl refuses a collator of ours with packing (padding-free batches); full rows are its worst case anyway.
    packing = plan.spec.training.packing
    collator = None if packing else WorstCaseBatches(prepared.tokenizer.pad_token_id, plan.row_lengths)
    callback = EventCallback(sink, stop, checkpoint_on_stop=False)
    peaks = PeakMemory(runtime.device == "cuda", _device_uuid() if runtime.device == "cuda" else None)
    trainer = build_trainer(
        plan.spec, layout, runtime, prepared, [callback, peaks], data_collator=collator, save_checkpoints=False
    )
    trainer.train()
    step = trainer.state.global_step
    if callback.stopped_early:
        return JobResult(status="cancelled", step=step)
    metrics = {"peak_rss_bytes": float(peaks.peak_rss()), "rows": float(micro), "tokens_per_row": float(length)}
    if gpu is None:
        sink.emit(
            Warn(
                code="no_gpu",
                message="GPU calibration needs a CUDA GPU: this measurement ran on the CPU, so it reports the peak "
                "RAM only and records no calibration.",
            )
        )
        sink.log(f"peak RAM of the process: {metrics['peak_rss_bytes'] / _GIB:.2f} GiB")
        return JobResult(status="succeeded", step=step, metrics=metrics)
    metrics |= _record(plan.spec, shapes, knobs, gpu, estimated, peaks, sink)
    if "measured_to_estimated" not in metrics:  # measured under memory pressure: nothing filed
        return JobResult(status="succeeded", step=step, metrics=metrics)
    sink.emit(Artifact(kind="report", path=str(calibration_path()), step=step))
    return JobResult(status="succeeded", step=step, metrics=metrics, output_path=calibration_path())


def _gpu(runtime: Runtime) -> GpuMemory | None:
    """The job's GPU as the estimator describes it; None on the CPU."""
    if runtime.device != "cuda" or runtime.memory_total_bytes is None:
        return None
    import torch

    return GpuMemory(
        name=runtime.device_name,
        total_bytes=runtime.memory_total_bytes,
        supports_bf16=torch.cuda.is_bf16_supported(),
        triton=importlib.util.find_spec("triton") is not None,
        compute_capability=torch.cuda.get_device_capability(),
    )


def _device_uuid() -> str | None:
    import torch

    uuid = getattr(torch.cuda.get_device_properties(0), "uuid", None)
    return str(uuid) if uuid is not None else None


def _record(
    spec: JobSpec, shapes: Any, knobs: Any, gpu: GpuMemory, predicted: Estimate, peaks: PeakMemory, sink: EventSink
) -> dict[str, float]:
    """File the measurement against the uncalibrated estimate of the same configuration; the numbers as metrics.

    A measurement during which the allocator ran short (it freed its cache and retried: the GPU
    was shared or full) has a peak lower than the configuration takes on its own; filed, it would
    lower later estimates towards a false "fits", so it is reported and not filed.
    """
    import torch

    reserved, allocated = torch.cuda.max_memory_reserved(), torch.cuda.max_memory_allocated()
    retries = int(torch.cuda.memory_stats().get("num_alloc_retries", 0))
    estimated = predicted.peak_reserved_bytes
    metrics = {
        "peak_reserved_bytes": float(reserved),
        "peak_allocated_bytes": float(allocated),
        "estimated_reserved_bytes": float(estimated),
        "estimated_allocated_bytes": float(predicted.peak_allocated_bytes),
        "alloc_retries": float(retries),
    }
    if peaks.warmup_allocated is not None:
        metrics["warmup_peak_allocated_bytes"] = float(peaks.warmup_allocated)
    if peaks.nvml is not None:
        metrics["nvml_process_bytes"] = float(peaks.nvml)
    nvml = f", NVML {peaks.nvml / _GIB:.2f} GiB for the process" if peaks.nvml else ", NVML figure unavailable"
    measured = (
        f"peak after the warm-up: reserved {reserved / _GIB:.2f} GiB, allocated {allocated / _GIB:.2f} GiB{nvml}; "
        f"estimated {estimated / _GIB:.2f} GiB reserved"
    )
    if retries:
        sink.emit(
            Warn(
                code="memory_pressure",
                message=f"The GPU ran short of memory during the measurement (PyTorch freed its cache and retried "
                f"{retries} times), so its peak is lower than this configuration takes with the GPU to itself; it "
                "was not recorded. Close other programs that use the GPU and measure again.",
            )
        )
        sink.log(f"{measured}; not recorded (memory pressure)")
        return metrics
    sig = config_signature(shapes, knobs, INSTALLED)
    measurement = record_measurement(gpu.name, sig, estimated, reserved, peaks.nvml)
    ratio = f"measured/estimated {measurement.ratio:.2f}"
    sink.log(f"{measured} ({ratio}); recorded for {gpu.name} in {calibration_path()}")
    return metrics | {"measured_to_estimated": measurement.ratio}
