"""Rows per second and peak memory of validating and importing a large chat dataset, on this machine.

    python bench/data_import.py [--rows 1000000] [--token-rows N] [--out bench/results/data_import.md]

Writes a JSONL file of OpenAI-style chat rows (system, user, assistant; a few
broken, unanswered or duplicated, as real exports have) to a temporary folder,
then runs each stage in a fresh process so that its peak RSS is its own:
validation alone, an import into a data folder (validation + Arrow),
validation with token counting by the tiny Llama tokenizer the tests build, and
validation of the same rows saved as an Excel workbook (instruction and output
columns, as a support team's export would be).

Rows per second are wall-clock; rows per CPU-second are also given, because
this 2-core machine is shared: with other work running, wall-clock rates fall
while CPU rates hold. The load average before and after each stage is recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.peak_rss import peak_rss_bytes  # noqa: E402 - after the repo is on the path

_WORDS = [
    "the",
    "model",
    "learns",
    "from",
    "examples",
    "of",
    "questions",
    "and",
    "answers",
    "about",
    "products",
    "orders",
    "invoices",
    "shipping",
    "returns",
    "accounts",
    "passwords",
    "refunds",
    "delivery",
    "warranty",
    "battery",
    "screen",
    "cable",
    "adapter",
    "manual",
    "support",
    "please",
    "thanks",
    "today",
    "tomorrow",
    "week",
    "customer",
    "team",
    "order",
    "number",
    "status",
    "update",
    "help",
]
_STAGES = {
    "check": "validate (no tokenization)",
    "import": "import: validate + write Arrow",
    "tokens": "validate + count tokens (tiny Llama tokenizer)",
    "workbook": "validate an Excel workbook (.xlsx, openpyxl read-only)",
}


def write_dataset(path: Path, rows: int, seed: int = 0) -> None:
    """Chat rows of realistic length; 0.1% broken JSON, 0.1% without a reply, about 1% duplicates."""
    rng = random.Random(seed)

    def sentence(n: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + "."

    with path.open("w", encoding="utf-8") as handle:
        previous = ""
        for i in range(rows):
            roll = rng.random()
            if roll < 0.001:
                handle.write('{"messages": [{"role": "user", "content": "broken"\n')
                continue
            if 0.002 <= roll < 0.012 and previous:
                handle.write(previous)
                continue
            messages = [
                {"role": "system", "content": "You are a helpful support assistant for Nimbus Home."},
                {"role": "user", "content": f"Ticket {i}: {sentence(rng.randint(8, 40))}"},
                {"role": "assistant", "content": " ".join(sentence(rng.randint(6, 20)) for _ in range(3))},
            ]
            if roll < 0.002:
                messages.pop()
            previous = json.dumps({"messages": messages}, ensure_ascii=False) + "\n"
            handle.write(previous)


def write_workbook(source: Path, path: Path, rows: int) -> None:
    """The first ``rows`` lines of the JSONL as an instruction/output sheet (a broken line becomes an empty row)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Tickets")
    sheet.append(["instruction", "output"])
    with source.open(encoding="utf-8") as lines:
        for _, line in zip(range(rows), lines, strict=False):
            try:
                messages = {m["role"]: m["content"] for m in json.loads(line)["messages"]}
            except (ValueError, KeyError):
                messages = {}
            sheet.append([messages.get("user"), messages.get("assistant")])
    book.save(path)


def stage(kind: str, data: Path, home: Path, tokenizer_dir: Path | None) -> dict:
    """One measured stage, run in this process."""
    from backend.data.load import check_dataset
    from backend.data.store import import_dataset

    counter = None
    if tokenizer_dir is not None:
        from transformers import AutoTokenizer

        from backend.data.tokens import TokenCounter

        counter = TokenCounter(AutoTokenizer.from_pretrained(tokenizer_dir), "tiny-llama", max_length=1024)
    started, cpu = time.perf_counter(), time.process_time()
    stored_mb = 0.0
    if kind == "import":
        stored, report = import_dataset(data, name="bench", root=home)
        stored_mb = sum(f.stat().st_size for f in stored.path.iterdir()) / 2**20
    else:
        report = check_dataset(data, counter=counter)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "stage": kind,
        "rows": report.rows,
        "accepted": report.accepted,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak_rss_bytes() / 2**20,
        "stored_mb": stored_mb,
        "problems": dict(report.problems.counts),
        "tokens": report.tokens.total if report.tokens else None,
    }


