"""System telemetry: CPU and RAM through psutil, GPUs through NVML.

Sampled on a timer rather than per training step, so a step that takes minutes
(a large model, a slow CPU) still shows a live machine. No torch here: the GUI's
status bar uses the same functions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psutil

from backend.core.events import GpuSample, Telemetry


class Nvml:
    """A lazily initialised NVML session; no GPU or no driver gives an empty list."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: bool | None = None

    def _init(self) -> bool:
        if self._ready is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                self._ready = True
            except Exception:  # noqa: BLE001 - no driver, no library, no GPU: all mean "none"
                self._ready = False
        return self._ready

    def driver_version(self) -> str | None:
        with self._lock:
            if not self._init():
                return None
            import pynvml

            return _text(pynvml.nvmlSystemGetDriverVersion())

    def gpus(self) -> list[GpuSample]:
        with self._lock:
            if not self._init():
                return []
            import pynvml

            return [_gpu_sample(index) for index in range(pynvml.nvmlDeviceGetCount())]

    def process_memory(self, pid: int, device_uuid: str | None = None) -> int | None:
        """GPU memory NVML charges to ``pid`` (PyTorch's reserve plus the CUDA context); None when it cannot say.

        Inside a container NVML reports host pids, so a GPU named by ``device_uuid`` that runs exactly
        one process is taken to run ours.
        """
        with self._lock:
            if not self._init():
                return None
            import pynvml

            wanted = device_uuid.removeprefix("GPU-") if device_uuid else None
            try:
                for index in range(pynvml.nvmlDeviceGetCount()):
                    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                    if wanted and _text(pynvml.nvmlDeviceGetUUID(handle)).removeprefix("GPU-") != wanted:
                        continue
                    processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
                    mine = [p.usedGpuMemory for p in processes if p.pid == pid and p.usedGpuMemory]
                    if mine:
                        return int(sum(mine))
                    if wanted and len(processes) == 1 and processes[0].usedGpuMemory:
                        return int(processes[0].usedGpuMemory)
            except pynvml.NVMLError:
                return None  # a board or driver that does not list processes
            return None


def _gpu_sample(index: int) -> GpuSample:
    import pynvml

    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return GpuSample(
        index=index,
        name=_text(pynvml.nvmlDeviceGetName(handle)),
        utilization_percent=_optional(lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
        memory_used_bytes=int(memory.used),
        memory_total_bytes=int(memory.total),
        temperature_c=_optional(lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
        power_w=_optional(lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),
        compute_capability=_optional_text(lambda: "{}.{}".format(*pynvml.nvmlDeviceGetCudaComputeCapability(handle))),
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _optional(read: Callable[[], float]) -> float | None:
    """Some boards do not report temperature or power; that is not an error."""
    try:
        return float(read())
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends
        return None


def _optional_text(read: Callable[[], str]) -> str | None:
    """As ``_optional``, for a reading that is text (a compute capability such as "8.9")."""
    try:
        return read()
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends
        return None


NVML = Nvml()


def sample(process: psutil.Process | None = None) -> Telemetry:
    """One telemetry reading of the machine and of ``process`` (default: this one)."""
    process = process or psutil.Process()
    memory = psutil.virtual_memory()
    return Telemetry(
        cpu_percent=psutil.cpu_percent(interval=None),
        ram_used_bytes=int(memory.total - memory.available),
        ram_total_bytes=int(memory.total),
        process_rss_bytes=int(process.memory_info().rss),
        gpus=NVML.gpus(),
    )


class Sampler(threading.Thread):
    """Calls ``emit`` with a reading every ``interval`` seconds until stopped."""

    def __init__(self, emit: Callable[[Telemetry], None], interval: float = 2.0) -> None:
        super().__init__(name="telemetry", daemon=True)
        self._emit = emit
        self._interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        psutil.cpu_percent(interval=None)  # the first call only primes the counter
        while not self._stop_event.wait(self._interval):
            self._emit(sample())

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
