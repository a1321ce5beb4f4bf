"""The folder of one job: every file a run reads or leaves behind.

Everything about a job lives under its folder, so a job can be inspected,
copied, resumed or deleted as one thing, with or without the queue's database.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ADAPTER_RECORD = "lora_studio_adapter.json"
"""Inside every adapter folder: the spec, dataset hash, base fingerprint and metrics it came from."""


@dataclass(frozen=True)
class JobLayout:
    root: Path

    @property
    def job_id(self) -> str:
        return self.root.name

    @property
    def spec(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def estimate(self) -> Path:
        """A measure job's prediction, every term, written before its steps run (on the CPU: with no GPU)."""
        return self.root / "estimate.json"

    @property
    def log(self) -> Path:
        """The worker's stderr: library warnings, tracebacks, anything not an event."""
        return self.root / "worker.log"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def cancel_request(self) -> Path:
        """Created by whoever wants the job to stop; the worker polls for it."""
        return self.root / "cancel.request"

    @classmethod
    def new(cls, jobs_dir: Path, name: str) -> JobLayout:
        """A fresh, uniquely named job folder: ``<UTC time>-<name>-<random>``."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:40] or "job"
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        root = jobs_dir / f"{stamp}-{slug}-{uuid.uuid4().hex[:6]}"
        root.mkdir(parents=True)
        return cls(root)
