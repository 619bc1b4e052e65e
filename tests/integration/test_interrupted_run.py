"""An interrupted chaos run (Ctrl-C, or the harness killed outright) leaves no fault behind after
`resilience revert RUN`, and no process: neither the harness nor the recovery it started.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import terminal

from clusters.model import Cluster
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION

ROOT = Path(__file__).resolve().parents[2]
# Waits of up to 3 minutes each for the run, its revert and the cleanup, after the session's cluster starts.
pytestmark = pytest.mark.timeout(1800)
FAULT_COMMIT = "Revert: Select only stable pods"


def fault_landed(run_dir: Path) -> Path | None:
    """The run's revert record, once it holds the undo step of the fault's own commit."""
    for record in (run_dir / "revert").glob("*.json"):
        try:
            steps = json.loads(record.read_text())["steps"]
        except (OSError, ValueError, KeyError):
            continue
        if any(s.get("message") == FAULT_COMMIT for s in steps):
            return record
    return None


def processes(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_interrupted_run_is_fully_reverted(cluster: Cluster, tmp_path: Path, sig: signal.Signals) -> None:
    run_dir = tmp_path / "run"
    marker = f"sleep {4000 + sig}"  # the recovery process this run starts; it must not outlive the run
    child = terminal.popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "scenarios/test_selector.py",
            "-k",
            "selector-change",
            "-p",
            "no:cacheprovider",
            "--reuse-cluster",
            cluster.name,
            "--recovery",
            f"command:{marker}",
            "--run-dir",
            str(run_dir),
            "-q",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    record = None
    while record is None and time.monotonic() < deadline and child.poll() is None:
        record = fault_landed(run_dir)
        time.sleep(0.2)
    assert record is not None, f"the fault never landed: {child.communicate()[0][-2000:]}"
    steps = json.loads(record.read_text())["steps"]
    app = next(s["name"] for s in steps if s["op"] == "delete" and s["kind"] == "Namespace")
    assert processes(marker), "the recovery process was not running during the scenario"

    child.send_signal(sig)
    child.wait(timeout=120)
    interrupted = 2 if sig == signal.SIGINT else -sig  # 2: pytest's exit code for an interrupted session
    assert child.returncode == interrupted, "the run was not interrupted"
    revert = subprocess.run(
        [sys.executable, "-m", "resilience.cli", "revert", str(run_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert revert.returncode == 0, revert.stderr

    # No fault in place: the app's Flux objects are gone, and so are its files in Git.
    def app_objects() -> list[str]:
        flux = cluster.bootstrap.flux_namespace
        return [
            f"{k.kind}/{app}"
            for k in (KUSTOMIZATION, GIT_REPOSITORY)
            if cluster.kube.get(k.api_version, k.kind, app, flux) is not None
        ]

    deadline = time.monotonic() + 60
    while app_objects() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert app_objects() == []
    assert cluster.git.read(f"apps/{app}/deployment.yaml") is None
    namespace = cluster.kube.get("v1", "Namespace", app)
    assert namespace is None or (namespace.get("metadata") or {}).get("deletionTimestamp")
    # A second revert has nothing left to do.
    again = subprocess.run(
        [sys.executable, "-m", "resilience.cli", "revert", str(run_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0 and "nothing left to revert" in again.stdout and "reverted already" in again.stdout
    # No process behind: the harness is gone, and the recovery it started went with it.
    time.sleep(1)
    assert processes(marker) == []
    assert processes(str(run_dir)) == []
