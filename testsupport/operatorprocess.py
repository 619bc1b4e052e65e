"""`resilience recover` (or `stage`) as a process of its own, exactly as users run it: for integration tests and
benchmarks, never shipped. Spawned, awaited and stopped by foundation.processes, the one supervisor."""

from __future__ import annotations

import signal
import sys
import urllib.request
from pathlib import Path

from foundation.ports import ephemeral_port
from foundation.processes import Child, http_ready, spawn


class OperatorProcess:
    """`resilience recover` (or `command`, e.g. `stage`: the stage controller) in a process group of its own, its
    log in a file, SIGTERMed when this process dies (no operator outlives its test or benchmark), stopped with
    SIGTERM."""

    def __init__(
        self,
        kubeconfig: Path | str,
        *args: str,
        log: Path,
        env: dict[str, str] | None = None,
        command: str = "recover",
    ):
        self.port = ephemeral_port()
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
        self.env = dict(env or {})
        self.child: Child | None = None

    def start(self, timeout: float = 30.0) -> OperatorProcess:
        """Spawn it and wait for /readyz (200: connected, patterns and states read; 503 while it waits for the API
        server); ProcessExited or WaitTimeout, with the log tail, otherwise."""
        what = f"resilience {self.command}"
        self.child = spawn(self.argv, log=self.log_path, env=self.env, what=what, die_with_parent=signal.SIGTERM)
        self.child.wait_ready(http_ready(f"http://127.0.0.1:{self.port}/readyz", timeout=2), timeout)
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
        assert self.child is not None
        return self.child.pid

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait up to `timeout` seconds; SIGKILL if it does not stop. Returns the exit code."""
        if self.child is None:
            return 0
        code = self.child.stop(grace=timeout)
        return 0 if code is None else code

    def kill(self) -> None:
        """SIGKILL: no clean stop, the Lease is left to expire."""
        if self.child is not None and self.child.running():
            self.child.signal(signal.SIGKILL)
            self.child.wait(5.0)

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
