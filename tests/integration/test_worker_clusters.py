"""xdist workers get independent clusters: started side by side without colliding (names, state directories,
ports, git and chart servers), and one worker's cluster killed (SIGKILL of its supervisor's process group) in the
middle of the other worker's scenario run leaves that run intact: it is judged as usual and passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters.local.layout import all_layouts
from clusters.local.lifecycle import reap

# A nested xdist run of up to 15 minutes, starting a cluster per worker.
pytestmark = pytest.mark.timeout(1800)

INNER = """
import json
import os
import signal
from pathlib import Path

import pytest

from assertions.slo import Budget, Limit
from clusters.local.layout import ClusterLayout
from foundation.processes import ProcessRecord
from foundation.waiting import wait_until
from injectors.registry import fault
from kubeapi import TemporaryApiError
from scenarios.recoveries import parse
from scenarios.runner import ScenarioRun

SIGNALS = Path(os.environ["SIGNALS"])


def mark(name, data=""):
    (SIGNALS / name).write_text(data)


def seen(name):
    return (SIGNALS / name).exists()


def record(cluster):
    spec = ClusterLayout.named(cluster.name).read_spec()
    mark(os.environ["PYTEST_XDIST_WORKER"], json.dumps({"name": cluster.name, "ports": spec["ports"],
                                                       "root": str(ClusterLayout.named(cluster.name).root)}))


@pytest.mark.xdist_group("victim")
def test_victim(cluster):
    record(cluster)
    wait_until(lambda: seen("run-started"), 300, "the survivor's run to start")
    supervisor = ProcessRecord.read(ClusterLayout.named(cluster.name).supervisor_pid_file)
    os.killpg(supervisor.pid, signal.SIGKILL)
    def gone():
        try:
            cluster.kube.ping(timeout=1)
        except TemporaryApiError:
            return True
        return False
    wait_until(gone, 30, "the killed cluster's API server to go away")
    mark("killed")


@pytest.mark.xdist_group("survivor")
def test_survivor(cluster, tmp_path):
    record(cluster)
    mode = parse("operator")
    mode.start(cluster, tmp_path)
    try:
        run = ScenarioRun(cluster, fault("selector-change"), mode, Budget(ttr=Limit(120), wait=240), tmp_path)
        mark("run-started")
        result = run.execute()
    finally:
        mode.stop()
    assert seen("killed"), "the other worker's cluster was not killed during this run"
    assert result.verdict.value == "pass", result.reason
"""


@pytest.fixture
def leftovers() -> Iterator[None]:
    before = {layout.name for layout in all_layouts()}
    yield
    for layout in all_layouts():
        if layout.name not in before and layout.name.startswith("pytest-"):
            reap(layout)


def test_killing_one_workers_cluster_leaves_the_other_workers_run_intact(tmp_path: Path, leftovers: None) -> None:
    pytest.importorskip("xdist")
    suite = tmp_path / "suite"
    signals = tmp_path / "signals"
    suite.mkdir()
    signals.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["clusters.pytest_plugin"]\n')
    (suite / "test_workers.py").write_text(textwrap.dedent(INNER))
    (suite / "pytest.ini").write_text("[pytest]\n")
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "SIGNALS": str(signals),
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("RESILIENCE_CLUSTER", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "-q", "-rA"],
        cwd=suite,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    workers = {name: json.loads((signals / name).read_text()) for name in ("gw0", "gw1")}
    a, b = workers.values()
    assert a["name"] != b["name"] and a["root"] != b["root"]
    assert not set(a["ports"].values()) & set(b["ports"].values())
    assert {"gitserver", "chartserver", "kube-apiserver"} <= set(a["ports"]) & set(b["ports"])
    assert (signals / "killed").exists() and (signals / "run-started").exists()
