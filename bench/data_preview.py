"""How long the Data page waits for one example "as the model sees it", on a large dataset.

    python bench/data_preview.py [--rows 50000] [--table-rows 100000] [--runs 3] [--out bench/results/data_preview.md]

Writes the chat JSONL of ``bench/data_import.py`` and builds the tests' tiny Llama in a
temporary folder, then times example 2 asked for after example 1, both ways the page has
rendered one: a fresh ``lora-studio data preview PATH 2 --json`` per example (each run reads
and checks the whole file and loads the tokenizer again), and one ``data preview PATH --serve``
child that has answered example 1 and is asked for example 2 on stdin. The serving child's
start (reading the file, loading the tokenizer) is paid once per dataset, model and maximum
length, and is reported too.

A second stage times the example table (``widgets.example_preview``, offscreen Qt) given a
dataset of ``--table-rows`` examples that it reads lazily: from ``set_examples`` through a
scroll to the last row and its paint, with how many examples it read. tests/qt/test_example_preview.py
checks that only the visible rows are read; the time is measured here, not asserted there.
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
from collections.abc import Sequence
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


class CountingExamples(Sequence):
    """``rows`` conversations made on demand, counting how many the table reads."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.reads = 0

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i: int) -> list[dict[str, str]]:
        if not 0 <= i < self.rows:
            raise IndexError(i)
        self.reads += 1
        return [
            {"role": "system", "content": "You triage tickets."},
            {"role": "user", "content": f"Ticket {i}:\nI was charged twice."},
            {"role": "assistant", "content": f"billing, high ({i})"},
        ]


def table_rows(rows: int) -> tuple[float, int]:
    """Seconds from handing ``rows`` examples to a shown preview to the last row painted, and examples read."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication, QTableView

    from widgets.example_preview import ExamplePreview

    app = QApplication.instance() or QApplication([])
    preview = ExamplePreview()
    preview.resize(900, 500)
    preview.show()
    app.processEvents()
    examples = CountingExamples(rows)
    started = time.perf_counter()
    preview.set_examples(examples)
    table = preview.findChild(QTableView)
    table.scrollToBottom()
    table.viewport().repaint()
    app.processEvents()
    seconds = time.perf_counter() - started
    assert table.model().rowCount() == rows
    preview.close()
    preview.deleteLater()
    app.processEvents()
    return seconds, examples.reads


def markdown(
    rows: int,
    size_mb: float,
    before: list[float],
    after: list[dict[str, float]],
    table_size: int,
    table: list[tuple[float, int]],
) -> str:
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
            f"## {table_size:,} examples in the example table",
            "",
            "| given to the shown preview, scrolled to the last row, painted | value |",
            "|---|---:|",
            f"| milliseconds, median of {len(table)} runs | {median([s for s, _ in table]) * 1000:,.1f} |",
            f"| slowest run, milliseconds | {max(s for s, _ in table) * 1000:,.1f} |",
            f"| examples read (most of any run) | {max(r for _, r in table):,} |",
            "",
            "The table reads only the rows it shows (tests/qt/test_example_preview.py checks that; the time is "
            "measured here only, so a busy machine fails no test).",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--table-rows", type=int, default=100_000)
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
        table = []
        for run in range(args.runs):
            table.append(table_rows(args.table_rows))
            print(f"run {run + 1}: {args.table_rows:,} rows shown in {table[-1][0] * 1000:.1f} ms", flush=True)
        text = markdown(args.rows, data.stat().st_size / 2**20, before, after, args.table_rows, table)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
