"""Seconds per optimizer step of the real training path (worker process, SFTTrainer), on this machine.

    python bench/train_step.py [--steps 8] [--out bench/results/train_step.md]

Runs the worker on a tiny Llama (built like the tests', on their colour task) and on
the built-in SmolLM2-135M-Instruct (on the sample dataset), 4-bit NF4 and unquantized,
with gradient checkpointing, and reads the step times from the
``progress`` events' timestamps: the median of the steps after the first two
(which pay one-off costs). Each configuration runs alone, so run the benchmark on an
otherwise idle machine: two processes each spinning two OpenMP threads on two cores
slow small matrix products by up to a hundred times.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.core.events import Done, Progress
from backend.core.layout import JobLayout
from backend.core.paths import assets_dir
from backend.core.spec import JobSpec
from backend.jobs.launch import start_worker, stream

SAMPLE = assets_dir() / "datasets" / "support_triage" / "train.jsonl"


def run_config(model: str, data: Path, quant: str, steps: int, batch: int, length: int, jobs: Path) -> dict:
    spec = JobSpec.from_dict(
        {
            "name": "bench",
            "base_model": model,
            "quantization": {"mode": quant},
            "training": {
                "max_steps": steps,
                "micro_batch_size": batch,
                "gradient_accumulation_steps": 1,
                "max_seq_length": length,
            },
            "data": {"path": str(data), "eval_split": 0.0},
            "schedule": {"save_every_steps": 10_000},
        }
    )
    layout = JobLayout.new(jobs, "bench")
    spec.save(layout.spec)
    started = time.monotonic()
    process = start_worker(layout)
    stamps: list[float] = []
    tokens: list[float] = []
    done: Done | None = None
    for event in stream(process):
        if isinstance(event, Progress):
            stamps.append(event.time)
            if event.tokens_per_second:
                tokens.append(event.tokens_per_second)
        elif isinstance(event, Done):
            done = event
    process.wait()
    if done is None or done.status != "succeeded":
        raise RuntimeError(f"benchmark run failed; see {layout.log}")
    gaps = [b - a for a, b in itertools.pairwise(stamps)][2:]
    return {
        "model": Path(model).name if "/" in model else model,
        "quant": quant,
        "batch": batch,
        "length": length,
        "step_s": statistics.median(gaps),
        "tokens_s": tokens[-1] if tokens else 0.0,
        "wall_s": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_step.md")
    args = parser.parse_args()

    from tests.datasets import write_colour_task
    from tests.tiny_models import build_tiny_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_model("llama", Path(tmp) / "tiny-llama")
        colours = write_colour_task(Path(tmp) / "colours.jsonl", 200)
        # The tiny model on the tests' colour task; SmolLM2 on the demo's sample (examples of 150-230 tokens).
        for model, data, batch, length in ((str(tiny), colours, 4, 64), ("default", SAMPLE, 4, 256)):
            for quant in ("nf4", "none"):
                row = run_config(model, data, quant, args.steps, batch, length, Path(tmp) / "jobs")
                print(row, flush=True)
                rows.append(row)

    lines = [
        "# Training step time on the CPU",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"date {time.strftime('%Y-%m-%d')}; `python bench/train_step.py --steps {args.steps}`.",
        "Worker process, trl SFTTrainer, LoRA r=16 on all linear layers, gradient checkpointing on, "
        "AdamW, micro-batch as given, gradient accumulation 1, assistant-only loss, spec defaults otherwise "
        "(bf16 compute and autocast on this AVX512-BF16 CPU).",
        f"1-minute load average when the table was written: {os.getloadavg()[0]:.1f} "
        "(other processes share the 2 cores; see the note in the script's docstring).",
        "",
        "| model | base | micro-batch x max length | s/step (median) | tokens/s | run wall time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['quant']} | {r['batch']} x {r['length']} | {r['step_s']:.2f} | "
            f"{r['tokens_s']:.0f} | {r['wall_s']:.0f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
