"""Local calibration: what the model predicted against what a GPU really used.

The worker's ``measure`` mode runs a job's configuration for a few steps at its
worst-case length (``measurement_plan``) and reports ``torch.cuda.max_memory_reserved``
and NVML's figure for the process; ``record_measurement`` files them, per GPU name and
configuration signature, in ``data_home()/vram_calibration.json``.

Later estimates on that GPU are scaled by the measured/predicted ratio of the same
configuration when one exists, else by the largest ratio measured on that GPU. The
policy is conservative: a ratio below 1 is never applied, so calibration only ever
raises an estimate; the measured CUDA context replaces the default only when larger.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from backend.core.atomic import write_text_atomic
from backend.core.paths import data_home
from backend.core.spec import JobSpec
from backend.estimator.knobs import Knobs, sequence_length
from backend.estimator.result import Calibration, DataStats
from backend.estimator.stack import Stack
from backend.models.shapes import ModelShapes

CALIBRATION_FILE = "vram_calibration.json"
FORMAT = 1
MEASURE_STEPS = 4
"""Steps a measurement runs: optimizer state appears at the first step, so the peak needs at least two."""


def calibration_path() -> Path:
    return data_home() / CALIBRATION_FILE


def signature(shapes: ModelShapes, knobs: Knobs, stack: Stack) -> str:
    """A short hash of everything that shapes the memory of a step (model, settings, library stack)."""
    parts = [
        shapes.model_type,
        shapes.hidden,
        shapes.layers,
        shapes.vocab,
        shapes.parameter_count,
        knobs.quant,
        knobs.double_quant,
        knobs.compute_dtype,
        knobs.mixed_precision,
        knobs.lora_r,
        knobs.lora_dropout > 0,
        knobs.use_dora,
        knobs.targets,
        knobs.modules_to_save,
        knobs.micro_batch,
        knobs.max_len,
        knobs.packing,
        knobs.checkpointing,
        knobs.optimizer,
        knobs.attention,
        stack.name,
        *([knobs.objective] if knobs.objective != "sft" else []),  # SFT's signatures predate objectives
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Measurement:
    """One measured run against its estimate."""

    gpu: str
    signature: str
    estimated_reserved: int
    measured_reserved: int
    measured_process: int | None
    """NVML's memory for the process: reserved plus the CUDA context."""
    recorded_at: str = ""

    @property
    def ratio(self) -> float:
        return self.measured_reserved / self.estimated_reserved if self.estimated_reserved else 1.0

    @property
    def context(self) -> int | None:
        return self.measured_process - self.measured_reserved if self.measured_process else None


class CalibrationStore:
    """The calibration file, read once and written atomically on each record."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or calibration_path()
        self.entries: list[Measurement] = self._read()

    def _read(self) -> list[Measurement]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Measurement(**row) for row in data.get("measurements", [])]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError, AttributeError):
            # A damaged file must not break the form; the next record rewrites it.
            return []

    def record(self, measurement: Measurement) -> None:
        stamped = replace(measurement, recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.entries.append(stamped)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"format": FORMAT, "measurements": [vars(m) for m in self.entries]}
        write_text_atomic(self.path, json.dumps(body, indent=2) + "\n")

    def lookup(self, gpu: str, sig: str, default_context: int) -> tuple[Calibration | None, int]:
        """(scale factor, CUDA context) for a configuration on ``gpu``; never below the uncalibrated model."""
        on_gpu = [m for m in self.entries if m.gpu == gpu]
        if not on_gpu:
            return None, default_context
        same = [m for m in on_gpu if m.signature == sig]
        ratios = [same[-1].ratio] if same else [m.ratio for m in on_gpu]
        contexts = [c for c in (m.context for m in on_gpu) if c is not None]
        context = max([default_context, *contexts])
        return Calibration(factor=max(1.0, *ratios), samples=len(same or on_gpu), exact=bool(same)), context


def record_measurement(
    gpu: str,
    sig: str,
    estimated_reserved: int,
    measured_reserved: int,
    measured_process: int | None = None,
    store: CalibrationStore | None = None,
) -> Measurement:
    """File one measurement (from the worker's measure mode) for later estimates on that GPU."""
    measurement = Measurement(gpu, sig, estimated_reserved, measured_reserved, measured_process)
    (store or CalibrationStore()).record(measurement)
    return measurement


@dataclass(frozen=True)
class MeasurementPlan:
    """What the measure mode runs: the job's spec cut to a few steps, and the rows of its worst batch."""

    spec: JobSpec
    row_lengths: tuple[int, ...]
    """Token lengths of one micro-batch: every row at the worst-case length, except that without
    packing one row is a token shorter, so the batch is padded and attention builds its mask,
    as in a real epoch's worst batch."""


def measurement_plan(spec: JobSpec, knobs: Knobs, data: DataStats | None = None) -> MeasurementPlan:
    """The spec and batch shape for measuring ``spec``'s worst case: no evaluation, no checkpoints."""
    length = sequence_length(knobs, data)
    rows = [length] * knobs.micro_batch
    if not knobs.packing and len(rows) > 1:
        rows[-1] = length - 1
    measured = spec.model_copy(
        update={
            "training": spec.training.model_copy(
                update={"max_steps": MEASURE_STEPS, "gradient_accumulation_steps": 1, "epochs": 1.0}
            ),
            "data": spec.data.model_copy(update={"eval_split": 0.0, "eval_path": None}),
            "schedule": spec.schedule.model_copy(update={"save_every_steps": 10**9, "eval_every_steps": None}),
        }
    )
    return MeasurementPlan(spec=measured, row_lengths=tuple(rows))
