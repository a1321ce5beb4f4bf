"""An out-of-memory job's message names the estimator's smallest change that fits."""

from __future__ import annotations

from pathlib import Path

from backend.core.events import DeviceInfo, Error, EventSink, Started
from backend.core.layout import JobLayout
from backend.core.spec import JobSpec
from backend.estimator.oom_advice import advise_out_of_memory

OOM = Error(error_type="out_of_memory", message="The job ran out of GPU memory.")


def job_on(tmp_path: Path, model: Path, device: DeviceInfo, **training: object) -> JobLayout:
    layout = JobLayout.new(tmp_path, "oom")
    JobSpec.from_dict(
        {"base_model": str(model), "data": {"path": "d.jsonl"}, "training": training, "quantization": {"mode": "none"}}
    ).save(layout.spec)
    sink = EventSink(layout.events, None)
    sink.emit(Started(job_kind="train", pid=1, versions={}, device=device))
    sink.close()
    return layout


def test_a_job_too_big_for_its_gpu_gets_a_change_that_fits(tmp_path: Path, tiny_llama: Path) -> None:
    big = {"micro_batch_size": 64, "max_seq_length": 4096, "gradient_checkpointing": False}
    roomy = DeviceInfo(kind="cuda", name="Mid GPU", memory_total_bytes=8 * 2**30)
    advice = advise_out_of_memory(job_on(tmp_path, tiny_llama, roomy, **big), OOM)
    assert advice is not None and not advice.startswith("No single change")
    peak = float(advice.split("estimated peak ")[1].split(" GiB")[0])
    assert peak < 8

    tiny = DeviceInfo(kind="cuda", name="Tiny GPU", memory_total_bytes=600 * 2**20)
    advice = advise_out_of_memory(job_on(tmp_path, tiny_llama, tiny, **big), OOM)
    assert advice is not None and advice.startswith("No single change fits this GPU; the closest is:")


def test_no_advice_without_a_gpu_or_a_readable_spec(tmp_path: Path, tiny_llama: Path) -> None:
    cpu = job_on(tmp_path, tiny_llama, DeviceInfo(kind="cpu", name="x86_64"))
    assert advise_out_of_memory(cpu, OOM) is None
    gpu = job_on(tmp_path, tiny_llama, DeviceInfo(kind="cuda", name="G", memory_total_bytes=2**34))
    gpu.spec.write_text("lora: {r: -1}\n")
    assert advise_out_of_memory(gpu, OOM) is None
