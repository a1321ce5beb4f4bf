"""GPU memory estimation for a training job, before it starts, without torch.

The form calls ``estimate`` on every edit: shapes come from safetensors headers and
config.json (``shapes_from_folder``, ``shapes_from_hub``), the memory model from the
installed libraries' behaviour (``stack``), and the result is a typed breakdown with a
verdict, ranked suggestions and host (RAM, disk) needs. docs/estimator.md explains
every term and constant.
"""

from backend.estimator.calibration import (
    CalibrationStore,
    Measurement,
    MeasurementPlan,
    measurement_plan,
    record_measurement,
    signature,
)
from backend.estimator.estimate import estimate
from backend.estimator.knobs import Knobs, resolve
from backend.estimator.result import (
    Calibration,
    DataStats,
    Estimate,
    GpuMemory,
    HostNeeds,
    Suggestion,
    Term,
    Verdict,
)
from backend.estimator.stack import INSTALLED, Stack
from backend.models.shapes import ModelShapes, Tensor, shapes_from_config, shapes_from_folder, shapes_from_hub

__all__ = [
    "INSTALLED",
    "Calibration",
    "CalibrationStore",
    "DataStats",
    "Estimate",
    "GpuMemory",
    "HostNeeds",
    "Knobs",
    "Measurement",
    "MeasurementPlan",
    "ModelShapes",
    "Stack",
    "Suggestion",
    "Tensor",
    "Term",
    "Verdict",
    "estimate",
    "measurement_plan",
    "record_measurement",
    "resolve",
    "shapes_from_config",
    "shapes_from_folder",
    "shapes_from_hub",
    "signature",
]
