"""Estimated vs measured GPU memory over a grid, through the worker's own measure job; needs a CUDA GPU.

    python bench/vram_accuracy.py [--sizes 135m,0.5b,1.5b] [--parallel 4] [--resume] [--out bench/results/vram_accuracy]

Grid (issue 4): model sizes (Llama-architecture models with random weights, built locally: a
GPU machine may have no network, and memory does not depend on the weights' values) x base
quantization (nf4, none) x micro-batch x length (1x2048, 4x512, 8x1024) x gradient
checkpointing (on, off). Each point is a queued-job folder of ``kind: measure`` run by the real
worker (``python -m backend.jobs.worker``), the code path of "Measure on this GPU": a few steps at
the worst-case length, then torch's peak reserved and allocated bytes, NVML's figure for the
process and the estimate the worker made for that GPU. This script writes ``OUT.md`` and
``OUT.json``, the JSON after every point, so ``--resume`` goes on where a stopped run ended.

Points run ``--parallel`` at a time on the one GPU, packed so that their estimated peaks fit in
``--budget`` of its memory (torch's peaks are per process, so neighbours do not change them).
A point that measured under memory pressure (the allocator had to free its cache and retry)
is run again alone.

Bar: mean absolute error <= 5% of measured peak reserved, no under-prediction worse than 5%.
Refuses to run without CUDA unless ``--allow-cpu`` (which checks the plumbing on a tiny model;
the CPU has no GPU peaks to compare). How to run it on a GPU machine without network: docs/estimator.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.estimator import GpuMemory  # noqa: E402 - after the repo is on the path
from backend.estimator.gpus import machine_gpus  # noqa: E402

SIZES = {
    # name: hidden, layers, heads, kv heads, intermediate, vocab
    "tiny": (64, 2, 4, 2, 128, 512),  # for --allow-cpu: the plumbing, not the numbers
    "135m": (576, 30, 9, 3, 1536, 49152),  # SmolLM2-135M
    "0.5b": (896, 24, 14, 2, 4864, 151936),  # Qwen2.5-0.5B-like
    "1.5b": (1536, 28, 12, 2, 8960, 151936),  # Qwen2.5-1.5B-like
    "8b": (4096, 32, 32, 8, 14336, 128256),  # Llama-3-8B-like, the consumer-GPU QLoRA case
}
DEFAULT_SIZES = "135m,0.5b,1.5b"
SHAPES = "1x2048,4x512,8x1024"
QUANTS = "nf4,none"
DONE = ("measured", "oom", "cpu")
WORDS = ("the", "model", "learns", "to", "answer", "questions", "about", "memory", "and", "training", "steps")
MIB = 2**20


@dataclass(frozen=True)
class Point:
    size: str
    quant: str
    batch: int
    length: int
    checkpointing: bool

    @property
    def key(self) -> str:
        return f"{self.size}-{self.quant}-{self.batch}x{self.length}-{'ckpt' if self.checkpointing else 'nockpt'}"


@dataclass(frozen=True)
class Pending:
    point: Point
    predicted: int
    alone: bool
    """Run with nothing beside it: too big for company, or measured under memory pressure before."""


@dataclass
class Running:
    point: Point
    predicted: int
    process: subprocess.Popen
    job_dir: Path
    alone: bool
    started: float = field(default_factory=time.monotonic)


def grid(sizes: str, quants: str, shapes: str, checkpointing: str) -> list[Point]:
    ckpt = {"on": (True,), "off": (False,), "both": (True, False)}[checkpointing]
    pairs = [tuple(int(v) for v in s.split("x")) for s in shapes.split(",")]
    return [
        Point(size, quant, batch, length, c)
        for size in sizes.split(",")
        for quant in quants.split(",")
        for batch, length in pairs
        for c in ckpt
    ]


def pick_next(pending: list[Pending], running: list[Running], budget: int, parallel: int) -> int | None:
    """Index of the first pending point that fits beside the running ones; one that must run alone waits for none."""
    if len(running) >= parallel or any(r.alone for r in running):
        return None
    committed = sum(r.predicted for r in running)
    for index, item in enumerate(pending):
        if item.alone:
            if not running:
                return index
        elif committed + item.predicted <= budget:
            return index
    return None


def build_model(name: str, folder: Path) -> Path:
    """A random-weight Llama of the given size with the tiny test tokenizer, saved as bf16 safetensors (once)."""
    if (folder / "config.json").exists():
        return folder
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
        tie_word_embeddings=name in ("tiny", "135m"),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.rename(folder)
    return folder


def write_dataset(path: Path, tokens: int) -> Path:
    """Conversations far longer than ``tokens``: the measure job lays them end to end into full rows."""
    if not path.exists():
        reply = " ".join(WORDS[i % len(WORDS)] for i in range(tokens * 2))
        messages = [{"role": "user", "content": "Explain."}, {"role": "assistant", "content": reply}]
        path.write_text((json.dumps({"messages": messages}) + "\n") * 16, encoding="utf-8")
    return path


def measure_spec(point: Point, model_dir: Path, data: Path) -> dict:
    return {
        "name": point.key,
        "kind": "measure",
        "base_model": str(model_dir),
        "quantization": {"mode": point.quant},
        "training": {
            "micro_batch_size": point.batch,
            "max_seq_length": point.length,
            "gradient_checkpointing": point.checkpointing,
        },
        "data": {"path": str(data), "eval_split": 0.0},
    }


def gpu_of_machine(allow_cpu: bool) -> tuple[GpuMemory | None, int]:
    """GPU 0 as the estimator sees it and the bytes to schedule in (its free memory); RAM with --allow-cpu."""
    import psutil

    gpus = machine_gpus()
    if gpus:
        return gpus[0], gpus[0].free_bytes or gpus[0].total_bytes
    if not allow_cpu:
        sys.exit("bench/vram_accuracy.py measures GPU memory and needs a CUDA GPU; NVML sees none here.")
    return None, psutil.virtual_memory().available


def start(point: Point, predicted: int, model_dir: Path, data: Path, work: Path, alone: bool) -> Running:
    """A fresh job folder and data folder for the point, and its worker."""
    from backend.core.layout import JobLayout
    from backend.core.spec import JobSpec
    from backend.jobs.launch import start_worker

    job_dir = work / "jobs" / point.key
    shutil.rmtree(job_dir, ignore_errors=True)
    layout = JobLayout.new(job_dir.parent, point.key)
    if layout.root != job_dir:
        layout.root.rename(job_dir)
        layout = JobLayout(job_dir)
    JobSpec.from_dict(measure_spec(point, model_dir, data)).save(layout.spec)
    home = work / "homes" / point.key  # its own calibration file: points must not scale each other
    shutil.rmtree(home, ignore_errors=True)
    process = start_worker(layout, env={"LORA_STUDIO_HOME": str(home)}, pipe_events=False)
    return Running(point, predicted, process, job_dir, alone)


def outcome(run: Running, predicted_total: int, verdict: str) -> dict:
    """The row for a finished point, read from its events.jsonl."""
    from backend.core.events import Done, Error, Progress, read_events
    from backend.core.layout import JobLayout

    events = list(read_events(JobLayout(run.job_dir).events))
    steps = [e for e in events if isinstance(e, Progress) and e.stage is None]
    done = next((e for e in events if isinstance(e, Done)), None)
    error = next((e for e in events if isinstance(e, Error)), None)
    metrics = done.metrics if done else {}
    predicted = _estimate_file(JobLayout(run.job_dir).estimate)
    row = {
        "key": run.point.key,
        **vars(run.point),
        "predicted_total": predicted_total,
        "verdict": verdict,
        "estimated_reserved": metrics.get("estimated_reserved_bytes"),
        "measured_reserved": metrics.get("peak_reserved_bytes"),
        "measured_allocated": metrics.get("peak_allocated_bytes"),
        "estimated_allocated": predicted.get("peak_allocated_bytes"),
        "peak_phase": predicted.get("peak_phase"),
        "terms": {t["key"]: t["bytes"] for t in predicted.get("terms", ())},
        "measured_process": metrics.get("nvml_process_bytes"),
        "alloc_retries": metrics.get("alloc_retries"),
        "peak_rss": metrics.get("peak_rss_bytes"),
        "tokens_per_s": _tokens_per_second(run.point, steps),
        "ran_alone": run.alone,
        "wall_s": round(time.monotonic() - run.started, 1),
    }
    if done and done.status == "succeeded":
        row["outcome"] = "measured" if row["measured_reserved"] else "cpu"
    elif error and error.error_type == "out_of_memory":
        row["outcome"] = "oom"
    else:
        row["outcome"] = "failed"
        row["error"] = error.message if error else f"worker exited {run.process.returncode} without an error event"
    return row


def _estimate_file(path: Path) -> dict:
    """The worker's estimate for its GPU (``estimate.json``), so a miss can be traced to a term; {} without one."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _tokens_per_second(point: Point, steps: list) -> float | None:
    """Training speed over the steps after the first (which pays for kernel selection and the optimizer state)."""
    if len(steps) < 3 or steps[-1].elapsed_s <= steps[0].elapsed_s:
        return None
    tokens = point.batch * point.length - (1 if point.batch > 1 else 0)  # measurement_plan's worst-case batch
    return round(tokens * (steps[-1].step - steps[0].step) / (steps[-1].elapsed_s - steps[0].elapsed_s), 1)


