"""The supervisor's control channel: one JSON request and one JSON answer per connection, on a Unix socket.

Fault injectors use it to crash a controller or hold the git server down; `cluster status` uses it to read
live process state. The socket lives in the abstract namespace, so nothing on disk can go stale.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from clusters.local.supervisor import Supervisor
from foundation.errors import HarnessError

_MAX_REQUEST = 65536


class ControlServer:
    """Serves requests against a Supervisor from a daemon thread."""

    def __init__(self, address: str, sup: Supervisor, on_shutdown: Callable[[], None]):
        self.sup = sup
        self.on_shutdown = on_shutdown
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(16)
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop serving: shutdown wakes the thread blocked in accept(), close releases the address."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    request = json.loads(conn.recv(_MAX_REQUEST).decode())
                    answer = {"ok": True, "result": self.handle(request)}
                except Exception as e:
                    answer = {"ok": False, "error": str(e)}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(answer).encode())

    def handle(self, request: dict[str, Any]) -> Any:
        op = request.get("op")
        component = str(request.get("component", ""))
        if op == "status":
            return self.sup.status()
        if component and component not in self.sup.specs:
            raise HarnessError(f"unknown component {component!r}; known: {', '.join(self.sup.specs)}")
        if op == "kill":
            return {"pid": self.sup.kill(component, int(request.get("signal", signal.SIGKILL)))}
        if op == "hold":
            seconds = request.get("seconds")
            self.sup.hold(component, float(seconds) if seconds is not None else None)
            return {}
        if op == "release":
            self.sup.release(component)
            return {}
        if op == "shutdown":
            self.on_shutdown()
            return {}
        raise HarnessError(f"unknown control op {op!r}")


def request(address: str, op: str, timeout: float = 10.0, **fields: Any) -> Any:
    """Send one request to a cluster's supervisor; HarnessError when it is not running or refuses."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            sock.sendall(json.dumps({"op": op, **fields}).encode())
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError as e:
            raise HarnessError(f"cluster supervisor not reachable ({e}); is the cluster up?") from e
    answer = json.loads(b"".join(chunks).decode())
    if not answer.get("ok"):
        raise HarnessError(str(answer.get("error")))
    return answer.get("result")
