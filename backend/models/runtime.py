"""What the machine can do, and how the spec's "auto" choices resolve on it.

One place decides device, dtypes and quantization settings, so the events, the
adapter record and the trainer all agree on what really ran.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from backend.core.events import DeviceInfo
from backend.core.precision import Device, resolve_precision
from backend.core.spec import JobSpec

_PACKAGES = ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("lora-studio", *_PACKAGES):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def accelerator_versions() -> dict[str, str]:
    """CUDA as torch was built for it, and the NVIDIA driver as NVML reports it."""
    import torch

    from backend.core.telemetry import NVML

    return {
        "CUDA (torch)": torch.version.cuda or "none (CPU build)",
        "NVIDIA driver": NVML.driver_version() or "none found",
    }


def cpu_has_bf16() -> bool:
    import torch

    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe and probe())


def device_facts() -> tuple[Device, bool]:
    """The device torch will run on, and whether it has native bfloat16: what ``resolve_precision`` needs."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.cuda.is_bf16_supported()
    return "cpu", cpu_has_bf16()


@dataclass
class Runtime:
    device: str
    device_name: str
    memory_total_bytes: int | None
    compute_dtype: str  # torch dtype name: bfloat16, float16, float32
    mixed_precision: str  # bf16, fp16 or no
    quant_mode: str
    double_quant: bool
    versions: dict[str, str] = field(default_factory=library_versions)
    trainer_overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def detect(cls, spec: JobSpec) -> Runtime:
        import torch

        device, bf16 = device_facts()
        if device == "cuda":
            props = torch.cuda.get_device_properties(0)
            name, total = props.name, int(props.total_memory)
        else:
            name, total = platform.processor() or platform.machine(), None
        compute, precision = resolve_precision(device, bf16, spec.quantization.compute_dtype, spec.training.precision)
        return cls(
            device=device,
            device_name=name,
            memory_total_bytes=total,
            compute_dtype=compute,
            mixed_precision=precision,
            quant_mode=spec.quantization.mode,
            double_quant=spec.quantization.double_quant,
        )

    def device_info(self) -> DeviceInfo:
        return DeviceInfo(kind=self.device, name=self.device_name, memory_total_bytes=self.memory_total_bytes)

    def describe(self) -> str:
        quant = {"nf4": "4-bit NF4", "fp4": "4-bit FP4", "int8": "8-bit", "none": "unquantized"}[self.quant_mode]
        return f"{quant} base, {self.compute_dtype} compute on {self.device}"

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AutoModelForCausalLM.from_pretrained``."""
        import torch

        dtype = getattr(torch, self.compute_dtype)
        kwargs: dict[str, Any] = {"dtype": dtype, "device_map": {"": 0 if self.device == "cuda" else "cpu"}}
        if self.quant_mode in ("nf4", "fp4"):
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=self.quant_mode,
                bnb_4bit_use_double_quant=self.double_quant,
                bnb_4bit_compute_dtype=dtype,
            )
        elif self.quant_mode == "int8":
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        return kwargs
