"""Estimated vs measured GPU memory of the real training path, over a grid; needs a CUDA GPU.

    python bench/vram_accuracy.py [--steps 4] [--sizes 135m,0.5b,1.5b] [--out bench/results/vram_accuracy]

Grid: model sizes (Llama-architecture models with random weights, built locally, since a
GPU machine may have no network; memory does not depend on the weights' values) x base
quantization (nf4, none) x micro-batch x length (1x2048, 4x512, 8x1024) x gradient
checkpointing (on, off). Each configuration runs ``backend.worker.run_job`` (the worker's
own code path: SFTTrainer, peft, bitsandbytes) in a fresh child process for a few steps at
its worst-case length (every row full, one row a token short so the batch is padded, as
``measurement_plan`` builds it), then reports ``torch.cuda.max_memory_reserved`` and
``max_memory_allocated`` and NVML's figure for the process. The parent compares them with
``backend.estimator.estimate`` and writes ``OUT.md`` and ``OUT.json``.

Bar (issue 4): mean absolute error <= 5% of measured peak reserved, and no under-prediction
worse than 5%. Refuses to run without CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = {
    # name: hidden, layers, heads, kv heads, intermediate, vocab (SmolLM2-135M, Qwen2.5-0.5B-like, Qwen2.5-1.5B-like)
    "135m": (576, 30, 9, 3, 1536, 49152),
    "0.5b": (896, 24, 14, 2, 4864, 151936),
    "1.5b": (1536, 28, 12, 2, 8960, 151936),
}
SHAPES = ((1, 2048), (4, 512), (8, 1024))
QUANTS = ("nf4", "none")
WORDS = ("the", "model", "learns", "to", "answer", "questions", "about", "memory", "and", "training", "steps")


def build_model(name: str, folder: Path) -> Path:
    """A random-weight Llama of the given size with the tiny test tokenizer, saved as safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from tests.tiny_models import build_tiny_tokenizer

    hidden, layers, heads, kv, inter, vocab = SIZES[name]
    tokenizer = build_tiny_tokenizer("llama")
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        intermediate_size=inter,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_dataset(path: Path, rows: int, tokens: int) -> None:
    """Conversations far longer than ``tokens`` (cut to max length), so every row is full."""
    reply = " ".join(WORDS[i % len(WORDS)] for i in range(tokens * 2))
    with path.open("w", encoding="utf-8") as out:
        for _ in range(rows):
            messages = [{"role": "user", "content": "Explain."}, {"role": "assistant", "content": reply}]
            out.write(json.dumps({"messages": messages}) + "\n")


def child(config_path: Path) -> None:
    """Run one configuration through the worker's code path and print its measured peaks as JSON."""
    import pynvml
    import torch

    from backend.jobs.layout import JobLayout
    from backend.worker import run_job

    config = json.loads(config_path.read_text())
    layout = JobLayout(Path(config["job_dir"]))
    torch.cuda.reset_peak_memory_stats()
    status = run_job(layout, resume=False, stream=None)
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    process = next(
        (p.usedGpuMemory for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid == os.getpid()), None
    )
    print(
        "RESULT "
        + json.dumps(
            {
                "status": status,
                "reserved": torch.cuda.max_memory_reserved(),
                "allocated": torch.cuda.max_memory_allocated(),
                "process": process,
                "gpu": torch.cuda.get_device_name(0),
                "total": torch.cuda.get_device_properties(0).total_memory,
            }
        )
    )


