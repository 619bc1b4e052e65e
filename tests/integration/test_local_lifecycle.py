"""Local clusters come and go without leftovers: busy ports, side by side, Ctrl-C, crashed owners and supervisors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import terminal

from clusters.local.layout import ClusterLayout, all_layouts
from clusters.local.lifecycle import reap
from clusters.local.provider import LocalProvider
from clusters.model import Cluster
from foundation.processes import ProcessRecord
from foundation.waiting import wait_until


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state directory of the test's own (the build cache stays the shared one); a failed test leaves no cluster."""
    path = tmp_path / "state"
    monkeypatch.setenv("RESILIENCE_STATE", str(path))
    yield path
    for layout in all_layouts():
        reap(layout)


def cli(*args: str) -> subprocess.Popen[str]:
    return terminal.popen(
        [sys.executable, "-m", "resilience.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", text], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def kept_logs(directory: Path, lines: int = 15) -> str:
    """The tails of the logs a failed start kept (they go with the test's state directory)."""
    tails = [
        f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        for log in sorted(directory.glob("*"))
        if log.is_file()
    ]
    return "".join(tails)


def component_records(layout: ClusterLayout) -> list[ProcessRecord]:
    records = [ProcessRecord.read(p) for p in layout.pids_dir.glob("*.pid")]
    return [r for r in records if r is not None]


def test_busy_api_port_is_refused_before_anything_starts(state: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = cli("cluster", "up", "--name", "busy", "--api-port", str(port))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == (
        f"resilience: error: port {port} for kube-apiserver is already in use on 127.0.0.1: stop what listens "
        "there or choose another port (or omit it to pick a free one)"
    )
    assert not (state / "clusters" / "busy").exists()
    assert processes_mentioning(str(state)) == []


def test_second_cluster_side_by_side_and_owner_death_removes_it(cluster: Cluster) -> None:
    owner = subprocess.Popen(["sleep", "600"])
    try:
        other = LocalProvider().up("side-by-side", owner_pid=owner.pid)
        layout = ClusterLayout.named("side-by-side")
        assert set(other.ports.values()).isdisjoint(cluster.ports.values())
        assert other.kubeconfig != cluster.kubeconfig
        assert other.kube.get("apps/v1", "Deployment", "demo", "demo") is not None
        records = component_records(layout)
        assert len(records) >= 10 and all(r.alive() for r in records)
    finally:
        owner.kill()
        owner.wait()
    wait_until(lambda: not layout.root.exists(), 30, "the owned cluster to remove itself")
    assert not any(r.alive() for r in records)
    # The session cluster is unaffected.
    assert cluster.control is not None and cluster.control.status()["kube-apiserver"]["running"]


def test_ctrl_c_during_up_leaves_nothing(state: Path) -> None:
    proc = cli("cluster", "up", "--name", "interrupted")
    status = state / "clusters" / "interrupted" / "status.json"
    # Generous: on a host busy with other workers' clusters, the CLI's start and the preparation take a while.
    wait_until(lambda: status.exists() and "control-plane" in status.read_text(), 180, "start-up to be under way")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert not (state / "clusters" / "interrupted").exists()
    wait_until(lambda: processes_mentioning(str(state)) == [], 10, "every process to be gone")


def test_killed_supervisor_takes_its_children_and_is_swept(state: Path) -> None:
    up = cli("cluster", "up", "--name", "orphaned", "--json")
    out, err = up.communicate(timeout=180)
    assert up.returncode == 0, err + kept_logs(state / "failed-logs" / "orphaned")
    assert json.loads(out)["name"] == "orphaned"
    layout = ClusterLayout(state / "clusters" / "orphaned")
    records = component_records(layout)
    supervisor = ProcessRecord.read(layout.supervisor_pid_file)
    assert supervisor is not None and records
    os.kill(supervisor.pid, signal.SIGKILL)
    wait_until(lambda: not any(r.alive() for r in records), 10, "children to die with their supervisor")
    listing = cli("cluster", "list", "--json")
    rows = json.loads(listing.communicate(timeout=30)[0])
    assert [(r["name"], r["phase"]) for r in rows] == [("orphaned", "dead")]
    down = cli("cluster", "down", "--all")
    down.communicate(timeout=30)
    assert down.returncode == 0
    assert not layout.root.exists()
    assert processes_mentioning(str(state)) == []
