"""Readiness for the supervisor, in systemd's sd_notify protocol (NOTIFY_SOCKET, "READY=1")."""

from __future__ import annotations

import os
import socket


def notify_ready() -> None:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]  # an abstract socket, as systemd allows
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"READY=1\nMAINPID={os.getpid()}".encode(), path)
