"""One rule resolves "auto" precision: the estimator and the trainer agree for the same hardware facts."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from backend.core.precision import auto_dtype, resolve_precision
from backend.core.spec import JobSpec
from backend.estimator import GpuMemory, resolve, shapes_from_config
from backend.models import runtime
from backend.models.runtime import Runtime
from tests.model_configs import LLAMA_8B

FACTS = [("cuda", True), ("cuda", False), ("cpu", True), ("cpu", False)]
CHOICES = [
    (compute, precision)
    for compute, precision in itertools.product(
        ("auto", "bfloat16", "float16", "float32"), ("auto", "bf16", "fp16", "fp32")
    )
    if (compute, precision) != ("bfloat16", "fp16")  # the spec refuses two half formats
]


def test_auto_dtype_is_native_bf16_else_fp16_on_a_gpu_and_fp32_on_a_cpu() -> None:
    assert [auto_dtype(device, bf16) for device, bf16 in FACTS] == ["bfloat16", "float16", "bfloat16", "float32"]
    assert resolve_precision("cuda", False, "auto", "auto") == ("float16", "fp16")
    assert resolve_precision("cpu", False, "auto", "auto") == ("float32", "no")
    assert resolve_precision("cuda", True, "float32", "fp32") == ("float32", "no")
    assert resolve_precision("cuda", True, "auto", "fp16") == ("bfloat16", "fp16")


@pytest.mark.parametrize(("device", "bf16"), FACTS)
def test_the_estimator_and_the_trainer_resolve_the_same_precision(
    device: str, bf16: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: device == "cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda _i: SimpleNamespace(name="gpu", total_memory=1))
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: bf16)
    shapes = shapes_from_config(LLAMA_8B)
    gpu = GpuMemory("gpu", 1, supports_bf16=bf16, kind=device)  # type: ignore[arg-type]
    for compute, precision in CHOICES:
        spec = JobSpec.from_dict(
            {
                "data": {"path": "train.jsonl"},
                "quantization": {"compute_dtype": compute},
                "training": {"precision": precision},
            }
        )
        trainer = Runtime.detect(spec)
        knobs = resolve(spec, shapes, gpu)
        assert (knobs.compute_dtype, knobs.mixed_precision) == (trainer.compute_dtype, trainer.mixed_precision)
        assert trainer.device == device
