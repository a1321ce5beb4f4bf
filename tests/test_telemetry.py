"""NVML readings become GPU samples (with a stand-in pynvml: no GPU needed)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from backend.core.telemetry import Nvml


class _NotSupported(Exception):
    pass


def _fake_pynvml(power_supported: bool) -> SimpleNamespace:
    def power(handle: int) -> int:
        if not power_supported:
            raise _NotSupported
        return 71_500

    return SimpleNamespace(
        NVMLError=_NotSupported,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetMemoryInfo=lambda handle: SimpleNamespace(used=2**30, total=24 * 2**30),
        nvmlDeviceGetName=lambda handle: b"NVIDIA GeForce RTX 4090" if handle == 0 else "Tesla T4",
        nvmlDeviceGetUtilizationRates=lambda handle: SimpleNamespace(gpu=37),
        nvmlDeviceGetTemperature=lambda handle, sensor: 61,
        nvmlDeviceGetPowerUsage=power,
        nvmlDeviceGetCudaComputeCapability=lambda handle: (8, 9) if handle == 0 else (7, 5),
    )


@pytest.mark.parametrize("power_supported", [True, False])
def test_gpu_samples_carry_every_reading(monkeypatch: pytest.MonkeyPatch, power_supported: bool) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(power_supported))
    ada, t4 = Nvml().gpus()
    assert (ada.index, ada.name, t4.name) == (0, "NVIDIA GeForce RTX 4090", "Tesla T4")
    assert (ada.utilization_percent, ada.temperature_c) == (37.0, 61.0)
    assert (ada.memory_used_bytes, ada.memory_total_bytes) == (2**30, 24 * 2**30)
    assert ada.power_w == (71.5 if power_supported else None)
    # The compute capability is text ("8.9"), which the estimator parses; it was once read as a float.
    assert (ada.compute_capability, t4.compute_capability) == ("8.9", "7.5")
