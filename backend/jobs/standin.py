"""A stand-in worker: speaks the job protocol like ``backend.jobs.worker`` but trains nothing.

    python -m backend.jobs.standin JOB_DIR [--resume] [--step-s SECONDS]

For the queue's tests, its soak benchmark and GUI work without the ML stack: the
runner takes it as its worker command. It runs ``training.max_steps`` steps (10
when unset) of ``--step-s`` seconds each, saves checkpoints laid out like the
trainer's (weights first, ``trainer_state.json`` last) every
``schedule.save_every_steps``, stops after the current step with a checkpoint
and exit status 3 on ``cancel.request`` or SIGTERM, resumes from the newest
valid checkpoint (setting damaged ones aside, failing when none is whole), and
writes a placeholder adapter marked ``"stand_in": true``.

A ``standin.json`` in the job folder scripts a failure, on a fresh run only (so a
resumed run finishes): ``{"fail_at": N, "error_type": "out_of_memory"}`` (error and
``done`` failed), ``{"die_at": N, "signal": "SIGSEGV"}`` (kills itself),
``{"exit_at": N, "code": 7}`` (exits without ``done``), ``{"garbage_at": N}`` (a
corrupt line in events.jsonl), ``{"torn_at": N}`` (half an event, then SIGKILL);
``{"ignore_stop": true}`` ignores stop requests, ``{"step_s": S}`` sets the pace.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Literal

from backend.core.events import Artifact, DeviceInfo, Done, Error, EventSink, Metric, Progress, Started
from backend.core.layout import ADAPTER_RECORD, JobLayout
from backend.core.spec import JobSpec
from backend.core.stop import requested_stop
from backend.training.checkpoints import NoValidCheckpoint, checkpoint_step, pick_checkpoint, write_marker

SCRIPT_FILE = "standin.json"
EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 3


class _Stop:
    def __init__(self, layout: JobLayout, ignore: bool) -> None:
        self._layout, self._ignore, self._signalled = layout, ignore, False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, _signum: int, _frame: object) -> None:
        self._signalled = True

    def requested(self) -> bool:
        return not self._ignore and (self._signalled or self._layout.cancel_request.exists())

    def status(self) -> Literal["cancelled", "paused"]:
        """As the real worker says it: ``paused`` when the request file asks for a pause."""
        paused = not self._signalled and requested_stop(self._layout.cancel_request) == "pause"
        return "paused" if paused else "cancelled"


def _save_checkpoint(layout: JobLayout, step: int, keep: int, sink: EventSink) -> None:
    folder = layout.checkpoints / f"checkpoint-{step}"
    folder.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (folder / "adapter_model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    write_marker(folder, step)
    saved = sorted((checkpoint_step(p) or 0, p) for p in layout.checkpoints.iterdir() if checkpoint_step(p))
    for _, old in saved[:-keep]:
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    sink.emit(Artifact(kind="checkpoint", path=str(folder), step=step))


def _save_adapter(spec: JobSpec, layout: JobLayout, step: int) -> Path:
    final = Path(spec.output_dir) if spec.output_dir else layout.adapter
    tmp = final.with_name(f".{final.name}.partial")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "adapter_config.json").write_text(json.dumps({"stand_in": True}))
    (tmp / "adapter_model.safetensors").write_bytes(b"stand-in weights")
    (tmp / ADAPTER_RECORD).write_text(json.dumps({"stand_in": True, "name": spec.name, "steps": step}))
    tmp.replace(final)
    return final


def _misbehave(script: dict[str, Any], step: int, sink: EventSink, layout: JobLayout) -> int | None:
    """Run the scripted failure due at ``step``; an exit status when the worker should end now."""
    if script.get("garbage_at") == step:
        with layout.events.open("ab") as handle:
            handle.write(b'{"v": 1, "type": "progress", "st\x00\xff garbage\n')
    if script.get("torn_at") == step:
        with layout.events.open("ab") as handle:
            handle.write(b'{"v": 1, "type": "progress", "step": ')
        os.kill(os.getpid(), signal.SIGKILL)
    if script.get("die_at") == step:
        os.kill(os.getpid(), signal.Signals[script.get("signal", "SIGKILL")])
        time.sleep(5)  # a handled or delayed signal must not let the run go on
    if script.get("exit_at") == step:
        return int(script.get("code", 7))
    if script.get("fail_at") == step:
        kind = script.get("error_type", "internal")
        sink.emit(Error(error_type=kind, message=f"stand-in failure ({kind})", hint="a scripted failure"))
        return EXIT_FAILED
    return None


def run(layout: JobLayout, resume: bool, step_s: float) -> int:
    spec = JobSpec.load(layout.spec)
    script_file = layout.root / SCRIPT_FILE
    script = json.loads(script_file.read_text()) if script_file.is_file() else {}
    stop = _Stop(layout, ignore=bool(script.get("ignore_stop")))
    refused: NoValidCheckpoint | None = None
    try:  # like the worker: damaged checkpoints are set aside, and none whole is a typed failure
        checkpoint = pick_checkpoint(layout.checkpoints).path if resume else None
    except NoValidCheckpoint as exc:
        checkpoint, refused = None, exc
    if resume:
        script = {key: value for key, value in script.items() if key in ("ignore_stop", "step_s")}
    sink = EventSink(layout.events, sys.stdout)
    try:
        sink.emit(
            Started(
                job_kind=spec.kind,
                pid=os.getpid(),
                resumed_from_step=checkpoint_step(checkpoint) if checkpoint else None,
                versions={"python": sys.version.split()[0], "lora-studio": "stand-in"},
                device=DeviceInfo(kind="cpu", name="stand-in"),
            )
        )
        if refused is not None:
            sink.emit(Error(error_type="data", message=str(refused), hint=refused.hint))
            sink.emit(Done(status="failed", duration_s=0.0))
            return EXIT_FAILED
        start = (checkpoint_step(checkpoint) or 0) if checkpoint else 0
        return _steps(spec, layout, sink, stop, script, start, float(script.get("step_s", step_s)))
    finally:
        sink.close()


def _steps(
    spec: JobSpec, layout: JobLayout, sink: EventSink, stop: _Stop, script: dict[str, Any], start: int, step_s: float
) -> int:
    began = time.monotonic()
    total = spec.training.max_steps or 10
    keep, every = spec.schedule.keep_checkpoints, spec.schedule.save_every_steps
    step = start
    while step < total:
        if stop.requested():
            if step > start:
                _save_checkpoint(layout, step, keep, sink)
            sink.emit(Done(status=stop.status(), step=step, duration_s=time.monotonic() - began))
            return EXIT_CANCELLED
        time.sleep(step_s)
        step += 1
        elapsed = time.monotonic() - began
        sink.emit(Progress(step=step, total_steps=total, epoch=step / total, elapsed_s=elapsed))
        sink.emit(Metric(step=step, split="train", values={"loss": 2.0 / (1 + step), "learning_rate": 1e-4}))
        if (code := _misbehave(script, step, sink, layout)) is not None:
            if code == EXIT_FAILED:
                sink.emit(Done(status="failed", step=step, duration_s=time.monotonic() - began))
            return code
        if step % every == 0 or step == total:
            _save_checkpoint(layout, step, keep, sink)
    adapter = _save_adapter(spec, layout, step)
    sink.emit(Artifact(kind="adapter", path=str(adapter), step=step))
    sink.emit(Done(status="succeeded", step=step, duration_s=time.monotonic() - began, adapter_path=str(adapter)))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.jobs.standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("job_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--step-s", type=float, default=0.01, help="seconds per step")
    args = parser.parse_args(argv)
    return run(JobLayout(args.job_dir.resolve()), args.resume, args.step_s)


if __name__ == "__main__":
    sys.exit(main())
