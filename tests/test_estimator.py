"""The VRAM estimator: exact counts against real models, the CPU activation check, verdicts,
suggestions, calibration and the hub path (against a local Hub)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.core.events import GpuSample
from backend.core.spec import JobSpec
from backend.estimator import (
    CalibrationStore,
    DataStats,
    GpuMemory,
    estimate,
    measurement_plan,
    record_measurement,
    resolve,
    shapes_from_config,
    shapes_from_folder,
    shapes_from_hub,
    signature,
)
from backend.estimator.gpus import gpu_memory
from backend.estimator.knobs import Knobs
from backend.estimator.memory import base_weights, step_memory
from backend.estimator.quant import bytes_per_param_4bit, linear_4bit_bytes
from backend.estimator.stack import INSTALLED
from backend.estimator.workspaces import cublas_workspaces
from tests.hub_server import LocalHub
from tests.import_check import run_fresh
from tests.model_configs import LLAMA_8B

GIB = 1024**3
RTX_4090 = GpuMemory("NVIDIA GeForce RTX 4090", 24 * GIB, 23 * GIB)


def _spec(**training: object) -> JobSpec:
    return JobSpec.from_dict({"data": {"path": "train.jsonl"}, "training": training})


def test_import_leaves_torch_unloaded() -> None:
    assert run_fresh("import backend.estimator").loaded == []


def test_4bit_bytes_per_param_is_derived() -> None:
    assert bytes_per_param_4bit(True) == pytest.approx(0.516, abs=5e-4)
    assert bytes_per_param_4bit(False) == 0.5625
    # A 4096x4096 weight: nibbles, 8-bit absmax per 64, fp32 absmax per 256 blocks, offset, nested map, code.
    assert linear_4bit_bytes(4096 * 4096, True) == 8_388_608 + 262_144 + 4 * 1024 + 4 + 1024 + 64


# -- exact counts against instantiated models ---------------------------------------


def test_parameter_and_byte_counts_match_the_loaded_model(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    shapes = shapes_from_folder(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16)
    params = list(model.parameters())  # tied weights appear once
    assert shapes.parameter_count == sum(p.numel() for p in params)
    assert shapes.stored_bytes == sum(p.numel() * p.element_size() for p in params)
    linears = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and not n.endswith("lm_head")]
    assert shapes.linear_params == sum(m.weight.numel() for m in linears)
    assert shapes.tied_embeddings == (model.get_output_embeddings().weight is model.get_input_embeddings().weight)
    ends = {id(m.weight): m.weight.numel() for m in (model.get_input_embeddings(), model.get_output_embeddings())}
    assert shapes.embedding_head_params == sum(ends.values())


@pytest.mark.parametrize("quant,double_quant", [("nf4", True), ("nf4", False), ("fp4", True)])
def test_4bit_base_term_matches_bitsandbytes_storage(tiny_model: Path, quant: str, double_quant: bool) -> None:
    import torch
    from bitsandbytes.nn import Params4bit
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant,
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        tiny_model, dtype=torch.bfloat16, device_map={"": "cpu"}, quantization_config=config
    )
    stored = 0
    for param in model.parameters():
        if isinstance(param, Params4bit):
            state = param.quant_state
            stored += param.numel() * param.element_size() + state.absmax.numel() * state.absmax.element_size()
            stored += state.code.numel() * state.code.element_size()
            if state.nested:
                stored += (state.state2.absmax.numel() + state.offset.numel() + state.state2.code.numel()) * 4
    shapes = shapes_from_folder(tiny_model)
    knobs = resolve(
        JobSpec.from_dict({"data": {"path": "x"}, "quantization": {"mode": quant, "double_quant": double_quant}}),
        shapes,
        None,
    )
    quantized, other = base_weights(shapes, knobs, INSTALLED)
    assert quantized == stored
    # transformers counts a Params4bit by its packed bytes only; the rest are the bf16 layers and
    # the rotary buffers (a few fp32 frequencies, not weights).
    packed = sum(p.numel() * p.element_size() for p in model.parameters() if isinstance(p, Params4bit))
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    assert model.get_memory_footprint() == packed + other + buffers


# -- activations against autograd on the CPU ----------------------------------------

CPU_CASES = [
    ("llama", False, 0.0, 1, 128, "all_linear"),
    ("llama", True, 0.05, 2, 64, "attention"),
    ("qwen2", False, 0.0, 2, 96, "attention_mlp"),
    ("mistral", False, 0.05, 3, 64, "attention_mlp"),
    ("gemma", True, 0.0, 1, 128, "all_linear"),
    ("gemma2", False, 0.0, 1, 128, "all_linear"),
    ("gemma3", True, 0.1, 2, 64, "all_linear"),
]


@pytest.mark.parametrize("arch,checkpointing,dropout,batch,length,targets", CPU_CASES)
def test_activation_model_matches_autograd_on_cpu(
    tiny_model_dirs: dict[str, Path],
    arch: str,
    checkpointing: bool,
    dropout: float,
    batch: int,
    length: int,
    targets: str,
) -> None:
    """Build the model as sft.py does (4-bit NF4, LoRA, trl's bf16 cast and fused head), run one
    step under bf16 autocast and compare the bytes autograd keeps, and the peaks, with the model.

    Tolerances: saved activations -5%..+10% (CPU dropout keeps a noise tensor per element and
    the estimate rounds up there); peaks -3%..+5% (dominated by the loss tile, which is exact).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from trl.trainer.utils import add_fused_lm_head

    from backend.training.targets import resolve_targets
    from tests.live_bytes import LiveBytes

    folder = tiny_model_dirs[arch]
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.bfloat16, device_map={"": "cpu"}, quantization_config=quant
    )
    names = resolve_targets(model, targets)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules=names, task_type="CAUSAL_LM")
    )
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.to(torch.bfloat16)
    model.train()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 500, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[-1, -1] = 0 if batch > 1 else 1  # a padded batch, as the collator makes
    tracker = LiveBytes([*model.parameters(), *model.buffers(), ids, mask])
    with tracker:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids, attention_mask=mask, labels=ids, fused_lm_head=True)
        saved, forward_peak = tracker.settle(), tracker.peak
        tracker.restart_peak()
        out.loss.backward()
        backward_peak = tracker.peak

    shapes = shapes_from_folder(folder)
    knobs = Knobs(
        quant="nf4",
        double_quant=True,
        compute_dtype="bfloat16",
        mixed_precision="bf16",
        lora_r=8,
        lora_dropout=dropout,
        use_dora=False,
        targets=targets,
        modules_to_save=(),
        micro_batch=batch,
        grad_accum=1,
        max_len=length,
        packing=False,
        checkpointing=checkpointing,
        optimizer="adamw_torch",
        attention="eager" if shapes.attn_softcap else "sdpa",
        has_eval=False,
        keep_checkpoints=1,
    )
    step = step_memory(shapes, knobs, INSTALLED, GpuMemory("cpu", 0, kind="cpu", triton=False), length)
    resident = step.persistent  # weights, adapter, gradients and optimizer state are outside the tracker
    predicted_saved = step.saved_layers + step.saved_other + step.head_saved
    predicted_forward = step.phases["end of the forward pass"] - resident
    predicted_backward = (
        max(step.phases["loss backward"], step.phases["first layer's backward"]) - resident + step.gradients
    )
    print(
        f"{arch} saved {saved} vs {predicted_saved}; peaks {forward_peak}/{backward_peak} vs {predicted_forward}/{predicted_backward}"
    )
    assert 0.95 * saved <= predicted_saved <= 1.10 * saved
    assert 0.97 * forward_peak <= predicted_forward <= 1.05 * forward_peak
    assert 0.97 * backward_peak <= predicted_backward <= 1.05 * backward_peak


