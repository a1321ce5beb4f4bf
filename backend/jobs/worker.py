"""The worker process: runs one job from its folder and streams events.

    python -m backend.jobs.worker JOB_DIR [--resume]

The job folder holds ``spec.yaml``; the worker appends events to
``events.jsonl`` and prints the same lines on stdout. Nothing else reaches
stdout: library output is moved to stderr, which the launcher sends to
``worker.log``. The spec's ``kind`` says what the job does (``backend.jobs.job_kinds``).
It stops when ``cancel.request`` appears in the folder or on SIGTERM/SIGINT: a
training job at the next step, with a checkpoint; the other kinds at the next
tensor, step or prompt, keeping nothing partial.

Exit status: 0 succeeded, 1 failed (an ``error`` event says why), 2 bad
invocation, 3 cancelled.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from backend.core.events import Done, Error, EventSink, Telemetry
from backend.core.layout import JobLayout
from backend.core.openmp import prefer_passive_waits
from backend.core.stop import Cancelled, StopRequest, requested_stop
from backend.core.task_specs import load_spec
from backend.core.telemetry import Sampler
from backend.jobs.failures import classify
from backend.jobs.job_kinds import run_kind, started_event
from backend.jobs.offline import close_hub_kernels

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 3
_CANCEL_POLL_S = 0.5
RESERVE_NAME = "space.reserve"
"""In the job folder while the worker runs: room it gives back to report that the disk is full."""
RESERVE_BYTES = 256 * 1024


def _hold_reserve(layout: JobLayout) -> Path | None:
    """Claim a few hundred KiB of real disk blocks; None when even that does not fit (the job will say why)."""
    path = layout.root / RESERVE_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError:
        return None
    try:
        block = b"\0" * 65536
        for _ in range(RESERVE_BYTES // len(block)):
            if os.write(fd, block) != len(block):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        os.fsync(fd)
    except OSError:
        os.close(fd)
        _release_reserve(path)
        return None
    os.close(fd)
    return path


def _release_reserve(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _last_words(text: str) -> None:
    """To stderr, which the launcher sends to worker.log: read when events.jsonl could not take the error."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def _telemetry(sink: EventSink, reading: Telemetry) -> None:
    """A reading the file cannot take is dropped: the training loop's next event meets the same fault and
    fails the job with its type."""
    try:
        sink.emit(reading)
    except OSError as exc:
        _last_words(f"telemetry not written: {exc}")


def _report(sink: EventSink, *events: Error | Done) -> None:
    for event in events:
        try:
            sink.emit(event)
        except OSError as exc:
            _last_words(f"could not write the {event.type} event to events.jsonl: {exc}")


def _claim_stdout() -> TextIO:
    """Keep the real stdout for events and point fd 1 at stderr for everything else.

    Libraries print progress bars and notices; one stray line in the event stream
    would be garbage to the reader, so only this handle may write to the pipe.
    """
    events = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return events


def _watch_cancel(layout: JobLayout, stop: StopRequest, done: threading.Event) -> None:
    while not done.wait(_CANCEL_POLL_S):
        if layout.cancel_request.exists():
            stop.set(requested_stop(layout.cancel_request))
            return


def run_job(layout: JobLayout, resume: bool, stream: TextIO | None) -> int:
    try:
        sink = EventSink(layout.events, stream)
    except OSError as exc:  # the folder cannot be written: the error still reaches stdout and worker.log
        error = classify(exc, layout)
        _last_words(f"job failed ({error.error_type}): {error.message}\nwhat to do: {error.hint}")
        _report(EventSink(None, stream), error, Done(status="failed", duration_s=0.0))
        return EXIT_FAILED
    reserve = _hold_reserve(layout)
    stop = StopRequest()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda num, _frame: stop.set(signal.Signals(num).name))
    finished = threading.Event()
    threading.Thread(target=_watch_cancel, args=(layout, stop, finished), daemon=True, name="cancel").start()
    started = time.monotonic()
    sampler: Sampler | None = None
    try:
        spec = load_spec(layout.spec)
        sink.emit(started_event(spec, layout, resume))
        sampler = Sampler(lambda reading: _telemetry(sink, reading))
        sampler.start()
        try:
            result = run_kind(spec, layout, sink, stop, resume)
        except Cancelled:
            sink.emit(Done(status=stop.status, duration_s=time.monotonic() - started))
            return EXIT_CANCELLED
        sink.emit(
            Done(
                status=stop.status if result.status == "cancelled" else result.status,
                step=result.step,
                duration_s=time.monotonic() - started,
                metrics=result.metrics,
                adapter_path=str(result.adapter_path) if result.adapter_path else None,
                output_path=str(result.output_path) if result.output_path else None,
            )
        )
        return EXIT_OK if result.status == "succeeded" else EXIT_CANCELLED
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the event stream typed
        if isinstance(exc, KeyboardInterrupt | SystemExit) and stop.is_set():
            sink.emit(Done(status=stop.status, duration_s=time.monotonic() - started))
            return EXIT_CANCELLED
        error = classify(exc, layout)  # before the reserve is freed: the free space it reports is the user's
        _release_reserve(reserve)  # room to report the failure, if the disk is full
        reserve = None
        if sampler is not None:
            sampler.stop()  # no telemetry line may take the room the error needs
            sampler = None
        hint = f"\nwhat to do: {error.hint}" if error.hint else ""
        _last_words(f"job failed ({error.error_type}): {error.message}{hint}\n{type(exc).__name__}: {exc}")
        _report(sink, error, Done(status="failed", duration_s=time.monotonic() - started))
        return EXIT_FAILED
    finally:
        finished.set()
        if sampler is not None:
            sampler.stop()
        _release_reserve(reserve)
        sink.close()


class _OptionalHubKernelNotice(logging.Filter):
    """bitsandbytes tries, on CPUs with AVX512-BF16, a 4-bit matmul kernel that the ``kernels`` package would
    download from the Hugging Face Hub, and warns when that package is absent. LoRA Studio downloads nothing at
    run time and bitsandbytes falls back to its own kernel, so the warning only alarms readers of worker.log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "from kernels-community" not in record.getMessage()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.jobs.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("job_dir", type=Path, help="the job folder holding spec.yaml")
    parser.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    args = parser.parse_args(argv)
    prefer_passive_waits()  # before torch is first imported, which happens only after this point
    close_hub_kernels()  # before transformers or bitsandbytes is imported
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_OptionalHubKernelNotice())
    layout = JobLayout(args.job_dir.resolve())
    if not layout.spec.is_file():
        print(f"no spec.yaml in {layout.root}", file=sys.stderr)
        return EXIT_USAGE
    return run_job(layout, args.resume, _claim_stdout())


if __name__ == "__main__":
    sys.exit(main())
