"""Run code in a fresh interpreter and tell which modules of the ML stack it left loaded.

The window's process must never import torch and its kin: the code the GUI runs is checked here,
in a fresh interpreter, because the test process has long imported them. ``sys.modules`` is the
only reliable witness: safetensors' ``safe_open`` imports torch from Rust, where no import hook
and no import-linter contract sees it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ML_STACK = ("torch", "transformers", "tokenizers", "bitsandbytes", "peft", "trl", "accelerate", "datasets")
"""What a GUI process must not import: each is seconds of start-up and hundreds of MB."""
_MARK = "import-check, loaded:"


@dataclass(frozen=True)
class FreshRun:
    loaded: list[str]
    """The watched modules in ``sys.modules`` once the code had run, sorted."""
    stdout: str
    """What the code printed (without the line this check adds)."""


def run_fresh(
    code: str,
    *args: str,
    watch: Iterable[str] = ML_STACK,
    env: Mapping[str, str] | None = None,
    timeout: float = 150,
) -> FreshRun:
    """Runs ``code`` as ``python -c code *args`` from the repository root, with ``env`` over this
    process's environment; fails the test if it exits with an error, with its output in the message."""
    report = f"\nimport json as _j, sys as _s\nprint({_MARK!r}, _j.dumps(sorted(m for m in {tuple(watch)!r} if m in _s.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", code + report, *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"exit status {done.returncode}\n{done.stderr[-3000:]}{done.stdout[-1000:]}"
    lines = done.stdout.splitlines()
    assert lines and lines[-1].startswith(_MARK), done.stdout[-1000:]
    return FreshRun(loaded=json.loads(lines[-1].removeprefix(_MARK)), stdout="\n".join(lines[:-1]))
