"""A transformers TrainerCallback that turns the training loop into job events.

It also carries the stop request into the loop: when the job is cancelled (GUI
button, ``lora-studio queue cancel``, SIGTERM) the loop finishes the current
step, saves a checkpoint and returns, so nothing trained is lost.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from backend.core.events import PREFERENCE_KEYS, Artifact, EventSink, Metric, Progress
from backend.core.progress import time_left
from backend.core.stop import StopRequest
from backend.training.checkpoints import write_marker

_TRAIN_KEYS = ("loss", "learning_rate", "grad_norm", "mean_token_accuracy", "entropy", *PREFERENCE_KEYS)


class EventCallback(TrainerCallback):
    def __init__(self, sink: EventSink, stop: StopRequest, *, checkpoint_on_stop: bool = True) -> None:
        self._sink = sink
        self._stop = stop
        self._checkpoint_on_stop = checkpoint_on_stop
        self._started = time.monotonic()
        self._first_step: int | None = None
        # (monotonic time, step, tokens seen) of recent steps, for a rate that follows the present.
        self._recent: deque[tuple[float, int, int]] = deque(maxlen=20)
        self.stopped_early = False
        self.last_train: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}
        self.last_eval_step: int | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self._first_step = state.global_step
        self._recent.append((time.monotonic(), state.global_step, int(state.num_input_tokens_seen or 0)))

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        now = time.monotonic()
        tokens = int(state.num_input_tokens_seen or 0)
        self._recent.append((now, state.global_step, tokens))
        t0, step0, tokens0 = self._recent[0]
        self._sink.emit(
            Progress(
                step=state.global_step,
                total_steps=state.max_steps,
                epoch=float(state.epoch or 0.0),
                tokens_per_second=(tokens - tokens0) / (now - t0) if now > t0 and tokens > tokens0 else None,
                elapsed_s=now - self._started,
                eta_s=time_left(state.max_steps - state.global_step, state.global_step - step0, now - t0),
            )
        )
        if self._stop.is_set() and state.global_step < state.max_steps:
            self.stopped_early = True
            control.should_save = self._checkpoint_on_stop
            control.should_training_stop = True

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        logs = logs or {}
        evals = {k: float(v) for k, v in logs.items() if k.startswith("eval_") and isinstance(v, int | float)}
        trains = {k: float(logs[k]) for k in _TRAIN_KEYS if isinstance(logs.get(k), int | float)}
        if evals:
            self.last_eval, self.last_eval_step = evals, state.global_step
            self._sink.emit(Metric(step=state.global_step, split="eval", values=evals))
        if trains:
            self.last_train = trains
            self._sink.emit(Metric(step=state.global_step, split="train", values=trains))

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        assert args.output_dir is not None  # the Trainer fills in its default before training
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if path.is_dir():  # every file is written: record their sizes, last, so a cut-short one is found
            write_marker(path, state.global_step)
        self._sink.emit(Artifact(kind="checkpoint", path=str(path), step=state.global_step))
