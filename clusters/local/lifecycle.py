"""Starting, finding and removing supervisor daemons and their cluster directories.

Shared by every provider that runs processes on this host: the local provider (the whole cluster) and the
kind/existing providers (the git and chart servers their Flux pulls from).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clusters
from clusters.local import control
from clusters.local.layout import ClusterLayout
from clusters.local.supervisor import read_restarts
from clusters.paths import state_root
from foundation.errors import HarnessError
from foundation.processes import Child, ProcessRecord, alive, process_start_time, terminate
from foundation.processes import spawn as spawn_process
from foundation.waiting import poll


@dataclass(frozen=True)
class LocalControl:
    """ComponentControl through the supervisor's control socket."""

    layout: ClusterLayout

    def kill(self, component: str, signal: int = 9) -> int:
        return int(control.request(self.layout.control_socket, "kill", component=component, signal=signal)["pid"])

    def hold(self, component: str, seconds: float | None = None) -> None:
        control.request(self.layout.control_socket, "hold", component=component, seconds=seconds)

    def release(self, component: str) -> None:
        control.request(self.layout.control_socket, "release", component=component)

    def restarts(self) -> list[dict[str, Any]]:
        return read_restarts(self.layout.restarts_file)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = control.request(self.layout.control_socket, "status")
        return result

    def command_line(self, component: str) -> list[str] | None:
        """The running process's own command line (from /proc: what runs, not what was meant to), or None."""
        pid = (self.status().get(component) or {}).get("pid")
        try:
            raw = Path(f"/proc/{int(pid)}/cmdline").read_bytes() if pid else b""
        except OSError:
            return None
        return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg] or None


def supervisor(layout: ClusterLayout) -> ProcessRecord | None:
    """The cluster's live supervisor process, or None."""
    record = ProcessRecord.read(layout.supervisor_pid_file)
    return record if record is not None and record.alive() else None


def reap(layout: ClusterLayout) -> None:
    """Stop the supervisor and every process the cluster's pid files name, then delete the directory."""
    record = ProcessRecord.read(layout.supervisor_pid_file)
    if record is not None:
        terminate(record, grace=4.0)
    if layout.pids_dir.is_dir():
        for pid_file in layout.pids_dir.glob("*.pid"):
            child = ProcessRecord.read(pid_file)
            if child is not None:
                terminate(child, grace=1.0)
    shutil.rmtree(layout.root, ignore_errors=True)


def preparer() -> dict[str, int | None]:
    """The process setting a cluster directory up (this one), for its spec: while it lives, the directory is not
    stale even before its supervisor runs (parallel workers start clusters side by side, and on a loaded host
    certificates, the git repository and the charts can take longer than the sweeper's grace)."""
    return {"pid": os.getpid(), "start_time": process_start_time(os.getpid())}


def _being_prepared(layout: ClusterLayout) -> bool:
    record = layout.read_spec().get("preparer") or {}
    pid = record.get("pid") if isinstance(record, dict) else None
    return isinstance(pid, int) and alive(pid, record.get("start_time"))


def sweep_stale(layouts: list[ClusterLayout], min_age: float = 5.0) -> list[str]:
    """Remove clusters whose supervisor is gone (a crashed run, a reboot); returns their names.

    A directory whose preparer still runs, or younger than `min_age`, may belong to an `up` that has not started
    its supervisor yet.
    """
    swept = []
    for layout in layouts:
        if supervisor(layout) is None and not _being_prepared(layout) and _age(layout) > min_age:
            reap(layout)
            swept.append(layout.name)
    return swept


def _age(layout: ClusterLayout) -> float:
    try:
        return time.time() - layout.root.stat().st_mtime
    except OSError:
        return 0.0


def keep_failed_logs(layout: ClusterLayout) -> Path:
    """Copy a failed cluster's logs out of its directory (which is about to be removed)."""
    target = state_root() / "failed-logs" / layout.name
    shutil.rmtree(target, ignore_errors=True)
    if layout.logs_dir.is_dir():
        shutil.copytree(layout.logs_dir, target)
    return target


def spawn(layout: ClusterLayout) -> Child:
    """Start the supervisor daemon for a prepared cluster directory, detached from this process (the cluster
    outlives `cluster up`)."""
    here = str(Path(clusters.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    return spawn_process(
        [sys.executable, "-m", "clusters.local.daemon", str(layout.root)],
        log=layout.log("supervisor"),
        env={"PYTHONPATH": path},
        cwd=layout.root,
        what=f"the supervisor of cluster {layout.name}",
        die_with_parent=None,
    )


def wait_ready(layout: ClusterLayout, daemon: Child, timeout: float) -> dict[str, Any]:
    """Wait for the daemon to report `ready`; HarnessError (with kept logs) when it fails or times out."""

    def ready(status: dict[str, Any]) -> bool:
        return status.get("phase") == "ready"

    def reported() -> dict[str, Any]:
        status = layout.read_status()
        if not ready(status) and (status.get("phase") == "failed" or daemon.poll() is not None):
            daemon.wait(15)
            logs = keep_failed_logs(layout)
            error = status.get("error") or f"supervisor exited with {daemon.returncode}"
            raise HarnessError(f"cluster {layout.name} failed to start: {error} (logs kept in {logs})")
        return status

    status = poll(reported, timeout, interval=0.05, done=ready)
    if not ready(status):
        logs = keep_failed_logs(layout)
        raise HarnessError(
            f"cluster {layout.name} not Ready after {timeout:.0f}s "
            f"(phases so far: {status.get('phases')}; logs kept in {logs})"
        )
    return status