# -- the estimate as the form sees it -------------------------------------------------


def test_terms_add_up_and_verdicts_follow_free_memory() -> None:
    shapes = shapes_from_config(LLAMA_8B)
    result = estimate(_spec(micro_batch_size=1, max_seq_length=1024), shapes, RTX_4090)
    assert sum(t.bytes for t in result.terms) == result.total_bytes
    assert result.verdict == "fits"
    assert 5 * GIB < result.total_bytes < 12 * GIB
    busy = GpuMemory(RTX_4090.name, RTX_4090.total_bytes, free_bytes=result.total_bytes - 1)
    assert estimate(_spec(micro_batch_size=1, max_seq_length=1024), shapes, busy).verdict == "wont_fit"
    assert estimate(_spec(), shapes, None).verdict == "unknown"


def test_cublas_workspaces_follow_the_gpu_generation() -> None:
    """torch takes cuBLAS's workspace from its allocator: 32 MiB on compute capability 9.0, 8 MiB 128 KiB
    on every other, plus cuBLASLt's 1 MiB, once for the forward thread and once for autograd's backward thread."""
    shapes = shapes_from_config(LLAMA_8B)
    spec = _spec(micro_batch_size=1, max_seq_length=1024)
    ada = GpuMemory("NVIDIA GeForce RTX 4090", 24 * GIB, compute_capability=(8, 9))
    hopper = GpuMemory("NVIDIA H100 80GB HBM3", 80 * GIB, compute_capability=(9, 0))
    blackwell = GpuMemory("NVIDIA GeForce RTX 5090", 32 * GIB, compute_capability=(12, 0))
    sizes = {gpu.name: estimate(spec, shapes, gpu).term("workspaces").bytes for gpu in (ada, hopper, blackwell)}
    older = 2 * (8 * 1024**2 + 128 * 1024 + 1024**2)
    assert sizes == {ada.name: older, hopper.name: 2 * 33 * 1024**2, blackwell.name: older}
    unknown = estimate(spec, shapes, GpuMemory("a GPU NVML could not name", 24 * GIB)).term("workspaces")
    assert unknown.bytes == sizes[hopper.name]  # the larger size when the generation is unknown
    cpu = GpuMemory("cpu", 24 * GIB, kind="cpu")
    assert "workspaces" not in {t.key for t in estimate(spec, shapes, cpu).terms}


