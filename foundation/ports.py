"""Free loopback ports, found by binding port 0: every process the project starts beside itself serves on one."""

from __future__ import annotations

import errno
import socket


def ephemeral_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (another process may still take it before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether `port` can be bound on `host` now; other errors than in-use or refused are raised."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True
