"""`resilience recover` (or `stage`) as a process of its own, exactly as users run it: for integration tests and
benchmarks, never shipped."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from foundation.waiting import poll


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG), so no operator outlives its
    test or benchmark even when that is killed."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """`resilience recover` (or `command`, e.g. `stage`: the stage controller) in a process of its own (new
    session), its log in a file, stopped with SIGTERM."""

    def __init__(
        self,
        kubeconfig: Path | str,
        *args: str,
        log: Path,
        env: dict[str, str] | None = None,
        command: str = "recover",
    ):
        self.port = free_port()
        self.command = command
        self.argv = [
            sys.executable,
            "-m",
            "resilience.cli",
            command,
            "--kubeconfig",
            str(kubeconfig),
            "--metrics-addr",
            f"127.0.0.1:{self.port}",
            *args,
        ]
        self.log_path = log
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> OperatorProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            process = self.process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl, which is async-signal-safe
            )

        def serving() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"resilience {self.command} exited with {process.returncode}: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2):
                    return True  # 200: connected, patterns and states read
            except OSError:  # not listening yet, or 503 while it waits for the API server
                return False

        if not poll(serving, timeout, interval=0.1):
            raise RuntimeError(f"resilience {self.command} was not ready within {timeout}s: {self.log()[-2000:]}")
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
            return str(response.read().decode())

    def sample(self, metric: str, /, **labels: str) -> float | None:
        """The value of one sample in /metrics (labels must match exactly the ones given, in any order)."""
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.metrics()):
            for s in family.samples:
                if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait; SIGKILL if it does not stop. Returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return int(self.process.returncode)

    def kill(self) -> None:
        """SIGKILL: no clean stop, the Lease is left to expire."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