def run_stage(kind: str, data: Path, home: Path, tokenizer_dir: Path | None) -> dict:
    command = [sys.executable, __file__, "--stage", kind, "--data", str(data), "--home", str(home)]
    if tokenizer_dir is not None:
        command += ["--tokenizer", str(tokenizer_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    load = os.getloadavg()[0]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "load": (load, os.getloadavg()[0])}


def build_tokenizer(folder: Path) -> Path:
    """The tests' tiny Llama, built in a child process so this one stays small."""
    code = (
        "import sys; from pathlib import Path; from tests.tiny_models import build_tiny_model; "
        "build_tiny_model('llama', Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, str(folder)], cwd=REPO, check=True, capture_output=True)
    return folder


def machine() -> str:
    import psutil

    cpu = platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()}, Python {platform.python_version()}"
    )


def markdown(results: list[dict], rows: int, size_mb: float) -> str:
    lines = [
        "# Dataset import benchmark",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M')}",
        f"- Machine: {machine()}",
        f"- Data: {rows:,}-row JSONL chat file ({size_mb:,.0f} MB), written by `bench/data_import.py`",
        "- Each stage runs in a fresh process; peak RSS is that process's high-water mark (VmHWM).",
        "- rows/s is wall-clock; rows per CPU-second shows the cost when other work shares the 2 cores.",
        "",
        "| stage | rows | usable | seconds | rows/s | rows/CPU-s | peak RSS (MB) | load avg before/after |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {_STAGES[r['stage']]} | {r['rows']:,} | {r['accepted']:,} | {r['seconds']:.1f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {r['rows'] / r['cpu_seconds']:,.0f} | {r['peak_rss_mb']:,.0f} | "
            f"{r['load'][0]:.1f} / {r['load'][1]:.1f} |"
        )
    check = next((r for r in results if r["stage"] == "check"), None)
    if check:
        met = check["rows"] / check["seconds"] >= 50_000 and check["peak_rss_mb"] < 1536
        lines += [
            "",
            "Bar: validation without tokenization at least 50,000 rows/s (wall-clock) and peak RSS under 1.5 GB: "
            f"{'met' if met else 'not met'}.",
            "",
            f"- Problems found: {', '.join(f'{code} {n:,}' for code, n in check['problems'].items())}",
        ]
    stored = next((r for r in results if r["stage"] == "import"), None)
    if stored:
        lines.append(f"- Stored Arrow dataset (zstd): {stored['stored_mb']:,.0f} MB")
    tokens = next((r for r in results if r["stage"] == "tokens"), None)
    if tokens and tokens["tokens"]:
        lines.append(f"- Tokens counted: {tokens['tokens']:,} ({tokens['tokens'] / tokens['seconds']:,.0f} tokens/s)")
        lines.append(
            "- The tiny Llama's tokenizer has a 512-token vocabulary, so it cuts the same text into more tokens "
            "than a real model's would; the Rust tokenizer uses both cores, hence more rows/s than rows/CPU-s."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--token-rows", type=int, help="rows for the token stage (default: --rows)")
    parser.add_argument(
        "--stages", default="check,import,tokens,workbook", help="comma-separated: check, import, tokens, workbook"
    )
    parser.add_argument("--workbook-rows", type=int, default=100_000, help="rows for the workbook stage")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "data_import.md")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.data, args.home, args.tokenizer)))
        return

    with tempfile.TemporaryDirectory(prefix="lora-studio-bench-") as tmp:
        root = Path(tmp)
        data = root / "chat.jsonl"
        print(f"writing {args.rows:,} rows to {data}", flush=True)
        write_dataset(data, args.rows)
        token_data = data
        if args.token_rows and args.token_rows != args.rows:
            token_data = root / "chat_tokens.jsonl"
            write_dataset(token_data, args.token_rows)
        inputs = {"tokens": token_data}
        if "workbook" in args.stages:
            inputs["workbook"] = root / "tickets.xlsx"
            print(f"writing {args.workbook_rows:,} rows to {inputs['workbook']}", flush=True)
            write_workbook(data, inputs["workbook"], args.workbook_rows)
        results = []
        for kind in args.stages.split(","):
            tokenizer = build_tokenizer(root / "tiny_llama") if kind == "tokens" else None
            print(f"{_STAGES[kind]} ...", flush=True)
            results.append(run_stage(kind, inputs.get(kind, data), root / "home", tokenizer))
            r = results[-1]
            print(
                f"  {r['rows']:,} rows in {r['seconds']:.1f} s: {r['rows'] / r['seconds']:,.0f} rows/s, "
                f"{r['rows'] / r['cpu_seconds']:,.0f} rows/CPU-s, peak RSS {r['peak_rss_mb']:,.0f} MB, "
                f"load {r['load'][0]:.1f}/{r['load'][1]:.1f}",
                flush=True,
            )
        text = markdown(results, args.rows, data.stat().st_size / 2**20)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
