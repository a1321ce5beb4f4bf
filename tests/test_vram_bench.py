"""bench/vram_accuracy.py without a GPU: its scheduling, its report, and one real point run through its plumbing.

The GPU bar itself needs a GPU (docs/estimator.md, "Measured on a GPU"); what can break before
one is lent is checked here, so a lent machine's short time is spent measuring.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "vram_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("vram_accuracy", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["vram_accuracy"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["vram_accuracy"]


class _Process:
    def poll(self) -> None:
        return None


def _running(bench, predicted: int, alone: bool = False):
    point = bench.Point("135m", "nf4", 1, 2048, True)
    return bench.Running(point, predicted, _Process(), Path("job"), alone)


def test_grid_is_the_issue_grid(bench) -> None:
    points = bench.grid(bench.DEFAULT_SIZES, bench.QUANTS, bench.SHAPES, "both")
    assert len(points) == 3 * 2 * 3 * 2
    assert len({p.key for p in points}) == len(points)


def test_points_are_packed_into_the_budget(bench) -> None:
    point = bench.Point("tiny", "none", 1, 64, True)
    pending = [bench.Pending(point, 60, False), bench.Pending(point, 30, False), bench.Pending(point, 10, False)]
    assert bench.pick_next(pending, [], budget=100, parallel=4) == 0
    assert bench.pick_next(pending, [_running(bench, 60)], budget=100, parallel=4) == 1
    assert bench.pick_next(pending, [_running(bench, 60), _running(bench, 35)], budget=100, parallel=4) is None
    assert bench.pick_next(pending, [_running(bench, 10)], budget=100, parallel=1) is None  # parallel caps it
    assert bench.pick_next(pending, [_running(bench, 500, alone=True)], budget=1000, parallel=4) is None


def test_a_point_that_must_run_alone_waits_for_an_idle_gpu(bench) -> None:
    """Too big for company, or measured under memory pressure: it starts only when nothing runs."""
    point = bench.Point("tiny", "none", 1, 64, True)
    alone, small = bench.Pending(point, 5, True), bench.Pending(point, 5, False)
    assert bench.pick_next([alone, small], [_running(bench, 10)], budget=100, parallel=4) == 1
    assert bench.pick_next([alone], [_running(bench, 10)], budget=100, parallel=4) is None
    assert bench.pick_next([alone, small], [], budget=100, parallel=4) == 0


def test_summary_applies_the_bar(bench) -> None:
    def row(estimated: float, measured: float) -> dict:
        return {"outcome": "measured", "estimated_reserved": estimated, "measured_reserved": measured}

    assert bench.summary([row(103, 100), row(98, 100)])["passes"]
    assert not bench.summary([row(94, 100), row(100, 100)])["passes"]  # a false "fits" by 6%
    assert not bench.summary([row(110, 100), row(108, 100)])["passes"]  # mean error 9%
    assert not bench.summary([{"outcome": "cpu"}])["passes"]  # nothing measured passes nothing


def test_the_report_separates_the_activation_model_from_the_allocator(bench) -> None:
    point = {"size": "135m", "quant": "nf4", "batch": 1, "length": 2048, "checkpointing": True, "ran_alone": False}
    row = {
        **point,
        "key": "a",
        "outcome": "measured",
        "estimated_reserved": 110 * 2**20,
        "measured_reserved": 100 * 2**20,
        "estimated_allocated": 88 * 2**20,
        "measured_allocated": 80 * 2**20,
        "measured_process": None,
        "peak_phase": "loss backward",
    }
    oom = {**point, "key": "b", "outcome": "oom", "verdict": "fits", "estimated_reserved": None}
    oom |= {"measured_reserved": None, "measured_allocated": None, "measured_process": None}
    table = bench.markdown(
        {"gpu": "H", "machine": "m", "python": "3", "date": "d", "command": "c", "versions": {}}, [row, oom]
    )
    assert "| 110 | 100 | +10.0% | 80 | +10.0% | loss backward |" in table
    assert "| - | - | - | - | - | - |" in table and "out of memory (estimate said fits)" in table


def test_memory_pressure_reruns_alone(bench) -> None:
    assert bench.under_pressure({"alloc_retries": 2.0, "ran_alone": False})
    assert not bench.under_pressure({"alloc_retries": 2.0, "ran_alone": True})
    assert not bench.under_pressure({"alloc_retries": 0.0, "ran_alone": False})


def test_a_point_runs_through_the_real_worker_and_resumes(tmp_path: Path) -> None:
    """The measure job on the CPU for a tiny model: job folder, worker, events, report; then --resume keeps it."""
    out = tmp_path / "out" / "vram"
    command = [
        sys.executable,
        str(BENCH),
        "--sizes",
        "tiny",
        "--quants",
        "none",
        "--shapes",
        "2x64",
        "--checkpointing",
        "on",
        "--allow-cpu",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [(r["key"], r["outcome"]) for r in rows] == [("tiny-none-2x64-ckpt", "cpu")]
    assert rows[0]["peak_rss"] > 0 and rows[0]["predicted_total"] > 0 and rows[0]["tokens_per_s"] > 0
    assert rows[0]["peak_phase"] and sum(rows[0]["terms"].values()) == rows[0]["predicted_total"]
    assert "| tiny | none | 2 x 64 | on |" in out.with_suffix(".md").read_text()
    again = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 points to run, 1 kept" in again.stdout
