"""One ``lora-studio`` command run in a child process, for work the GUI process must not do itself.

Anything that needs a tokenizer imports transformers, which the GUI never loads: the page runs
``python -m backend.cli …`` instead and reads its JSON. ``CliJob`` wraps a ``QProcess``: it
collects stdout whole (the JSON), keeps the end of stderr (the reason when it fails), decodes
both with ``errors='replace'``, and reports one ``CliOutcome`` per run. Starting a new run
drops the one before it; ``cancel`` stops it and ``shutdown`` makes sure nothing outlives the page.

A long-lived command that answers requests (``data preview --serve``) runs with ``lines=True``:
each complete stdout line is emitted as it arrives (a line split across two reads is buffered,
not broken) instead of being collected, and ``send`` writes a request to its stdin.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

_STDOUT_LIMIT = 256 << 20  # a report keeps at most 1,000 problems per rule: far below this
_STDERR_KEPT = 16 << 10
_SHOWN_CHARS = 600
_TERMINATE_WAIT_MS = 2000


@dataclass(frozen=True)
class CliOutcome:
    """How one run ended: its exit code (None when it was stopped or never started) and its output."""

    args: tuple[str, ...]
    exit_code: int | None
    stdout: str
    stderr: str
    """The last 16 KiB of it."""
    cancelled: bool = False
    start_error: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.cancelled

    def error_text(self, what: str = "The command") -> str:
        """Why it failed, in words a person can act on: the command's own ``error:`` line when it
        printed one, else the last line of its output (a traceback's last line names the error)."""
        if self.start_error:
            return f"{what} could not start: {self.start_error}"
        if self.cancelled:
            return f"{what} was cancelled."
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        said = next((line.removeprefix("error:").strip() for line in reversed(lines) if line.startswith("error:")), "")
        if not said and lines:
            said = lines[-1]
        if not said:
            said = f"it stopped with exit code {self.exit_code}" if self.exit_code is not None else "it crashed"
        said = said[:1].upper() + said[1:]
        return said if len(said) <= _SHOWN_CHARS else said[: _SHOWN_CHARS - 1] + "…"


class CliJob(QObject):
    """Runs ``python -m backend.cli ARGS`` one at a time; ``finished`` carries each run's ``CliOutcome``."""

    finished = Signal(object)  # CliOutcome
    runningChanged = Signal(bool)
    lineRead = Signal(str)  # with lines=True: each line of stdout, without its newline

    def __init__(
        self, parent: QObject | None = None, *, environment: Mapping[str, str] | None = None, lines: bool = False
    ) -> None:
        super().__init__(parent)
        self._environment = dict(environment or {})
        self._lines = lines
        self._process: QProcess | None = None
        self._args: tuple[str, ...] = ()
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._too_much = False
        self._cancelled = False

    def start(self, args: Sequence[str]) -> None:
        """Run ``lora-studio ARGS`` in a child process; a run still going is stopped and forgotten."""
        self._drop_process()
        self._args = tuple(args)
        self._stdout.clear()
        self._stderr.clear()
        self._too_much = self._cancelled = False
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONIOENCODING", "utf-8")
        environment.insert("TOKENIZERS_PARALLELISM", "false")
        for name, value in self._environment.items():
            environment.insert(name, value)
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self._process = process
        process.start(sys.executable, ["-m", "backend.cli", *self._args])
        self.runningChanged.emit(True)

    def is_running(self) -> bool:
        return self._process is not None

    def send(self, text: str) -> None:
        """Write ``text`` to the run's stdin (a request to a serving command); nothing when none is running."""
        if self._process is not None:
            self._process.write(text.encode("utf-8"))

    def cancel(self) -> None:
        """Stop the run; ``finished`` follows with ``cancelled`` set."""
        process = self._process
        if process is None:
            return
        self._cancelled = True
        process.terminate()
        if not process.waitForFinished(_TERMINATE_WAIT_MS):
            process.kill()
            process.waitForFinished(_TERMINATE_WAIT_MS)

    def shutdown(self) -> None:
        """Stop the run without reporting it: the page is closing."""
        if self._process is not None:
            self._drop_process()
            self.runningChanged.emit(False)

    # -- internals ---------------------------------------------------------------------------

    def _drop_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for signal in (
            process.readyReadStandardOutput,
            process.readyReadStandardError,
            process.finished,
            process.errorOccurred,
        ):
            signal.disconnect()
        if process.state() != QProcess.ProcessState.NotRunning:
            process.kill()
            process.waitForFinished(_TERMINATE_WAIT_MS)
        process.deleteLater()

    def _read_stdout(self) -> None:
        process = self._process
        if process is None:
            return
        data = process.readAllStandardOutput().data()
        if len(self._stdout) + len(data) > _STDOUT_LIMIT:
            self._too_much = True
            return
        self._stdout += data
        if not self._lines:
            return
        *complete, rest = self._stdout.split(b"\n")
        self._stdout[:] = rest
        for line in complete:
            if self._process is not process:
                return  # a slot started another run or shut this one down
            self.lineRead.emit(line.decode("utf-8", errors="replace").rstrip("\r"))

    def _read_stderr(self) -> None:
        if self._process is None:
            return
        self._stderr += self._process.readAllStandardError().data()
        if len(self._stderr) > _STDERR_KEPT:
            del self._stderr[: len(self._stderr) - _STDERR_KEPT]

    def _finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        crashed = status == QProcess.ExitStatus.CrashExit
        stderr = self._stderr.decode("utf-8", errors="replace")
        if self._too_much:
            stderr += "\nerror: the command printed more than 256 MB; nothing was read"
        self._report(None if crashed or self._too_much else exit_code, stderr)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            self._report(None, "", start_error=self._process.errorString())

    def _report(self, exit_code: int | None, stderr: str, start_error: str = "") -> None:
        outcome = CliOutcome(
            args=self._args,
            exit_code=exit_code,
            stdout=self._stdout.decode("utf-8", errors="replace"),
            stderr=stderr,
            cancelled=self._cancelled,
            start_error=start_error,
        )
        process, self._process = self._process, None
        if process is not None:
            process.deleteLater()
        self.runningChanged.emit(False)
        self.finished.emit(outcome)
