"""How long the Data page waits for one example "as the model sees it", on a large dataset.

    python bench/data_preview.py [--rows 50000] [--runs 3] [--out bench/results/data_preview.md]

Writes the chat JSONL of ``bench/data_import.py`` and builds the tests' tiny Llama in a
temporary folder, then times example 2 asked for after example 1, both ways the page has
rendered one: a fresh ``lora-studio data preview PATH 2 --json`` per example (each run reads
and checks the whole file and loads the tokenizer again), and one ``data preview PATH --serve``
child that has answered example 1 and is asked for example 2 on stdin. The serving child's
start (reading the file, loading the tokenizer) is paid once per dataset, model and maximum
length, and is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data_import import REPO, build_tokenizer, machine, write_dataset

_CLI = [sys.executable, "-m", "backend.cli", "data", "preview"]
_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def single_shot(data: Path, model: Path, example: int) -> float:
    """Seconds for one ``data preview N --json`` run, as the page used to start for every example."""
    started = time.perf_counter()
    command = [*_CLI, str(data), str(example), "--model", str(model), "--json"]
    subprocess.run(command, cwd=REPO, env=_ENV, capture_output=True, check=True)
    return time.perf_counter() - started


def served(data: Path, model: Path) -> dict[str, float]:
    """Seconds until a ``--serve`` child is ready, until it answers example 1, then example 2 alone."""
    command = [*_CLI, str(data), "--serve", "--model", str(model)]
    started = time.perf_counter()
    with subprocess.Popen(
        command, cwd=REPO, env=_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as server:
        assert json.loads(server.stdout.readline())["ready"]
        ready = time.perf_counter() - started

        def ask(example: int) -> float:
            asked = time.perf_counter()
            server.stdin.write(f"{example}\n")
            server.stdin.flush()
            assert "text" in json.loads(server.stdout.readline())
            return time.perf_counter() - asked

        first = ask(1)
        second = ask(2)
        server.stdin.close()
        server.wait()
    return {"ready": ready, "first": ready + first, "second": second}


def markdown(rows: int, size_mb: float, before: list[float], after: list[dict[str, float]]) -> str:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    second = median([a["second"] for a in after])
    return "\n".join(
        [
            "# Rendering one example on the Data page",
            "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M')}",
            f"- Machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end",
            f"- Data: {rows:,}-row JSONL chat file ({size_mb:,.0f} MB, `bench/data_import.py`'s), tiny Llama tokenizer",
            f"- Medians of {len(before)} runs; written by `bench/data_preview.py`",
            "",
            "| example 2 after example 1 | milliseconds |",
            "|---|---:|",
            f"| before: a fresh `data preview PATH 2 --json` | {median(before) * 1000:,.0f} |",
            f"| after: asked of the `data preview PATH --serve` child | {second * 1000:.1f} |",
            "",
            f"The serving child is started once per dataset, reading options, model and maximum length: "
            f"ready after {median([a['ready'] for a in after]):.2f} s, example 1 answered after "
            f"{median([a['first'] for a in after]):.2f} s, about what every click cost before. "
            f"Each later example is {median(before) / second:,.0f} times faster.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "data_preview.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lora-studio-bench-") as tmp:
        root = Path(tmp)
        data = root / "chat.jsonl"
        print(f"writing {args.rows:,} rows to {data}", flush=True)
        write_dataset(data, args.rows)
        model = build_tokenizer(root / "tiny_llama")
        before, after = [], []
        for run in range(args.runs):
            before.append(single_shot(data, model, 2))
            after.append(served(data, model))
            print(f"run {run + 1}: before {before[-1]:.2f} s, after {after[-1]['second']:.4f} s", flush=True)
        text = markdown(args.rows, data.stat().st_size / 2**20, before, after)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