def run_point(model_dir: Path, quant: str, batch: int, length: int, checkpointing: bool, steps: int, tmp: Path) -> dict:
    from backend.estimator import DataStats, GpuMemory, estimate, measurement_plan, resolve, shapes_from_folder
    from backend.jobs.layout import JobLayout
    from backend.spec import JobSpec

    data = tmp / f"data-{length}.jsonl"
    if not data.exists():
        write_dataset(data, rows=64, tokens=length)
    spec = JobSpec.from_dict(
        {
            "name": "vram",
            "base_model": str(model_dir),
            "quantization": {"mode": quant},
            "training": {
                "micro_batch_size": batch,
                "max_seq_length": length,
                "gradient_checkpointing": checkpointing,
                "max_steps": steps,
            },
            "data": {"path": str(data), "eval_split": 0.0},
        }
    )
    shapes = shapes_from_folder(model_dir)
    stats = DataStats(max_tokens=length)
    plan = measurement_plan(spec, resolve(spec, shapes, None), stats)
    layout = JobLayout.new(tmp / "jobs", "vram")
    plan.spec.save(layout.spec)
    config = tmp / "point.json"
    config.write_text(json.dumps({"job_dir": str(layout.root)}))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(config)], capture_output=True, text=True, timeout=3600
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    measured = json.loads(line[len("RESULT ") :]) if line else {"status": None}
    gpu = GpuMemory(measured.get("gpu", "cuda"), measured.get("total", 0))
    predicted = estimate(plan.spec, shapes, gpu, stats, with_suggestions=False)
    return {
        "model": model_dir.name,
        "quant": quant,
        "batch": batch,
        "length": length,
        "checkpointing": checkpointing,
        "predicted_reserved": predicted.peak_reserved_bytes,
        "predicted_allocated": predicted.peak_allocated_bytes,
        "predicted_total": predicted.total_bytes,
        "measured_reserved": measured.get("reserved"),
        "measured_allocated": measured.get("allocated"),
        "measured_process": measured.get("process"),
        "oom": "out_of_memory" in done.stdout or "CUDA out of memory" in done.stderr,
        "status": measured.get("status"),
        "gpu": measured.get("gpu"),
        "wall_s": round(time.monotonic() - started, 1),
    }


def report(rows: list[dict], out: Path, argv: list[str]) -> None:
    ok = [r for r in rows if r["measured_reserved"] and r["status"] == 0]
    errors = [100 * (r["predicted_reserved"] / r["measured_reserved"] - 1) for r in ok]
    mib = 1024**2
    lines = [
        "# VRAM estimator accuracy on a GPU",
        "",
        f"GPU: {ok[0]['gpu'] if ok else 'n/a'}; {platform.platform()}; date {time.strftime('%Y-%m-%d')}; "
        f"`python bench/vram_accuracy.py {' '.join(argv)}`.",
        f"Points measured: {len(ok)} of {len(rows)}. Mean absolute error of peak reserved: "
        f"{statistics.mean(abs(e) for e in errors):.1f}%; worst under-prediction: {min(errors, default=0):.1f}% "
        "(bar: mean <= 5%, no under-prediction worse than -5%).",
        "",
        "| model | base | batch x length | checkpointing | predicted reserved MiB | measured MiB | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        measured = r["measured_reserved"]
        failed = "OOM" if r["oom"] else "failed"
        error = f"{100 * (r['predicted_reserved'] / measured - 1):+.1f}%" if measured else failed
        lines.append(
            f"| {r['model']} | {r['quant']} | {r['batch']} x {r['length']} | {'on' if r['checkpointing'] else 'off'} | "
            f"{r['predicted_reserved'] / mib:,.0f} | {measured / mib if measured else 0:,.0f} | {error} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out.with_suffix('.md')} and .json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "vram_accuracy")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench/vram_accuracy.py measures GPU memory and needs a CUDA GPU; none is visible here.")
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for size in args.sizes.split(","):
            model_dir = build_model(size, tmp / f"llama-{size}")
            for quant in QUANTS:
                for batch, length in SHAPES:
                    for checkpointing in (True, False):
                        row = run_point(model_dir, quant, batch, length, checkpointing, args.steps, tmp)
                        print(row, flush=True)
                        rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report(rows, args.out, sys.argv[1:])


if __name__ == "__main__":
    main()
