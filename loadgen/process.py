"""The load process(es) seen from the harness: start them, notice if they die, stop them gracefully, read results.

The users run in processes of their own (`python -m loadgen.locustrun`): locust monkey-patches the process it is
imported into with gevent, which the test session's threads (watches, the recorder) must not be. With
`workers`, locust's own master/worker mode spreads the users over that many processes (the same protocol works
across machines). Every process is tied to the harness (it dies with it) and runs in a session of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import HarnessError, UserError
from foundation.ports import ephemeral_port
from foundation.processes import Child, spawn, stop_all
from foundation.waiting import poll, wait_until
from loadgen.spec import CHECK_EXIT, CSV_PREFIX, HTML, PROCESS, STATE, LoadSpec

CHECK_TIMEOUT = 60.0
STOP_GRACE = 30.0  # beyond the deadline the users may still be waiting for


def _proc_stats() -> dict[int, tuple[int, float, float]]:
    """pid -> (parent pid, CPU seconds of its own, CPU seconds of its reaped children) of every process."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        own, reaped = (int(fields[11]) + int(fields[12])) / ticks, (int(fields[13]) + int(fields[14])) / ticks
        out[int(entry.name)] = (int(fields[1]), own, reaped)
    return out


def check_locustfile(path: str) -> str | None:
    """What is wrong with a user's locustfile, found in a process of its own (importing it imports locust)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "loadgen.locustrun", "--check", path],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"{path}: importing it took more than {CHECK_TIMEOUT:.0f}s"
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    if proc.returncode == CHECK_EXIT and lines:
        return lines[-1]
    raise UserError(f"cannot check {path}: the load process exited with {proc.returncode}: {' | '.join(lines[-3:])}")


@dataclass
class LoadProcess:
    """The writer (local runner, or master) and its workers."""

    spec: LoadSpec
    workers: int = 0
    processes: list[Child] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return Path(self.spec.out)

    def start(self, timeout: float = 90.0) -> LoadProcess:
        """Spawn the processes and wait until every user is spawned (HarnessError with the log if not)."""
        spec_path = self.spec.write(self.out / "spec.json")
        port = ephemeral_port() if self.workers else 0
        argv = [sys.executable, "-m", "loadgen.locustrun", str(spec_path)]
        self._spawn([*argv, "--master", str(self.workers), "--port", str(port)] if self.workers else argv, "writer")
        for index in range(self.workers):
            self._spawn([*argv, "--worker", "--port", str(port)], f"worker-{index + 1}")

        def running() -> bool:
            self.check_alive()
            return self.state() == "running"

        wait_until(running, timeout, "the load process to spawn its users", interval=0.2, detail=self.log_tail)
        return self

    def _spawn(self, argv: list[str], role: str) -> None:
        log = self.out / f"locust-{role}.log"
        self.processes.append(spawn(argv, log=log, env=self.spec.env, what=f"the load process ({role})"))

    def state(self) -> str | None:
        try:
            return str(json.loads((self.out / STATE).read_text())["state"])
        except (OSError, ValueError, KeyError):
            return None

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise HarnessError(f"the load process exited with {process.returncode}: {self.log_tail()}")

    def log_tail(self, lines: int = 6) -> str:
        path = self.out / "locust-writer.log"
        if not path.exists():
            return "(no log)"
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the writer: users stop committing, deliveries in flight end, reports are written; then the
        workers (by then they sent every delivery); SIGKILL whatever is left after the grace. Never raises."""
        if not self.processes:
            return
        writer, workers = self.processes[0], self.processes[1:]
        if writer.running():
            writer.signal(signal.SIGTERM)
        writer.wait(self.spec.deadline + STOP_GRACE)
        for worker in workers:
            if worker.running():
                worker.signal(signal.SIGTERM)
        poll(lambda: not any(p.running() for p in self.processes), STOP_GRACE, 0.25)
        stop_all(self.processes, grace=0.0)  # SIGKILL whatever is left

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds used so far by the load processes themselves, and by their helpers: the committer and the
        git commands it ran (children, living or reaped), from /proc."""
        pids = {p.pid for p in self.processes if p.poll() is None}
        own = helpers = 0.0
        for pid, (ppid, mine, reaped) in _proc_stats().items():
            if pid in pids:
                own, helpers = own + mine, helpers + reaped
            elif ppid in pids:
                helpers += mine + reaped
        return own, helpers

    def usage(self) -> dict[str, float]:
        """CPU seconds of the load processes and their git children over their whole life (start-up included),
        and the writer's wall time, as the processes reported them when they stopped."""
        total = {"wall_seconds": 0.0, "cpu_seconds": 0.0, "children_cpu_seconds": 0.0}
        for path in [self.out / PROCESS, *sorted(self.out.glob("process-worker-*.json"))]:
            try:
                body: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            total["wall_seconds"] = max(total["wall_seconds"], float(body.get("wall_seconds", 0)))
            for key in ("cpu_seconds", "children_cpu_seconds"):
                total[key] += float(body.get(key, 0))
        return total

    def files(self) -> dict[str, Path]:
        """locust's CSV statistics and HTML report, as far as they were written."""
        names = {
            "locust stats (CSV)": f"{CSV_PREFIX}_stats.csv",
            "locust stats history (CSV)": f"{CSV_PREFIX}_stats_history.csv",
            "locust failures (CSV)": f"{CSV_PREFIX}_failures.csv",
            "locust report (HTML)": HTML,
        }
        return {label: self.out / name for label, name in names.items() if (self.out / name).exists()}
