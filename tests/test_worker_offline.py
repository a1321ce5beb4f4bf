"""A real 4-bit training job on a machine without network: the worker tries no hub and says nothing about one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.jobs.worker import EXIT_OK
from tests.queue_support import REPO
from tests.test_worker import make_job, run

GUARD = Path(__file__).parent / "netguard"


def test_a_4bit_training_job_opens_no_network_connection(
    tmp_path: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard_log = tmp_path / "network.log"
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("LORA_STUDIO_NET_GUARD", str(guard_log))
    monkeypatch.setenv("PYTHONPATH", str(GUARD))
    # The tests run offline; the worker must be offline-safe without being told.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    layout = make_job(tmp_path, tiny_llama, training={"max_steps": 2}, schedule={"save_every_steps": 2})

    code, _ = run(layout)

    log = layout.log.read_text()
    assert code == EXIT_OK, log[-3000:]
    guarded = guard_log.read_text()
    assert "guard loaded" in guarded, "the network guard did not load in the worker"
    assert "ATTEMPT" not in guarded, guarded
    assert "publisher trust" not in log, log[-3000:]
    assert "kernels-community" not in log, log[-3000:]


def test_hub_kernels_are_refused_and_switched_off_in_a_worker(tmp_path: Path) -> None:
    code = (
        "import os\nfrom backend.jobs.offline import HubKernelRefused, close_hub_kernels\nclose_hub_kernels()\n"
        "assert os.environ['USE_HUB_KERNELS'] == 'NO'\nfrom kernels import get_kernel\n"
        "try:\n    get_kernel('kernels-community/quantization-bitsandbytes', version=1)\n"
        "except HubKernelRefused as exc:\n    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "USE_HUB_KERNELS")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "load no kernel from a hub" in result.stdout
