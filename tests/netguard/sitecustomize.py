"""Loaded by a worker started with this folder on PYTHONPATH: refuses and records every network attempt.

A connection to anything but this machine (loopback, a Unix socket) and a name lookup of
anything but localhost are written to the file ``LORA_STUDIO_NET_GUARD`` names, then
refused with an OSError, as a machine without network would. The first line says the guard
was loaded, so a test can tell "no attempt" from "no guard".
"""

from __future__ import annotations

import ipaddress
import os
import socket
import traceback

_LOG = os.environ.get("LORA_STUDIO_NET_GUARD")


def _record(what: str) -> None:
    if _LOG:
        stack = "".join(traceback.format_stack(limit=12)[:-2])
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"ATTEMPT {what}\n{stack}\n")


def _local_host(host: object) -> bool:
    if host is None or host in ("localhost", b"localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host)).is_loopback
    except ValueError:
        return False


def _local_address(family: int, address: object) -> bool:
    if family == getattr(socket, "AF_UNIX", None) or not isinstance(address, tuple):
        return True
    return _local_host(address[0])


if _LOG:
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"guard loaded in pid {os.getpid()}\n")

    _connect = socket.socket.connect
    _connect_ex = socket.socket.connect_ex
    _getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        if not _local_address(self.family, address):
            _record(f"connect {address!r}")
            raise OSError(101, "Network is unreachable (LoRA Studio test guard)")
        _connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        if not _local_address(self.family, address):
            _record(f"connect_ex {address!r}")
            return 101
        return _connect_ex(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if not _local_host(host):
            _record(f"getaddrinfo {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (LoRA Studio test guard)")
        return _getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
