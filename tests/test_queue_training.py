"""The queue with the real training worker: a worker killed with SIGKILL mid-run, then resumed."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from backend.core.events import Done, Progress, Started, read_events
from backend.core.layout import ADAPTER_RECORD
from backend.core.spec import JobSpec
from backend.jobs.queue import JobQueue
from backend.training.checkpoints import checkpoint_step, latest_checkpoint
from tests.datasets import write_colour_task
from tests.queue_support import Processes, wait_for

STEPS = 200  # enough that the kill lands mid-run even at 40 ms a step on an idle machine


def test_a_worker_killed_mid_training_resumes_to_the_same_final_step_and_a_loadable_adapter(
    queue: JobQueue, processes: Processes, tmp_path: Path, tiny_llama: Path
) -> None:
    spec = JobSpec.from_dict(
        {
            "name": "killed",
            "base_model": str(tiny_llama),
            "lora": {"r": 8},
            "training": {
                "max_steps": STEPS,
                "micro_batch_size": 4,
                "gradient_accumulation_steps": 1,
                "learning_rate": 3e-3,
                "max_seq_length": 64,
            },
            "data": {"path": str(write_colour_task(tmp_path / "colours.jsonl", 120))},
            "schedule": {"save_every_steps": 4, "eval_every_steps": 100},
        }
    )
    added = queue.add(spec)
    assert added.job is not None, added.checks
    job = added.job

    def past_a_checkpoint():
        current = queue.get(job.id)
        checkpoint = latest_checkpoint(job.layout.checkpoints)
        ready = current.state == "running" and current.pid and checkpoint and (current.step or 0) >= 6
        return ready and current

    runner = processes.runner("--device", "cpu", "--once", standin=False)
    running = wait_for(past_a_checkpoint, timeout=600, what="a checkpoint and step 6")
    os.kill(running.pid, signal.SIGKILL)
    assert runner.wait(120) == 0, runner.stdout.read().decode()[-3000:]

    interrupted = queue.get(job.id)
    assert interrupted.state == "interrupted", interrupted
    assert interrupted.cause in ("signal:SIGKILL", "oom_killer") and interrupted.exit_code == -signal.SIGKILL
    checkpoint = checkpoint_step(latest_checkpoint(job.layout.checkpoints))
    assert checkpoint and checkpoint < STEPS and f"continues from step {checkpoint}" in interrupted.hint

    assert queue.resume(job.id).ok
    runner = processes.runner("--device", "cpu", "--once", standin=False)
    assert runner.wait(600) == 0, runner.stdout.read().decode()[-3000:]
    finished = queue.get(job.id)
    log = job.layout.log.read_text()[-3000:]
    assert (finished.state, finished.step, finished.attempt) == ("succeeded", STEPS, 2), log

    events = list(read_events(job.layout.events))
    starts = [i for i, event in enumerate(events) if isinstance(event, Started)]
    assert [events[i].resumed_from_step for i in starts] == [None, checkpoint]
    resumed = [e.step for e in events[starts[1] :] if isinstance(e, Progress)]
    assert resumed == list(range(checkpoint + 1, STEPS + 1))
    assert isinstance(events[-1], Done) and events[-1].step == STEPS
    assert json.loads((job.layout.adapter / ADAPTER_RECORD).read_text())["steps"] == STEPS

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    tuned = PeftModel.from_pretrained(base, finished.adapter_path)
    assert any("lora_A" in name for name, _ in tuned.named_parameters())