@pytest.mark.parametrize(
    ("environ", "mib"),
    [
        ({"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}, 2 * (32 + 1)),  # the setting torch's determinism docs give
        ({"CUBLAS_WORKSPACE_CONFIG": ":16:8"}, 2 * (0.125 + 0.125)),  # cuBLASLt's capped at cuBLAS's size
        ({"CUBLAS_WORKSPACE_CONFIG": ":16:8", "TORCH_CUBLASLT_UNIFIED_WORKSPACE": "0"}, 2 * (0.125 + 1)),
        ({"CUBLAS_WORKSPACE_CONFIG": "garbage"}, 2 * (8.125 + 1)),  # torch warns and keeps the default
        ({"CUBLASLT_WORKSPACE_SIZE": "4096"}, 2 * (8.125 + 4)),
        ({"CUBLASLT_WORKSPACE_SIZE": "lots"}, 2 * (8.125 + 1)),
        ({"TORCH_CUBLASLT_UNIFIED_WORKSPACE": "1"}, 2 * 8.125),  # cuBLASLt borrows cuBLAS's workspace
    ],
)
def test_cublas_workspaces_follow_the_environment(environ: dict[str, str], mib: float) -> None:
    """The environment variables torch reads change the workspaces; the worker inherits them."""
    ada = GpuMemory("NVIDIA GeForce RTX 4090", 24 * GIB, compute_capability=(8, 9))
    assert cublas_workspaces(ada, environ) == int(mib * 1024**2)


def test_nvml_readings_say_the_compute_capability() -> None:
    samples = [
        GpuSample(index=0, name="Tesla T4", memory_used_bytes=0, memory_total_bytes=16 * GIB, compute_capability="7.5"),
        GpuSample(
            index=1, name="RTX 4090", memory_used_bytes=GIB, memory_total_bytes=24 * GIB, compute_capability="8.9"
        ),
        GpuSample(index=2, name="old driver", memory_used_bytes=0, memory_total_bytes=8 * GIB),
    ]
    t4, ada, unknown = gpu_memory(samples)
    assert (t4.compute_capability, t4.supports_bf16) == ((7, 5), False)
    assert (ada.compute_capability, ada.supports_bf16, ada.free_bytes) == ((8, 9), True, 23 * GIB)
    assert (unknown.compute_capability, unknown.supports_bf16) == (None, True)


def test_suggestions_keep_the_effective_batch_and_lower_the_peak() -> None:
    shapes = shapes_from_config(LLAMA_8B)
    spec = _spec(micro_batch_size=8, gradient_accumulation_steps=2, max_seq_length=4096, gradient_checkpointing=False)
    result = estimate(spec, shapes, RTX_4090, DataStats(p99_tokens=900, max_tokens=4096))
    assert result.verdict == "wont_fit"
    assert result.suggestions
    assert result.suggestions[0].verdict == "fits"
    for suggestion in result.suggestions:
        assert suggestion.peak_bytes < result.total_bytes
    halving = next(s for s in result.suggestions if "training.micro_batch_size" in s.changes)
    micro, accum = halving.changes["training.micro_batch_size"], halving.changes["training.gradient_accumulation_steps"]
    assert micro * accum == 16 and halving.keeps_effective_batch
    titles = [s.title for s in result.suggestions]
    assert "Turn on gradient checkpointing" in titles
    assert any("900" in t for t in titles)


def test_packing_with_sdpa_shows_its_block_mask() -> None:
    """Padding-free packing flattens the micro-batch, so SDPA's mask covers all of its tokens squared."""
    shapes = shapes_from_config(LLAMA_8B)
    plain = estimate(_spec(micro_batch_size=4, max_seq_length=2048), shapes, RTX_4090, with_suggestions=False)
    packed = estimate(
        _spec(micro_batch_size=4, max_seq_length=2048, packing=True), shapes, RTX_4090, with_suggestions=False
    )
    assert packed.total_bytes > plain.total_bytes + (4 * 2048) ** 2


def test_host_needs() -> None:
    from backend.export.check_ram import check_ram_bytes

    shapes = shapes_from_config(LLAMA_8B)
    host = estimate(_spec(), shapes, RTX_4090).host
    assert host.disk_merge_bytes == 2 * shapes.parameter_count
    largest = max(t.numel for t in shapes.tensors)
    least, float32 = (check_ram_bytes(shapes.parameter_count, "model", p, 0, largest) for p in ("layerwise", "float32"))
    assert least < host.ram_merge_bytes < least + GIB < float32, "the merge job's check, layer by layer at least"
    assert 0 < host.disk_checkpoints_bytes < GIB


def test_host_merge_ram_is_what_the_merge_job_plans(tiny_llama: Path, tmp_path: Path, report_ram) -> None:
    from backend.export.check_ram import check_ram_bytes
    from backend.export.merge import plan_merge
    from tests.adapters import make_adapter

    adapter = make_adapter(tiny_llama, tmp_path / "adapter", r=8)
    params = shapes_from_folder(tiny_llama).parameter_count
    extra = 2 * (adapter / "adapter_model.safetensors").stat().st_size
    largest = max(t.numel for t in shapes_from_folder(tiny_llama).tensors)
    low, high = (check_ram_bytes(params, "model", p, extra, largest) for p in ("layerwise", "float32"))
    report_ram(int((low + high) / 2 / 0.8))
    plan = plan_merge(adapter)
    assert plan.check.precision == "layerwise", "the least the merge job runs with"
    spec = JobSpec.from_dict({"data": {"path": "t.jsonl"}, "lora": {"r": 8, "target_modules": "all_linear"}})
    host = estimate(spec, shapes_from_folder(tiny_llama)).host
    assert host.ram_merge_bytes == pytest.approx(plan.ram_bytes, rel=0.01)


# -- calibration --------------------------------------------------------------------------


def test_calibration_only_raises_and_prefers_the_same_configuration(tmp_path: Path) -> None:
    shapes = shapes_from_config(LLAMA_8B)
    spec = _spec(micro_batch_size=2, max_seq_length=2048)
    store = CalibrationStore(tmp_path / "vram_calibration.json")
    base = estimate(spec, shapes, RTX_4090, calibration=store)
    assert base.calibration is None
    sig = signature(shapes, resolve(spec, shapes, RTX_4090), INSTALLED)
    record_measurement(RTX_4090.name, sig, base.peak_reserved_bytes, int(base.peak_reserved_bytes * 0.9), store=store)
    lower = estimate(spec, shapes, RTX_4090, calibration=CalibrationStore(store.path))
    assert lower.total_bytes == base.total_bytes  # a measurement below the model never lowers it
    record_measurement(
        RTX_4090.name,
        sig,
        base.peak_reserved_bytes,
        int(base.peak_reserved_bytes * 1.2),
        int(base.peak_reserved_bytes * 1.2) + 900 * 1024**2,
        store=store,
    )
    raised = estimate(spec, shapes, RTX_4090, calibration=CalibrationStore(store.path))
    assert raised.calibration is not None and raised.calibration.exact
    assert raised.calibration.factor == pytest.approx(1.2, rel=1e-3)
    assert raised.term("cuda_context").bytes == 900 * 1024**2
    other = estimate(_spec(micro_batch_size=1), shapes, RTX_4090, calibration=CalibrationStore(store.path))
    assert other.calibration is not None and not other.calibration.exact
    assert other.calibration.factor == pytest.approx(1.2, rel=1e-3)
    elsewhere = estimate(spec, shapes, GpuMemory("Tesla T4", 15 * GIB), calibration=CalibrationStore(store.path))
    assert elsewhere.calibration is None


def test_a_damaged_calibration_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "vram_calibration.json"
    path.write_text("{not json", encoding="utf-8")
    assert CalibrationStore(path).entries == []


def test_measurement_plan_runs_the_worst_case_briefly() -> None:
    shapes = shapes_from_config(LLAMA_8B)
    spec = _spec(micro_batch_size=4, gradient_accumulation_steps=8, max_seq_length=2048)
    plan = measurement_plan(spec, resolve(spec, shapes, RTX_4090), DataStats(max_tokens=1500))
    assert plan.row_lengths == (1500, 1500, 1500, 1499)
    assert plan.spec.training.max_steps >= 2 and plan.spec.training.gradient_accumulation_steps == 1
    assert plan.spec.data.eval_split == 0.0


# -- a hub model, from a local Hub ------------------------------------------------------------


def test_hub_shapes_come_from_config_and_headers_only(local_hub: LocalHub, tiny_llama: Path) -> None:
    """The same shapes as the folder's, read with range requests: the weights are never downloaded."""
    local_hub.add("someone/tiny-llama", tiny_llama)
    shapes = shapes_from_hub("someone/tiny-llama")
    folder = shapes_from_folder(tiny_llama)
    assert shapes.config == folder.config
    assert sorted(shapes.tensors, key=lambda t: t.name) == sorted(folder.tensors, key=lambda t: t.name)
    assert shapes.parameter_count == folder.parameter_count
    downloads = [r for r in local_hub.requests if r.method == "GET" and r.path.startswith("/cdn/")]
    assert downloads and all(r.range for r in downloads), "the weights file is only read in byte ranges"


def test_an_unchecked_library_version_is_said(monkeypatch) -> None:
    from importlib import metadata

    from backend.estimator.stack import CHECKED_VERSIONS, version_drift

    checked = {name: minors[-1] + ".0" for name, minors in CHECKED_VERSIONS.items()}
    monkeypatch.setattr(metadata, "version", lambda name: checked[name])
    version_drift.cache_clear()
    assert version_drift() == ()
    monkeypatch.setattr(metadata, "version", lambda name: {**checked, "transformers": "5.30.1"}[name])
    version_drift.cache_clear()
    (drift,) = version_drift()
    assert drift.startswith("transformers 5.30.1") and "5.23" in drift
    version_drift.cache_clear()


@pytest.mark.parametrize(
    ("quant", "tokens", "optimizer", "checkpointing", "phase", "temporary"),
    [
        ("nf4", 16, "adamw_torch", True, "optimizer step", "optimizer_step"),
        ("nf4", 16, "adamw_torch", False, "first layer's backward", "backward"),
        ("none", 16, "adamw_8bit", False, "loss backward", "loss"),
        ("int8", 2048, "adamw_torch", True, None, None),
    ],
)
def test_the_breakdown_is_the_peak_moment(
    quant: str, tokens: int, optimizer: str, checkpointing: bool, phase: str | None, temporary: str | None
) -> None:
    """Whichever moment of the step is the peak, the terms are what is alive then and add up to the total."""
    spec = JobSpec.from_dict(
        {
            "data": {"path": "train.jsonl"},
            "quantization": {"mode": quant},
            "training": {
                "micro_batch_size": 1,
                "max_seq_length": tokens,
                "optimizer": optimizer,
                "gradient_checkpointing": checkpointing,
            },
        }
    )
    result = estimate(spec, shapes_from_config(LLAMA_8B), RTX_4090, with_suggestions=False)
    assert sum(t.bytes for t in result.terms) == result.total_bytes
    if phase is not None:
        assert result.peak_phase == phase
        assert result.term(temporary) is not None and result.term(temporary).bytes > 0
    if quant == "int8":
        assert "8 bits" in result.term("base_weights").explanation