def under_pressure(row: dict) -> bool:
    """The allocator freed its cache and retried: its peak reserved is then lower than the job alone would take."""
    return bool(row.get("alloc_retries")) and not row["ran_alone"]


def run_grid(points: list[Point], args: argparse.Namespace, rows: dict[str, dict]) -> None:
    from backend.core.spec import JobSpec
    from backend.estimator import estimate, shapes_from_folder

    gpu, capacity = gpu_of_machine(args.allow_cpu)
    budget = int(capacity * args.budget)
    work = args.work
    pending: list[Pending] = []
    meta: dict[str, tuple[Path, Path, int, str]] = {}
    for point in points:
        model_dir = build_model(point.size, work / "models" / point.size)
        data = write_dataset(work / f"data-{point.length}.jsonl", point.length)
        spec = JobSpec.from_dict(measure_spec(point, model_dir, data))
        predicted = estimate(spec, shapes_from_folder(model_dir), gpu, with_suggestions=False)
        meta[point.key] = (model_dir, data, predicted.total_bytes, predicted.verdict)
        pending.append(Pending(point, predicted.total_bytes, alone=predicted.total_bytes > budget))
    running: list[Running] = []
    try:
        while pending or running:
            while (index := pick_next(pending, running, budget, args.parallel)) is not None:
                item = pending.pop(index)
                model_dir, data, _, _ = meta[item.point.key]
                running.append(start(item.point, item.predicted, model_dir, data, work, item.alone))
                alone = ", alone" if item.alone else ""
                print(f"start {item.point.key} (estimated {item.predicted / MIB:,.0f} MiB{alone})", flush=True)
            time.sleep(0.5)
            for run in [r for r in running if r.process.poll() is not None]:
                running.remove(run)
                row = outcome(run, *meta[run.point.key][2:])
                if under_pressure(row):
                    print(f"again alone: {run.point.key} measured under memory pressure", flush=True)
                    pending.insert(0, Pending(run.point, run.predicted, alone=True))
                    continue
                rows[row["key"]] = row
                save(rows, args)
                print(json.dumps(row), flush=True)
    finally:
        for run in running:  # workers run in their own sessions: stopped or not, this run takes them along
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.process.pid, signal.SIGKILL)


def error_pct(row: dict, kind: str = "reserved") -> float:
    return 100 * (row[f"estimated_{kind}"] / row[f"measured_{kind}"] - 1)


def summary(rows: list[dict]) -> dict:
    measured = [r for r in rows if r["outcome"] == "measured" and r["estimated_reserved"] and r["measured_reserved"]]
    errors = [error_pct(r) for r in measured]
    return {
        "measured": len(measured),
        "mean_abs_error_pct": round(statistics.mean(abs(e) for e in errors), 2) if errors else None,
        "worst_under_pct": round(min(errors), 2) if errors else None,
        "passes": bool(errors) and statistics.mean(abs(e) for e in errors) <= 5 and min(errors) >= -5,
    }


def save(rows: dict[str, dict], args: argparse.Namespace) -> None:
    """JSON after every point (so a stopped run resumes) and the Markdown table."""
    ordered = sorted(rows.values(), key=lambda r: r["key"])
    about = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "command": "python bench/vram_accuracy.py " + " ".join(args.argv),
        "versions": versions(),
        "gpu": args.gpu_name,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"about": about, "summary": summary(ordered), "rows": ordered}
    _replace(args.out.with_suffix(".json"), json.dumps(payload, indent=1) + "\n")
    _replace(args.out.with_suffix(".md"), markdown(about, ordered))


