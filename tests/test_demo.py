"""The README's main job, end to end on the real SmolLM2: `lora-studio demo`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.core.events import Done, Metric, Progress, read_events
from backend.core.layout import ADAPTER_RECORD


@pytest.mark.slow
def test_demo_fine_tunes_smollm2_and_compares_it_with_the_base(smollm2_store: dict, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "demo", "--steps", "4", "--compare", "4", "--jobs-dir", str(jobs)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "triage exactly right (category, priority and team):" in result.stdout
    assert result.stdout.count("  tuned:  ") == 3

    (job,) = jobs.iterdir()
    events = list(read_events(job / "events.jsonl"))
    assert events[0].type == "started" and events[0].device.kind in ("cpu", "cuda")
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3, 4]
    assert any(isinstance(e, Metric) and e.split == "eval" for e in events)
    done = events[-1]
    assert isinstance(done, Done) and done.status == "succeeded"
    record = json.loads((Path(done.adapter_path) / ADAPTER_RECORD).read_text())
    assert record["base_model"]["fingerprint"] == smollm2_store["record"].fingerprint
    assert record["spec"]["quantization"]["mode"] == "nf4"
