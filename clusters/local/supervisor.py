"""Run a cluster's processes the way a kubelet runs static pods: start, probe, restart with backoff, reap.

Each child is spawned through foundation.processes: its own process group (so a whole tree can be signalled),
a SIGKILL from the kernel if the supervisor itself dies, and here a pid file (so a sweeper can find it after any
crash). A crash is recorded in restarts.jsonl before the restart, which the controller-crash fault checks.
"""

from __future__ import annotations

import datetime
import json
import logging
import signal
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusters.local.components import ComponentSpec, Probe
from clusters.local.layout import ClusterLayout
from ctlruntime.timeparse import parse_time
from foundation import waiting
from foundation.errors import HarnessError
from foundation.processes import Child, ProcessRecord, http_ready, port_open, process_start_time, spawn, stop_all

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Kubelet-style restart delays: immediate first restart, then doubling to a cap; reset after a good run.

    The kubelet resets after 10 minutes up; 60 s keeps consecutive chaos scenarios independent.
    """

    first: float = 0.0
    base: float = 10.0
    cap: float = 300.0
    reset_after: float = 60.0

    def delay(self, consecutive: int) -> float:
        if consecutive <= 1:
            return self.first
        return float(min(self.cap, self.base * 2 ** (consecutive - 2)))


@dataclass
class _Child:
    spec: ComponentSpec
    proc: Child | None = None
    started: float = 0.0
    restarts: int = 0
    consecutive_crashes: int = 0
    restart_at: float | None = None
    held_until: float | None = None
    held: bool = False
    last_exit: int | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.running() else None


class ComponentExited(HarnessError):
    """A component exited while the cluster was starting: its log tail says why."""


class Supervisor:
    """Owns the child processes of one cluster; thread-safe for the control server."""

    def __init__(self, layout: ClusterLayout, specs: dict[str, ComponentSpec], backoff: Backoff | None = None):
        self.layout = layout
        self.specs = specs
        self.backoff = backoff or Backoff()
        self.children: dict[str, _Child] = {}
        self.restartable: set[str] = set()
        self.lock = threading.RLock()
        layout.pids_dir.mkdir(parents=True, exist_ok=True)
        layout.logs_dir.mkdir(parents=True, exist_ok=True)

    # -- starting and stopping -------------------------------------------------------------------------
    def start(self, name: str) -> None:
        with self.lock:
            spec = self.specs[name]
            child = self.children.setdefault(name, _Child(spec))
            if child.pid is not None:
                return
            log_path = self.layout.log(name)
            with log_path.open("a") as log_file:
                log_file.write(start_mark(name))
            child.proc = spawn(spec.argv, log=log_path, env=spec.env, cwd=spec.cwd or self.layout.root, what=name)
            child.started = time.monotonic()
            child.restart_at = None
            ProcessRecord(child.proc.pid, process_start_time(child.proc.pid), spec.argv[0]).write(
                self.layout.pid_file(name)
            )

    def start_all(self, names: Iterable[str]) -> None:
        for name in names:
            self.start(name)

    def stop(self, name: str, grace: float = 2.0) -> None:
        self.stop_many([name], grace)

    def stop_many(self, names: Iterable[str], grace: float = 2.0) -> None:
        """SIGTERM every named process group at once, SIGKILL what is left after `grace` seconds."""
        with self.lock:
            live = {n: self.children[n].proc for n in names if n in self.children and self.children[n].pid}
            stop_all([proc for proc in live.values() if proc is not None], grace)
            for name in live:
                self.layout.pid_file(name).unlink(missing_ok=True)

    def stop_all(self) -> None:
        with self.lock:
            names = list(self.children)
            self.stop_many(reversed(names))

    # -- faults and control ------------------------------------------------------------------------------
    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Signal a component as a crash would; the supervision loop restarts it. Returns the killed pid."""
        with self.lock:
            child = self.children.get(name)
            if child is None or child.pid is None:
                raise HarnessError(f"{name} is not running")
            assert child.proc is not None
            child.proc.signal(sig)
            return child.proc.pid

    def hold(self, name: str, seconds: float | None) -> None:
        """Stop a component and keep it down (for `seconds`, or until release): an outage, not a crash."""
        with self.lock:
            child = self.children[name]
            child.held = True
            child.held_until = time.monotonic() + seconds if seconds is not None else None
            self.stop(name, grace=0.5)

    def release(self, name: str) -> None:
        with self.lock:
            child = self.children[name]
            child.held = False
            child.held_until = None
            self.start(name)

    # -- supervision ----------------------------------------------------------------------------------
    def poll(self) -> list[str]:
        """Reap exits and (re)start what is due; returns the components that exited since the last poll."""
        exited: list[str] = []
        now = time.monotonic()
        with self.lock:
            for name, child in self.children.items():
                if child.held:
                    if child.held_until is not None and now >= child.held_until:
                        child.held = False
                        child.held_until = None
                        self.start(name)
                    continue
                if child.proc is not None and child.restart_at is None:
                    code = child.proc.poll()
                    if code is None:
                        if now - child.started >= self.backoff.reset_after:
                            child.consecutive_crashes = 0
                        continue
                    exited.append(name)
                    child.proc.signal(signal.SIGKILL)
                    child.last_exit = code
                    self.layout.pid_file(name).unlink(missing_ok=True)
                    if name in self.restartable:
                        child.consecutive_crashes += 1
                        delay = self.backoff.delay(child.consecutive_crashes)
                        child.restart_at = now + delay
                        self._record_restart(name, child, code, delay)
                    else:
                        child.proc = None  # reported once; its pid may belong to someone else soon
                if child.restart_at is not None and now >= child.restart_at:
                    child.restarts += 1
                    self.start(name)
        return exited

    def _record_restart(self, name: str, child: _Child, code: int, delay: float) -> None:
        event = {
            "component": name,
            "time": time.time(),
            "exit_code": code if code >= 0 else None,
            "signal": signal.Signals(-code).name if code < 0 else None,
            "restart_number": child.restarts + 1,
            "delay_seconds": delay,
            "pid": child.proc.pid if child.proc else None,
        }
        with self.layout.restarts_file.open("a") as fh:
            fh.write(json.dumps(event) + "\n")
        log.warning("%s exited (%s); restarting in %.0fs", name, event["signal"] or code, delay)

    def wait_ready(self, names: Iterable[str], timeout: float) -> None:
        """Block until every named component passes its probe; a component exiting fails at once."""
        pending = list(names)

        def unready() -> list[str]:
            nonlocal pending
            for name in self.poll():
                if name in pending or name not in self.restartable:
                    raise ComponentExited(f"{name} exited during start-up: {self.log_tail(name)}")
            pending = [n for n in pending if not probe(self.specs[n].probe)]
            return pending

        left = waiting.poll(unready, timeout, interval=0.1, done=lambda left: not left)
        if left:
            raise HarnessError(f"{', '.join(left)} not ready after {timeout:.0f}s: {self.log_tail(left[0])}")

    def log_tail(self, name: str, lines: int = 3) -> str:
        try:
            text = self.layout.log(name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(line.strip()[:300] for line in text[-lines:]) + f" (log: {self.layout.log(name)})"

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                name: {
                    "pid": child.pid,
                    "running": child.pid is not None,
                    "restarts": child.restarts,
                    "held": child.held,
                    "last_exit": child.last_exit,
                    "log": str(self.layout.log(name)),
                }
                for name, child in self.children.items()
            }