def _replace(path: Path, text: str) -> None:
    """Write beside, then rename: a run killed mid-write leaves the last whole file for --resume."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def markdown(about: dict, rows: list[dict]) -> str:
    s = summary(rows)
    lines = [
        "# VRAM estimator accuracy on a GPU",
        "",
        f"GPU: {about['gpu'] or 'none (CPU plumbing run)'}; {about['machine']}, Python {about['python']}; "
        f"date {about['date']}; `{about['command']}`.",
        "Stack: " + ", ".join(f"{k} {v}" for k, v in about["versions"].items()) + ".",
        "",
        f"Points measured: {s['measured']} of {len(rows)}. Mean absolute error of peak reserved: {_accuracy(s)} "
        f"(bar: mean <= 5%, no under-prediction worse than -5%): **{'passes' if s['passes'] else 'does not pass'}**.",
        "",
        "Estimated: the worker's own estimate of peak reserved for this GPU; measured: "
        "`torch.cuda.max_memory_reserved` after the warm-up step; NVML: the process as the driver sees it "
        "(reserved plus the CUDA context).",
        "",
        "Allocated: `torch.cuda.max_memory_allocated` against the estimate before the allocator's reserve "
        "(its error separates the activation model from the allocator model); peak: the moment of the step the "
        "estimate puts the peak at. Every term of each estimate is in the JSON (`terms`).",
        "",
        "Tokens/s: training speed over steps 2 to 4, from the worker's progress events; with more than one "
        "point running at once (`--parallel`, default 4) they share the GPU, so compare speeds only from a "
        "`--parallel 1` run.",
        "",
        "| model | base | batch x length | checkpointing | estimated MiB | measured reserved MiB | error "
        "| allocated MiB | error | peak | NVML MiB | tokens/s | outcome |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['quant']} | {r['batch']} x {r['length']} | {'on' if r['checkpointing'] else 'off'} "
            f"| {_mib(r['estimated_reserved'])} | {_mib(r['measured_reserved'])} "
            f"| {_error_cell(r, 'reserved')} | {_mib(r['measured_allocated'])} | {_error_cell(r, 'allocated')} "
            f"| {r.get('peak_phase') or '-'} | {_mib(r['measured_process'])} | {r.get('tokens_per_s') or '-'} "
            f"| {_describe(r)} |"
        )
    return "\n".join(lines) + "\n"


def _error_cell(row: dict, kind: str) -> str:
    if row["outcome"] != "measured" or not row.get(f"estimated_{kind}") or not row.get(f"measured_{kind}"):
        return "-"
    return f"{error_pct(row, kind):+.1f}%"


def _accuracy(s: dict) -> str:
    if not s["measured"]:
        return "n/a"
    return f"{s['mean_abs_error_pct']:.1f}%; worst under-prediction: {s['worst_under_pct']:+.1f}%"


def _mib(value: float | None) -> str:
    return f"{value / MIB:,.0f}" if value else "-"


def _describe(row: dict) -> str:
    if row["outcome"] == "oom":
        return f"out of memory (estimate said {row['verdict'].replace('_', ' ')})"
    if row["outcome"] == "failed":
        return "failed: " + (row.get("error") or "no error message").splitlines()[0][:80]
    if row["outcome"] == "cpu":
        return f"CPU run, peak RAM {_mib(row['peak_rss'])} MiB"
    retried = f", allocator retried {row['alloc_retries']:.0f} times" if row.get("alloc_retries") else ""
    return "measured" + (" alone" if row["ran_alone"] else "") + retried


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--quants", default=QUANTS)
    parser.add_argument("--shapes", default=SHAPES, help="micro-batch x length pairs")
    parser.add_argument("--checkpointing", choices=("on", "off", "both"), default="both")
    parser.add_argument("--parallel", type=int, default=4, help="points measured at once on the one GPU")
    parser.add_argument("--budget", type=float, default=0.8, help="share of free GPU memory to pack estimates into")
    parser.add_argument("--resume", action="store_true", help="keep the points OUT.json already has")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lora-studio-vram"), help="models, data, job folders")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (checks the plumbing only)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "vram_accuracy")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a time limit's TERM still stops the workers
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    rows: dict[str, dict] = {}
    if args.resume and args.out.with_suffix(".json").exists():
        kept = json.loads(args.out.with_suffix(".json").read_text())["rows"]
        rows = {r["key"]: r for r in kept if r["outcome"] in DONE}
    points = [p for p in grid(args.sizes, args.quants, args.shapes, args.checkpointing) if p.key not in rows]
    print(f"{len(points)} points to run, {len(rows)} kept from {args.out.with_suffix('.json')}", flush=True)
    args.gpu_name = next((gpu.name for gpu in machine_gpus()), None)
    run_grid(points, args, rows)
    save(rows, args)
    s = summary(list(rows.values()))
    print(f"wrote {args.out.with_suffix('.md')}: {s}")


if __name__ == "__main__":
    main()
