"""Processes the queue tracks: who is alive, how one ended, and how to stop a group.

A pid alone is not an identity: after a reboot or a long time the number is
reused. The queue stores the pid with the process's creation time (psutil), and
a process counts as "ours" only when both match.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import psutil

_CREATE_TIME_TOLERANCE_S = 0.01


@dataclass(frozen=True)
class ProcessId:
    pid: int
    created: float

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        """The identity of a live process, or None if there is none with this pid."""
        try:
            return cls(pid, psutil.Process(pid).create_time())
        except psutil.Error:
            return None

    @classmethod
    def current(cls) -> ProcessId:
        own = cls.of(os.getpid())
        assert own is not None
        return own

    def alive(self) -> bool:
        """True while this very process runs; a zombie (exited, not yet reaped) is not running."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.created) > _CREATE_TIME_TOLERANCE_S:
                return False
            return bool(process.status() != psutil.STATUS_ZOMBIE)  # psutil is untyped
        except psutil.Error:
            return False


def find_worker(folder: Path) -> ProcessId | None:
    """A live process whose command line names this job folder.

    Used only when a runner died between starting a worker and recording its pid.
    """
    target = str(folder)
    for process in psutil.process_iter(["cmdline", "create_time", "status"]):
        info = process.info
        if target in (info["cmdline"] or ()) and info["status"] != psutil.STATUS_ZOMBIE:
            return ProcessId(process.pid, info["create_time"])
    return None


def signal_group(worker: ProcessId, signum: int) -> bool:
    """Signal the worker's process group (it leads its own session); False if it is gone."""
    if not worker.alive():
        return False
    try:
        os.killpg(worker.pid, signum)
    except ProcessLookupError:
        return False
    return True


def oom_kill_count() -> int | None:
    """How many processes the out-of-memory killer has killed in this process's memory cgroup.

    Read before and after a worker runs: a rise while it died of SIGKILL points at the
    OOM killer. None where the cgroup does not say (not Linux, no access).
    """
    for path in _memory_event_files():
        try:
            for line in path.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


def _memory_event_files() -> list[Path]:
    root = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    files: list[Path] = []
    for line in lines:
        _, controllers, group = line.split(":", 2)
        group = group.lstrip("/")
        if controllers == "":  # cgroup v2
            files += [root / group / "memory.events", root / "memory.events"]
        elif "memory" in controllers.split(","):  # cgroup v1; in a container the group may be the mount's root
            files += [root / "memory" / group / "memory.oom_control", root / "memory" / "memory.oom_control"]
    return files


@dataclass(frozen=True)
class ExitInfo:
    """How a worker process ended, as far as its watcher can know."""

    code: int | None
    """The exit status (negative: killed by that signal); None when the watcher was not its parent."""
    oom_killed: bool | None = None
    """Whether the cgroup's OOM-kill count rose while it ran; None when unknown."""
    reattached: bool = False
    """A runner that re-attached to the worker (not its parent) saw it end; False when no runner saw it."""

    @property
    def signal_name(self) -> str | None:
        if self.code is None or self.code >= 0:
            return None
        try:
            return signal.Signals(-self.code).name
        except ValueError:
            return f"signal {-self.code}"