def start_mark(name: str, at: float | None = None) -> str:
    """The line the supervisor writes into a component's log before each start (RFC 3339, UTC, milliseconds)."""
    stamp = datetime.datetime.fromtimestamp(time.time() if at is None else at, datetime.UTC)
    return f"--- {stamp.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z starting {name}\n"


def started_at(line: str) -> float | None:
    """When a start mark says its process started (None: not a start mark)."""
    if not line.startswith("--- ") or " starting " not in line:
        return None
    return parse_time(line[4:].split(" ", 1)[0])


def probe(p: Probe, timeout: float = 1.0) -> bool:
    """One readiness check; never raises."""
    if p.tcp is not None:
        return port_open(*p.tcp, timeout=timeout)()
    if p.url is None:
        return True
    context: ssl.SSLContext | None = None
    statuses: tuple[int, ...] = (200,)
    if p.url.startswith("https"):
        # kube-controller-manager and kube-scheduler serve self-signed loopback certificates.
        context = ssl.create_default_context(cafile=str(p.ca)) if p.ca else ssl._create_unverified_context()  # noqa: S323
        if p.client_cert is not None:
            context.load_cert_chain(str(p.client_cert[0]), str(p.client_cert[1]))
        else:
            # kube-controller-manager and kube-scheduler answer 401/403 to anonymous probes once they serve.
            statuses = (200, 401, 403)
    return http_ready(p.url, timeout, context, statuses)()


def read_restarts(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []
