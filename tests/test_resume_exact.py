"""Resume repeats exactly: a run cancelled after a checkpoint and resumed has the uninterrupted run's losses."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from backend.core.events import Event, Progress
from backend.jobs.worker import EXIT_CANCELLED, EXIT_OK
from tests.datasets import write_colour_task
from tests.test_worker import _worker_env, make_job, run, train_losses  # noqa: F401  (the fixture)


def losses_by_step(events: list[Event], first: int) -> dict[int, float]:
    return dict(enumerate(train_losses(events), start=first))


@pytest.mark.parametrize("stop_after", [3, pytest.param(7, marks=pytest.mark.slow)])
def test_a_resumed_run_has_the_uninterrupted_runs_losses_bit_for_bit(
    tmp_path: Path, tiny_llama: Path, stop_after: int
) -> None:
    """Dropout, an evaluation before the stop, gradient accumulation and an epoch boundary after it.

    18 training rows in micro-batches of 2 with accumulation 2 make 5 steps an epoch, the last
    with one micro-batch; evaluations every 4 steps. Stopping after step 3 resumes mid-epoch and
    crosses two epoch boundaries; stopping after 7 resumes in the second epoch.
    """
    settings = {
        "data": {"path": str(write_colour_task(tmp_path / "small.jsonl", 20)), "eval_split": 0.1},
        "lora": {"dropout": 0.1},
        "training": {"max_steps": 14, "gradient_accumulation_steps": 2, "micro_batch_size": 2, "epochs": 3},
        "schedule": {"save_every_steps": 100, "eval_every_steps": 4},
    }
    code, reference = run(make_job(tmp_path, tiny_llama, "reference", **settings))
    assert code == EXIT_OK
    layout = make_job(tmp_path, tiny_llama, "interrupted", **settings)

    def cancel(event: Event, process) -> None:  # a signal, not the polled cancel file: a quick run can outpace it
        if isinstance(event, Progress) and event.step == stop_after:
            os.killpg(process.pid, signal.SIGTERM)

    code, first = run(layout, on_event=cancel)
    assert code == EXIT_CANCELLED
    stopped = first[-1].step
    code, second = run(layout, resume=True)
    assert code == EXIT_OK, layout.log.read_text()[-3000:]
    expected = losses_by_step(reference, 1)
    got = {**losses_by_step(first, 1), **losses_by_step(second, stopped + 1)}
    assert got == expected
