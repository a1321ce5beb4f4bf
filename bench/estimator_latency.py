"""How long one estimate takes, as the form calls it on every keystroke (budget: 5 ms).

    python bench/estimator_latency.py [--repeat 500] [--out bench/results/estimator_latency.md]

Times ``backend.estimator.estimate`` for an 8B Llama-shaped model (224 linear layers)
in three states: fits (no suggestions computed), will not fit (suggestions computed,
each a full re-estimate) and will not fit with dataset statistics (one more suggestion).
Shapes are read once, as the GUI caches them per model.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.core.spec import JobSpec
from backend.estimator import DataStats, GpuMemory, estimate, shapes_from_config
from tests.model_configs import LLAMA_8B


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    lines = []
    shapes = shapes_from_config(LLAMA_8B)
    gpu = GpuMemory("NVIDIA GeForce RTX 4090", 24 * 1024**3, 22 * 1024**3)
    cases = {
        "fits": (JobSpec.from_dict({"data": {"path": "x"}, "training": {"micro_batch_size": 1}}), None),
        "will not fit, suggestions": (
            JobSpec.from_dict(
                {"data": {"path": "x"}, "training": {"micro_batch_size": 8, "gradient_checkpointing": False}}
            ),
            None,
        ),
        "will not fit, suggestions with data p99": (
            JobSpec.from_dict(
                {
                    "data": {"path": "x"},
                    "training": {"micro_batch_size": 8, "max_seq_length": 4096, "gradient_checkpointing": False},
                }
            ),
            DataStats(p99_tokens=1200, max_tokens=4096),
        ),
    }
    for name, (spec, data) in cases.items():
        estimate(spec, shapes, gpu, data)  # warm the per-model caches, as the first keystroke does
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = estimate(spec, shapes, gpu, data)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p99 = times[int(0.99 * len(times)) - 1]
        print(
            f"{name:42s} median {statistics.median(times):.3f} ms, p99 {p99:.3f} ms, "
            f"{len(result.suggestions)} suggestions, verdict {result.verdict}"
        )
        lines.append(
            f"| {name} | {statistics.median(times):.3f} | {p99:.3f} | {len(result.suggestions)} | {result.verdict} |"
        )
    if args.out:
        head = [
            "# Estimator latency (one estimate, as the form makes on every edit; budget 5 ms)",
            "",
            f"- date: {datetime.date.today().isoformat()}; `python bench/estimator_latency.py --repeat {args.repeat}`",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            f"- load average (1 min) at the start: {load:.2f}",
            "- model: an 8B Llama's shapes (224 linear layers), shapes read once as the GUI caches them",
            "",
            "| case | median ms | p99 ms | suggestions | verdict |",
            "|---|---|---|---|---|",
        ]
        args.out.write_text("\n".join([*head, *lines, ""]), encoding="utf-8")


if __name__ == "__main__":
    main()
